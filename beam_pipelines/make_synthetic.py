r"""Write synthetic PSGs for real hypnograms (or a whole synthetic demo set).

  python -m beam_pipelines.make_synthetic --hypnograms ../shared/sleep-edf/sleep-cassette \
      --output_dir /tmp/sleep-edf-20-synthetic
  python -m beam_pipelines.make_synthetic --demo --output_dir /tmp/demo

For each `SC4ssNE?-Hypnogram.edf` it writes `SC4ssNE0-PSG.edf` at the matching length
(where the trailing 'Sleep stage ?' starts) in the real 7-channel Sleep-EDF layout, and
copies the hypnogram beside it, so the output builds like a real Sleep-EDF download.
The 39 Sleep-EDF-20 hypnograms take about 2.5 minutes on 2 cores (~2 GB of EDF).
"""

import glob
import os
import sys

from absl import app
from absl import flags

_HYPNOGRAMS = flags.DEFINE_string("hypnograms", None,
                                  "A directory of Sleep-EDF hypnograms, or comma-separated files.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the recordings go.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed (different per subject and night).")
_DEMO = flags.DEFINE_bool("demo", False, "Write the small synthetic demo set instead.")


def main(argv):
  del argv
  from eegmobile import synthetic  # pylint: disable=g-import-not-at-top
  if not _OUTPUT_DIR.value:
    print("error: --output_dir is required", file=sys.stderr)
    return 2
  if _DEMO.value:
    written = synthetic.make_demo_dataset(_OUTPUT_DIR.value, seed=_SEED.value)
  else:
    source = _HYPNOGRAMS.value or ""
    paths = (sorted(glob.glob(os.path.join(source, "*-Hypnogram.edf")))
             if os.path.isdir(source) else [p for p in source.split(",") if p])
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing or not paths:
      print(
          f"error: {', '.join(missing) or source}: no such hypnogram file(s); "
          "--hypnograms takes a directory of *-Hypnogram.edf files or a list of them",
          file=sys.stderr)
      return 2
    written = synthetic.synthesize_for_hypnograms(paths, _OUTPUT_DIR.value, seed=_SEED.value)
  print(f"wrote {len(written)} synthetic PSG(s) under {_OUTPUT_DIR.value}")
  return 0


if __name__ == "__main__":
  app.run(main)
