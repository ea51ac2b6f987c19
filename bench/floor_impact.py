r"""What the colour-scale floor (image version 2's 100 dB) changes in a Sleep-EDF-20-scale build.

  PYTHONPATH=. python bench/floor_impact.py --data_dir /tmp/se20-psg [--subset sleep-edf-20]

Builds every night of the subset twice in this process (`nights.build_night`), with the
default `SpectrogramConfig` (`dynamic_range_db` 100) and with the floor off (None, image
version 1's colour scale), and prints how many epochs have any pixel that differs, how many
pixels differ, by how much, and per stage. The data may be the real Sleep-EDF files or the
synthetic PSGs on the real hypnograms (`python -m beam_pipelines.make_synthetic
--hypnograms ../shared/sleep-edf/sleep-cassette --output_dir /tmp/se20-psg`).
"""

import dataclasses
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
from eegmobile import config as config_lib
from eegmobile import nights
from eegmobile import sleep_edf
from eegmobile import stages

_DATA_DIR = flags.DEFINE_string("data_dir",
                                None,
                                "Sleep-EDF files (or synthetic ones).",
                                required=True)
_SUBSET = flags.DEFINE_string("subset", "sleep-edf-20", "Which recordings.")


def main(argv):
  del argv
  floored = config_lib.BuildConfig(subset=_SUBSET.value)
  plain = dataclasses.replace(floored,
                              spectrogram=dataclasses.replace(floored.spectrogram,
                                                              dynamic_range_db=None))
  recordings, _ = sleep_edf.find_recordings(_DATA_DIR.value, _SUBSET.value)
  epochs = changed = pixels = pixels_changed = 0
  largest = 0
  per_stage = np.zeros((2, len(stages.STAGES)), np.int64)  # [epochs, changed] per stage
  start = time.perf_counter()
  for recording in recordings:
    a = nights.build_night(recording, floored)
    b = nights.build_night(recording, plain)
    diff = np.abs(a.images.astype(np.int16) - b.images)
    moved = diff.reshape(len(diff), -1).max(axis=1) > 0
    epochs += len(moved)
    changed += int(moved.sum())
    pixels += diff.size
    pixels_changed += int(np.count_nonzero(diff))
    largest = max(largest, int(diff.max()))
    np.add.at(per_stage[0], a.labels, 1)
    np.add.at(per_stage[1], a.labels[moved], 1)
  print(f"{len(recordings)} nights, {epochs:,} epochs, built twice in "
        f"{time.perf_counter() - start:.0f} s")
  print(f"epochs with a pixel changed by the 100 dB floor: {changed:,} ({changed / epochs:.2%});"
        f" pixels changed {pixels_changed:,} of {pixels:,} ({pixels_changed / pixels:.4%}); "
        f"largest change {largest} colour indices")
  print("per stage (changed / epochs): " +
        ", ".join(f"{s} {c}/{n}" for s, n, c in zip(stages.STAGES, per_stage[0], per_stage[1])))


if __name__ == "__main__":
  app.run(main)
