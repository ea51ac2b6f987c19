"""Object-store paths: tensorflow-io's file systems, and the readers on a URL build."""

import functools
import http.server
import os
import threading

import tensorflow as tf

from tests import fakes
from tfrecords import datasets
from tfrecords import filesystems
from tfrecords import manifest as manifest_lib
from tfrecords import writer


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  """Serves files without logging each request."""

  def log_message(self, *args):
    pass


def test_tensorflow_io_registers_object_store_schemes():
  filesystems.register()
  assert {"s3", "hdfs", "az", "http"} <= set(tf.io.gfile.get_registered_schemes())
  assert {"s3", "hdfs", "az", "http"} <= set(filesystems.schemes())


def test_tensorflow_io_file_system_really_reads_with_this_tensorflow(tmp_path):
  """tensorflow-io's compiled http file system, loaded into this TensorFlow, reads a
  TFRecord file from a local server: a TensorFlow / tensorflow-io pair that does not
  fit fails here rather than on a cluster."""
  records = [b"first", b"second" * 100, b""]
  writer.write_tfrecord(str(tmp_path / "night.tfrecord"), records)
  handler = functools.partial(_QuietHandler, directory=str(tmp_path))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    filesystems.register()
    url = f"http://127.0.0.1:{server.server_port}/night.tfrecord"
    assert tf.io.gfile.exists(url)
    assert tf.io.gfile.stat(url).length == os.path.getsize(tmp_path / "night.tfrecord")
    assert [r.numpy() for r in tf.data.TFRecordDataset(url)] == records
  finally:
    server.shutdown()
    server.server_close()


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
