"""Object-store paths: tensorflow-io's file systems, and the readers on a URL build."""

import os

import tensorflow as tf

from tests import fakes
from tfrecords import datasets
from tfrecords import filesystems
from tfrecords import manifest as manifest_lib


def test_tensorflow_io_registers_object_store_schemes():
  assert {"s3", "hdfs", "az", "http"} <= set(filesystems.schemes())


def test_readers_work_on_a_url_build(tmp_path):
  fakes.make_fake_build(str(tmp_path), subjects=("SC00", "SC01"), epochs_per_night=4, image_size=8)
  url = "ram://eegmobile-test-build"
  tf.io.gfile.makedirs(url)
  for name in os.listdir(tmp_path):
    tf.io.gfile.copy(str(tmp_path / name), f"{url}/{name}", overwrite=True)
  manifest = manifest_lib.load_manifest(url)
  assert manifest_lib.shard_paths(url, manifest, ["SC01"])[0].startswith(url + "/")
  labels = [
      l for _, batch in datasets.make_dataset(url, ["SC01"], training=False, batch_size=3)
      for l in batch.numpy()
  ]
  assert labels == [0, 1, 2, 3] * 2
