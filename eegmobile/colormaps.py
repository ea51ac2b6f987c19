"""Colour maps: the RGB colour that each stored colour-map index stands for.

A build stores each pixel as an index 0..255 into a 256-entry colour map: the image's
values are scaled to [0, 1] and quantised to 256 levels as matplotlib quantises when it
draws (floor(value * 256), 1.0 into the top level), so that the reader chooses the colours.

`rgb_table` is the one definition of the colours: the numpy colouring
(`eegmobile.spectrogram.colorize`), the tf.data colouring (`tfrecords.datasets.colorize`)
and the model's `ColorMap` layer all take their table from it. Viridis is matplotlib's own
table (imported when first asked for, never pyplot); grey maps index i to (i, i, i) / 255.
Every table returned for a name is shared and read-only.
"""

import functools
from typing import Union

import numpy as np
import numpy.typing as npt

NAMES = ("viridis", "grey")
_ALIASES = {"gray": "grey"}


def _unit_table(name: str) -> np.ndarray:
  """(256, 3) float64 RGB in [0, 1] of a named colour map."""
  if name == "viridis":
    # Lazy: matplotlib is slow to import (BUILD_NOTES.md "Start-up"); grey needs none.
    import matplotlib  # pylint: disable=g-import-not-at-top
    return matplotlib.colormaps["viridis"](np.arange(256))[:, :3]  # its lookup table, float64
  if name == "grey":
    # Our own ramp, not matplotlib's "gray": i / 255 * 255 truncates back to i for every i,
    # where matplotlib's bytes give i - 1 for some.
    return np.repeat(np.arange(256)[:, None] / 255.0, 3, axis=1)
  raise ValueError(f"unknown colour map {name!r}; choose one of {NAMES}")


def lookup_table(name: str) -> np.ndarray:
  """The (256, 3) float64 RGB table, values in [0, 1], of a colour map.

  Args:
    name: "viridis" or "grey" ("gray" is accepted too).

  Returns:
    The shared read-only table; row i is the colour of stored index i.

  Raises:
    ValueError: unknown name.
  """
  return _shared_unit_table(_ALIASES.get(name, name))


@functools.lru_cache(maxsize=None)
def _shared_unit_table(name: str) -> np.ndarray:
  table = _unit_table(name)
  table.flags.writeable = False  # shared by every caller: nobody may recolour it in place
  return table


def _scale(unit: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """[0, 1] table -> 0..255 in dtype; uint8 truncates, as `Colormap(..., bytes=True)`."""
  scaled = np.asarray(unit, np.float64) * 255.0
  if dtype == np.uint8:
    return scaled.astype(np.uint8)
  if dtype.kind in "biuc":  # integers other than uint8, bools, complex
    raise ValueError(f"RGB table dtype must be floating or uint8, got {dtype}")
  return scaled.astype(dtype)


@functools.lru_cache(maxsize=None)
def _named_rgb_table(name: str, dtype: np.dtype) -> np.ndarray:
  table = _scale(lookup_table(name), dtype)
  table.flags.writeable = False
  return table


def rgb_table(colormap: Union[str, npt.ArrayLike] = "viridis",
              dtype: npt.DTypeLike = np.float32) -> np.ndarray:
  """A colour map's (256, 3) RGB table in 0..255: row i is the colour of stored index i.

  Floating types hold `table * 255` (computed in float64, then cast); uint8 holds the
  truncated bytes, exactly matplotlib's `Colormap(..., bytes=True)`.

  Args:
    colormap: "viridis", "grey" ("gray"), or a (256, 3) table of RGB values in [0, 1]
      (e.g. a matplotlib `ListedColormap.colors`).
    dtype: a numpy dtype: uint8 or a floating type (float16, float32, bfloat16, ...).

  Returns:
    The table. For a name it is shared and read-only; for a given table it is a new array.

  Raises:
    ValueError: unknown name, a table that is not (256, 3) in [0, 1], or a dtype that is
      neither floating nor uint8.
  """
  dtype = np.dtype(dtype)
  if isinstance(colormap, str):
    return _named_rgb_table(_ALIASES.get(colormap, colormap), dtype)
  table = np.asarray(colormap, np.float64)
  if table.shape != (256, 3):
    raise ValueError(f"a colour table must be (256, 3) RGB, got shape {table.shape}")
  if not (np.all(table >= 0.0) and np.all(table <= 1.0)):
    raise ValueError("a colour table's values must lie in [0, 1]")
  return _scale(table, dtype)
