"""Tests for eegmobile.colormaps: the one colour table, and that every lookup uses it."""

import matplotlib
import numpy as np
import pytest

from eegmobile import colormaps


def test_viridis_is_matplotlibs_table():
  reference = np.asarray(matplotlib.colormaps["viridis"].colors)
  table = colormaps.lookup_table("viridis")
  assert table.shape == (256, 3) and table.dtype == np.float64
  np.testing.assert_array_equal(table, reference)


def test_viridis_index_maps_to_matplotlibs_colour():
  """Stored index i is the colour matplotlib draws for i: its own N=256 quantisation."""
  cmap = matplotlib.colormaps["viridis"]
  indices = np.array([0, 1, 127, 128, 254, 255])
  np.testing.assert_array_equal(colormaps.lookup_table("viridis")[indices], cmap(indices)[:, :3])
  np.testing.assert_array_equal(
      colormaps.lookup_table("viridis")[indices],
      cmap((indices + 0.5) / 256)[:, :3])


def test_uint8_table_is_matplotlibs_bytes():
  reference = matplotlib.colormaps["viridis"](np.arange(256), bytes=True)[:, :3]
  np.testing.assert_array_equal(colormaps.rgb_table("viridis", np.uint8), reference)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_tables_are_the_table_times_255_in_their_dtype(dtype):
  table = colormaps.rgb_table("viridis", dtype)
  assert table.dtype == dtype and table.shape == (256, 3)
  expected = (np.asarray(matplotlib.colormaps["viridis"].colors) * 255.0).astype(dtype)
  np.testing.assert_array_equal(table, expected)
  # viridis[0] = (0.267004, 0.004874, 0.329415), from matplotlib's source.
  np.testing.assert_allclose(table[0], [68.08602, 1.24287, 84.000825], rtol=1e-3)


def test_grey_is_a_linear_ramp_whose_bytes_are_the_index():
  grey = colormaps.lookup_table("grey")
  np.testing.assert_allclose(grey, np.repeat(np.arange(256)[:, None] / 255.0, 3, axis=1), atol=0)
  assert colormaps.lookup_table("gray") is grey
  # Exactly i for every index (matplotlib's "gray" truncates some to i - 1).
  np.testing.assert_array_equal(colormaps.rgb_table("grey", np.uint8),
                                np.repeat(np.arange(256)[:, None], 3, axis=1))


def test_a_given_table_is_scaled_like_a_named_one():
  colors = matplotlib.colormaps["viridis"].colors  # a list of lists
  for dtype in (np.uint8, np.float32):
    np.testing.assert_array_equal(colormaps.rgb_table(colors, dtype),
                                  colormaps.rgb_table("viridis", dtype))


def test_named_tables_are_shared_and_read_only():
  for name in colormaps.NAMES:
    for table in (colormaps.lookup_table(name), colormaps.rgb_table(name, np.uint8)):
      with pytest.raises(ValueError, match="read-only"):
        table[0, 0] = 1
  assert colormaps.rgb_table("viridis", "float32") is colormaps.rgb_table("viridis", np.float32)


def test_bad_names_tables_and_dtypes():
  with pytest.raises(ValueError, match="unknown colour map 'jet'"):
    colormaps.lookup_table("jet")
  with pytest.raises(ValueError, match="unknown colour map 'jet'"):
    colormaps.rgb_table("jet")
  with pytest.raises(ValueError, match=r"\(256, 3\) RGB, got shape \(255, 3\)"):
    colormaps.rgb_table(np.zeros((255, 3)))
  with pytest.raises(ValueError, match=r"in \[0, 1\]"):
    colormaps.rgb_table(np.full((256, 3), 2.0))
  with pytest.raises(ValueError, match="floating or uint8, got int32"):
    colormaps.rgb_table("viridis", np.int32)


@pytest.mark.parametrize("name", colormaps.NAMES)
def test_numpy_tf_data_and_model_lookups_give_the_same_colours(name):
  """spectrogram.colorize, datasets.colorize and the model's ColorMap layer: one table."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top
  from eegmobile import spectrogram  # pylint: disable=g-import-not-at-top
  from tfrecords import datasets  # pylint: disable=g-import-not-at-top
  indices = np.arange(512, dtype=np.int64).reshape(2, 16, 16).astype(np.uint8) % 256
  as_bytes = colormaps.rgb_table(name, np.uint8)[indices]
  as_floats = colormaps.rgb_table(name, np.float32)[indices]
  np.testing.assert_array_equal(spectrogram.colorize(indices, name), as_bytes)
  np.testing.assert_array_equal(datasets.colorize(tf.constant(indices), name, tf.uint8), as_bytes)
  np.testing.assert_array_equal(datasets.colorize(tf.constant(indices), name), as_floats)
  np.testing.assert_array_equal(np.asarray(model_lib.ColorMap(name)(indices)), as_floats)
