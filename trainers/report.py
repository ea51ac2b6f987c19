r"""Pool the folds' predictions into the paper's Table 1, with figures.

  python -m trainers.report --workdir runs/paper [--require_complete]

Writes <workdir>/report/: table.md, table.csv, table.json (ACC, macro-F1, kappa, per-class
F1 of the pooled predictions beside the paper's and peers' published rows), folds.csv (each
fold's ACC, macro-F1, kappa), confusion.png (counts and row-normalised) and curves.png
(train vs validation accuracy per fold). A run with unfinished folds is marked PARTIAL
everywhere; --require_complete then exits 1. Takes a few seconds.
"""

import sys

from absl import app
from absl import flags

_WORKDIR = flags.DEFINE_string("workdir", "runs/paper", "The trainers.cv workdir.")
_REQUIRE = flags.DEFINE_bool("require_complete", False, "Exit 1 unless every fold is done.")


def main(argv):
  del argv
  from trainers import report_lib  # pylint: disable=g-import-not-at-top
  try:
    summary = report_lib.write_report(_WORKDIR.value)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(summary["markdown"])
  print(
      f"pooled {len(summary['folds_done'])} of {summary['num_folds']} folds -> {summary['out_dir']}"
  )
  return 1 if _REQUIRE.value and not summary["complete"] else 0


if __name__ == "__main__":
  app.run(main)
