"""Figures: pyplot on the Agg backend (no screen needed), and saving one whole or not at all.

pyplot is imported when the first figure is drawn, not with this module: it is slow to
import (BUILD_NOTES.md, "Start-up"), and commands that draw nothing need not pay for it.
"""

from eegmobile import storage


def pyplot():
  """matplotlib.pyplot, on the Agg backend (files only; works without a display)."""
  # Lazy: see the module docstring.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top  # lazy: as above
  return plt


def save(fig, path: str, *, dpi: int = 100) -> None:
  """Writes the figure as a PNG through `storage.atomic_path`, then closes it."""
  try:
    with storage.atomic_path(path) as part:
      fig.savefig(part, format="png", dpi=dpi)
  finally:
    pyplot().close(fig)
