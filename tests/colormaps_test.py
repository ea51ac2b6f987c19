"""Tests for tfrecords.colormaps."""

import numpy as np
import pytest

from tfrecords import colormaps


def test_viridis_literal_equals_matplotlibs():
  matplotlib = pytest.importorskip("matplotlib")
  reference = np.asarray(matplotlib.colormaps["viridis"].colors)
  table = colormaps.lookup_table("viridis")
  assert table.shape == (256, 3) and table.dtype == np.float32
  np.testing.assert_allclose(table, reference, atol=1e-7)  # float32 of the 6-digit literal


def test_viridis_index_maps_to_matplotlibs_colour():
  """Stored index i is the colour matplotlib draws for i: its own N=256 quantisation."""
  matplotlib = pytest.importorskip("matplotlib")
  cmap = matplotlib.colormaps["viridis"]
  indices = np.array([0, 1, 127, 128, 254, 255])
  np.testing.assert_allclose(colormaps.VIRIDIS[indices], cmap(indices)[:, :3], atol=1e-7)
  np.testing.assert_allclose(colormaps.VIRIDIS[indices],
                             cmap((indices + 0.5) / 256)[:, :3],
                             atol=1e-7)


def test_grey_is_a_linear_ramp():
  grey = colormaps.lookup_table("grey")
  assert grey.shape == (256, 3) and grey.dtype == np.float32
  np.testing.assert_allclose(grey, np.repeat(np.arange(256)[:, None] / 255.0, 3, axis=1), atol=1e-7)
  assert colormaps.lookup_table("gray") is grey


def test_tables_are_read_only():
  for name in colormaps.NAMES:
    with pytest.raises(ValueError, match="read-only"):
      colormaps.lookup_table(name)[0, 0] = 1.0


def test_unknown_name():
  with pytest.raises(ValueError, match="unknown colour map 'jet'"):
    colormaps.lookup_table("jet")
