"""Tests for tfrecords.datasets on tiny builds written at test time."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from tests import fakes
from tfrecords import colormaps
from tfrecords import datasets


@pytest.fixture(scope="module")
def build(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(directory,
                        subjects=("SC00", "SC01", "SC02"),
                        epochs_per_night=20,
                        image_size=16)
  return directory


def _all(ds):
  return list(ds.as_numpy_iterator())


def test_shapes_dtypes_and_range(build):
  images, labels = next(iter(datasets.make_dataset(build, ["SC00"], training=True, batch_size=8)))
  assert images.shape == (8, 16, 16, 3) and images.dtype == tf.float32
  assert labels.shape == (8,) and labels.dtype == tf.int32
  assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0


def test_colour_map_eagerly_and_inside_tf_data():
  indices = tf.constant([[0, 255], [128, 7]], tf.uint8)
  expected = colormaps.lookup_table("viridis")[indices.numpy()] * 255.0
  eager = datasets.colorize(indices)
  in_data = next(iter(tf.data.Dataset.from_tensors(indices).map(datasets.colorize)))
  np.testing.assert_allclose(eager.numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(in_data.numpy(), expected, rtol=1e-6)
  grey = datasets.colorize(indices, "grey").numpy()
  np.testing.assert_allclose(grey[..., 0], indices.numpy(), atol=1e-3)


def test_evaluation_order_and_metadata_follow_the_files(build):
  batches = _all(
      datasets.make_dataset(build, ["SC01", "SC00"],
                            training=False,
                            batch_size=7,
                            with_metadata=True))
  subjects = [s for _, _, m in batches for s in m["subject"]]
  nights = [n for _, _, m in batches for n in m["night"]]
  epochs = [e for _, _, m in batches for e in m["epoch_index"]]
  labels = np.concatenate([l for _, l, _ in batches])
  assert len(labels) == 80 and len(batches[-1][1]) == 80 % 7  # remainder kept
  assert subjects == [b"SC01"] * 40 + [b"SC00"] * 40
  assert nights == ([1] * 20 + [2] * 20) * 2
  assert epochs == list(range(20)) * 4
  np.testing.assert_array_equal(labels, np.arange(80) % 20 % 5)
  again = _all(
      datasets.make_dataset(build, ["SC01", "SC00"],
                            training=False,
                            batch_size=7,
                            with_metadata=True))
  np.testing.assert_array_equal(np.concatenate([l for _, l, _ in again]), labels)


def test_training_shuffles_each_epoch_but_keeps_the_examples(build):
  ds = datasets.make_dataset(build, ["SC00", "SC01"],
                             training=True,
                             batch_size=10,
                             with_metadata=True)
  first = [(bytes(s), int(e), int(n))
           for _, _, m in _all(ds)
           for s, e, n in zip(m["subject"], m["epoch_index"], m["night"])]
  second = [(bytes(s), int(e), int(n))
            for _, _, m in _all(ds)
            for s, e, n in zip(m["subject"], m["epoch_index"], m["night"])]
  assert collections.Counter(first) == collections.Counter(second)
  assert len(first) == 80 and first != second


def test_only_the_requested_subjects_are_read(build):
  ds = datasets.make_dataset(build, ["SC02"], training=False, with_metadata=True)
  assert {s for _, _, m in _all(ds) for s in m["subject"]} == {b"SC02"}
  assert datasets.num_examples(build, ["SC02", "SC00"]) == 80


@pytest.mark.parametrize("cache", ["memory", "file", None])
def test_cache_modes_give_the_same_examples(build, tmp_path, cache):
  mode = str(tmp_path / "cache") if cache == "file" else cache
  ds = datasets.make_dataset(build, ["SC00"], training=False, cache=mode)
  first, second = _all(ds), _all(ds)  # the second pass reads from the cache
  for (a, la), (b, lb) in zip(first, second):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
  if cache == "file":
    assert list(tmp_path.glob("cache*.index"))


def test_gzip_build(tmp_path):
  fakes.make_fake_build(str(tmp_path),
                        subjects=("SC00",),
                        epochs_per_night=5,
                        image_size=8,
                        compression="GZIP")
  images, labels = next(
      iter(datasets.make_dataset(str(tmp_path), ["SC00"], training=False, batch_size=10)))
  assert images.shape == (10, 8, 8, 3) and labels.numpy().tolist() == [0, 1, 2, 3, 4] * 2


def test_unknown_subject_and_incomplete_build(build, tmp_path):
  with pytest.raises(KeyError, match="subject 'SC99' is not in this build"):
    datasets.make_dataset(build, ["SC99"], training=False)
  manifest = fakes.make_fake_build(str(tmp_path), subjects=("SC00",), epochs_per_night=2)
  import json
  manifest.update(complete=False, failures=[{"record": "SC4011E0", "file": "x", "error": "y"}])
  (tmp_path / "manifest.json").write_text(json.dumps(manifest))
  with pytest.raises(ValueError, match="incomplete build"):
    datasets.make_dataset(str(tmp_path), ["SC00"], training=False)
  assert datasets.make_dataset(str(tmp_path), ["SC00"], training=False, allow_incomplete=True)


def test_indices_for_a_colour_map_on_the_device(build):
  images, labels = next(
      iter(datasets.make_dataset(build, ["SC00"], training=False, batch_size=5, color=None)))
  assert images.shape == (5, 16, 16) and images.dtype == tf.uint8
  rgb, _ = next(iter(datasets.make_dataset(build, ["SC00"], training=False, batch_size=5)))
  np.testing.assert_allclose(datasets.colorize(images).numpy(), rgb.numpy())
