"""A picture of a build: example spectrograms per stage and epochs per stage per subject."""

from typing import Optional

import numpy as np

from eegmobile import colormaps
from eegmobile import plots
from tfrecords import datasets
from tfrecords import manifest as manifest_lib


def examples_per_stage(build_dir: str, per_stage: int = 4, subjects: Optional[list] = None) -> dict:
  """{stage index: [(uint8 image, "subject night epoch")]}, the first `per_stage` found."""
  manifest = manifest_lib.load_manifest(build_dir, allow_incomplete=True)
  found = {s: [] for s in range(len(manifest["stages"]))}
  ds = datasets.make_dataset(build_dir,
                             subjects or manifest_lib.subjects(manifest),
                             training=False,
                             batch_size=256,
                             color=None,
                             cache=None,
                             with_metadata=True,
                             allow_incomplete=True)
  for images, labels, meta in ds:
    for i, label in enumerate(labels.numpy()):
      if len(found[label]) < per_stage:
        found[label].append((images[i].numpy(), f"{meta['subject'][i].numpy().decode()} "
                             f"n{int(meta['night'][i])} e{int(meta['epoch_index'][i])}"))
    if all(len(v) == per_stage for v in found.values()):
      break
  return found


def plot_preview(build_dir: str, path: str, per_stage: int = 4) -> None:
  """Writes a PNG: a grid of example images (rows = stages) and a class-count bar chart."""
  plt = plots.pyplot()
  manifest = manifest_lib.load_manifest(build_dir, allow_incomplete=True)
  stages = manifest["stages"]
  examples = examples_per_stage(build_dir, per_stage)
  rgb = colormaps.rgb_table("viridis", np.uint8)
  fig = plt.figure(figsize=(2.2 * per_stage + 6, 2.2 * len(stages)), constrained_layout=True)
  grid = fig.add_gridspec(len(stages), per_stage + 3)
  for row, stage in enumerate(stages):
    for col in range(per_stage):
      ax = fig.add_subplot(grid[row, col])
      ax.set_xticks([])
      ax.set_yticks([])
      if col < len(examples[row]):
        image, title = examples[row][col]
        ax.imshow(rgb[image], aspect="auto")
        ax.set_title(title, fontsize=7)
      if col == 0:
        ax.set_ylabel(f"{stage}\n(0-50 Hz, low at bottom)", fontsize=8)
  bars = fig.add_subplot(grid[:, per_stage:])
  subjects = manifest_lib.subjects(manifest)
  bottom = np.zeros(len(subjects))
  for stage in stages:
    counts = np.array([manifest["subjects"][s]["class_counts"].get(stage, 0) for s in subjects])
    bars.barh(subjects, counts, left=bottom, label=stage)
    bottom += counts
  bars.invert_yaxis()
  bars.set_xlabel("30 s epochs")
  bars.legend(loc="lower right", fontsize=8)
  totals = manifest["totals"]["class_counts"]
  bars.set_title(f"{manifest['subset']}{' (DEMO)' if manifest['demo'] else ''}: " +
                 ", ".join(f"{s} {totals.get(s, 0)}" for s in stages),
                 fontsize=9)
  plots.save(fig, path, dpi=100)
