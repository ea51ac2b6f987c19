r"""Writes synthetic PSGs for real Sleep-EDF hypnograms, or a whole synthetic demo set.

  python -m beam_pipelines.make_synthetic --hypnograms ../shared/sleep-edf/sleep-cassette \
      --output_dir /tmp/sedf20
  python -m beam_pipelines.make_synthetic \
      --hypnograms hyp/SC4001EC-Hypnogram.edf,hyp/SC4002EC-Hypnogram.edf \
      --output_dir /tmp/two --seed 1
  python -m beam_pipelines.make_synthetic --demo --output_dir /tmp/demo
  python -m beam_pipelines.make_synthetic --hypnograms ../shared/sleep-edf/sleep-cassette \
      --output_dir /tmp/sedf20-hard --difficulty 0.8

For each `SC4ssNEx-Hypnogram.edf` it writes `sleep-cassette/SC4ssNE0-PSG.edf` as long as
the hypnogram's scored part (where its trailing "Sleep stage ?" starts), in the real
7-channel Sleep-EDF layout with stage-typical EEG, and copies the hypnogram beside it, so
the output builds like a real Sleep-EDF download (`python -m beam_pipelines.build
--data_dir /tmp/sedf20`). The 39 Sleep-EDF-20 hypnograms give 1.96 GB of EDF; their
build then labels W 8284, N1 2804, N2 17799, N3 5703, REM 7717 like the real recordings
(time taken: BUILD_NOTES.md). `--demo` writes the small set of
`eegmobile.demo.synthetic.make_demo_dataset` (synthetic hypnograms too). `--difficulty`
makes the harder variant, whose epochs borrow from confusable stages (for measuring what
context across epochs adds: `eegmobile.demo.synthetic.synthesize_eeg`).

Intentionally short: flags are defined here only (flags in library modules clash when
several entry points import them) and main() hands them to `eegmobile.demo.synthetic`.
"""

from absl import app
from absl import flags

_HYPNOGRAMS = flags.DEFINE_string(
    "hypnograms", None, "A directory of Sleep-EDF *-Hypnogram.edf files, or comma-separated "
    "hypnogram files.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the recordings go.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed (each subject and night derives its own).")
_DEMO = flags.DEFINE_bool("demo", False,
                          "Write the small synthetic demo set (synthetic hypnograms) instead.")
_DIFFICULTY = flags.DEFINE_float(
    "difficulty", 0.0, "0 (textbook stages, separable epoch by epoch) to 1: each epoch mixes "
    "in up to this share of a confusable stage's EEG (the harder variant).")
flags.mark_flag_as_required("output_dir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # Lazy: importing synthetic imports scipy.signal (slow); --help should not wait for it.
  from eegmobile.demo import synthetic  # pylint: disable=g-import-not-at-top
  if _DEMO.value:
    written = synthetic.make_demo_dataset(_OUTPUT_DIR.value,
                                          seed=_SEED.value,
                                          difficulty=_DIFFICULTY.value)
  else:
    try:
      hypnograms = synthetic.find_hypnograms(_HYPNOGRAMS.value or "")
    except FileNotFoundError as e:
      raise app.UsageError(str(e), exitcode=2) from e
    written = synthetic.synthesize_for_hypnograms(hypnograms,
                                                  _OUTPUT_DIR.value,
                                                  seed=_SEED.value,
                                                  difficulty=_DIFFICULTY.value)
  print(f"wrote {len(written)} synthetic PSG(s) under {_OUTPUT_DIR.value}")


if __name__ == "__main__":
  app.run(main)
