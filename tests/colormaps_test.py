"""Tests for tfrecords.colormaps."""

import numpy as np
import pytest

from tfrecords import colormaps


def test_viridis_literal_equals_matplotlibs():
  matplotlib = pytest.importorskip("matplotlib")
  np.testing.assert_allclose(colormaps.lookup_table("viridis"),
                             np.asarray(matplotlib.colormaps["viridis"].colors),
                             atol=1e-7)


def test_grey_is_a_linear_ramp():
  grey = colormaps.lookup_table("grey")
  assert grey.shape == (256, 3) and grey[0].tolist() == [0, 0, 0] and grey[-1].tolist() == [1] * 3
  assert np.all(np.diff(grey[:, 0]) > 0)


def test_unknown_name():
  with pytest.raises(ValueError, match="unknown colour map 'jet'"):
    colormaps.lookup_table("jet")
