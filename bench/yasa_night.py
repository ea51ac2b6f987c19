"""Stages one night with YASA, the baseline of issue 7; runs in YASA's own environment.

YASA is never a dependency of eegmobile: this script imports nothing from eegmobile and
runs under the Python of a separate virtualenv (`bench/stage_night.py --yasa_python`):

  python3 -m venv /tmp/yasa-venv && /tmp/yasa-venv/bin/pip install yasa psutil
  /tmp/yasa-venv/bin/python bench/yasa_night.py --edf night-PSG.edf \
      --channel "EEG Fpz-Cz" --output stages.tsv

It reads the EDF with MNE (only `--channel` preloaded), runs
`yasa.SleepStaging(raw, eeg_name=channel).predict()` and its probabilities (`Hypnogram.proba` in YASA 0.8,
`predict_proba()` before), writes one
row per 30 s epoch (epoch, stage, probabilities) to `--output` when given, and prints one
JSON line: {"seconds": wall time since the interpreter started (imports included, a cold
start), "peak_rss_mb", "epochs", "yasa_version"}. Exit status 2: bad arguments or YASA
missing; 1: a file that cannot be read or staged.
"""

import argparse
import json
import os
import sys
import time

_STARTED = time.time()


def _process_start() -> float:
  """When this interpreter started: psutil if present, else this module's import."""
  try:
    import psutil  # pylint: disable=g-import-not-at-top
    return psutil.Process().create_time()
  except ImportError:
    return _STARTED


def _peak_rss_mb() -> float:
  import resource  # pylint: disable=g-import-not-at-top
  # ru_maxrss is in KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--edf", required=True, help="the PSG EDF file")
  parser.add_argument("--channel", required=True, help='EEG channel, e.g. "EEG Fpz-Cz"')
  parser.add_argument("--output", help="TSV of stages and probabilities per epoch")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = _parse(argv)
  start = _process_start()
  try:
    import mne  # pylint: disable=g-import-not-at-top
    import yasa  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    print(
        f"yasa_night.py: YASA is missing from {sys.executable} ({e}); run this with the "
        "Python of YASA's own environment, e.g. python3 -m venv /tmp/yasa-venv && "
        "/tmp/yasa-venv/bin/pip install yasa psutil",
        file=sys.stderr)
    return 2
  if not os.path.isfile(args.edf):
    print(f"yasa_night.py: {args.edf}: no such file", file=sys.stderr)
    return 1
  try:
    raw = mne.io.read_raw_edf(args.edf, include=[args.channel], preload=False, verbose=False)
  except Exception as e:  # pylint: disable=broad-except
    print(f"yasa_night.py: {args.edf}: cannot read as EDF ({e})", file=sys.stderr)
    return 1
  if args.channel not in raw.ch_names:
    print(f"yasa_night.py: {args.edf}: no channel {args.channel!r}", file=sys.stderr)
    return 1
  raw.load_data(verbose=False)
  staging = yasa.SleepStaging(raw, eeg_name=args.channel)
  predicted = staging.predict()
  # YASA 0.8 returns a yasa.Hypnogram holding `proba`; older versions a label array.
  if hasattr(predicted, "proba"):
    stages, proba = list(predicted.hypno), predicted.proba
  else:
    stages, proba = list(predicted), staging.predict_proba()
  if args.output:
    with open(args.output, "w") as f:
      f.write("epoch\tstage\t" + "\t".join(f"p_{c}" for c in proba.columns) + "\n")
      for i, (stage, row) in enumerate(zip(stages, proba.to_numpy())):
        f.write(f"{i}\t{stage}\t" + "\t".join(f"{p:.6f}" for p in row) + "\n")
  print(
      json.dumps({
          "seconds": round(time.time() - start, 3),
          "peak_rss_mb": round(_peak_rss_mb(), 1),
          "epochs": int(len(stages)),
          "yasa_version": yasa.__version__,
      }))
  return 0


if __name__ == "__main__":
  sys.exit(main())
