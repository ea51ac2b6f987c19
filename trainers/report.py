r"""Pool the folds' predictions into the paper's Table 1, with figures.

  python -m trainers.report --workdir runs/paper [--require_complete]

Writes <workdir>/report/: table.md, table.csv, table.json (ACC, macro-F1, kappa, per-class
F1 of the pooled predictions beside the paper's and peers' published rows), folds.csv (each
fold's ACC, macro-F1, kappa), confusion.png (counts and row-normalised) and curves.png
(train vs validation accuracy per fold); for a run with a context stage (trainers.cv
--context) also context.md/csv/json: the per-epoch model, the HMM smoother and the sequence
head (finished-night and causal) on the same test epochs, with their transition errors. It
reports the workdir's run (run.json): the
run id and its key settings head every output, and fold directories of another run are
skipped and named. A run with unfinished folds is marked PARTIAL everywhere;
--require_complete then exits 1. An s3:// workdir is downloaded to a local scratch copy,
pooled there, and its report/ uploaded back to <workdir>/report/. Exit 2: bad input (one `error:` line); exit 1 on an
unexpected error, a bug: its traceback is appended to <workdir>/errors.log.
"""

import os
import sys

from absl import app
from absl import flags

from eegmobile import cli
from eegmobile import storage
from trainers import report_lib
from trainers import run_lib
from trainers import workdir as workdir_lib

_WORKDIR = flags.DEFINE_string("workdir", "runs/paper", "The trainers.cv workdir.")
_REQUIRE = flags.DEFINE_bool("require_complete", False, "Exit 1 unless every fold is done.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show library warnings and logs.")


def _report(workdir: str) -> dict:
  """Writes the report of a local workdir, or of an s3:// one through a local scratch copy."""
  workdir_lib.check(workdir)
  if not workdir_lib.is_remote(workdir):
    return report_lib.write_report(workdir)
  remote = workdir.rstrip("/")
  local = workdir_lib.scratch(remote)
  try:
    storage.download_tree(remote, local, only=report_lib.INPUTS)  # not the checkpoints
    summary = report_lib.write_report(local)
    uploaded = storage.join(remote, os.path.basename(summary["out_dir"]))
    storage.upload_tree(summary["out_dir"], uploaded)
  finally:  # a copy of the store, or a report already uploaded
    workdir_lib.remove_scratch(local)
  return {**summary, "out_dir": uploaded}


def main(argv):
  del argv
  cli.quiet(_VERBOSE.value)
  try:
    summary = _report(_WORKDIR.value)
  except (FileNotFoundError, run_lib.WorkdirError, workdir_lib.WorkdirError,
          storage.StorageError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    log = cli.report_bug(e, storage.join(_WORKDIR.value, cli.BUG_LOG))
    print(cli.bug_message(e, log), file=sys.stderr)
    return 1
  print(summary["markdown"])
  for reason in summary["folds_skipped"].values():
    print(f"skipped (another run): {reason}")
  print(f"pooled {len(summary['folds_done'])} of {summary['num_folds']} folds of run "
        f"{summary['run_id']} -> {summary['out_dir']}")
  return 1 if _REQUIRE.value and not summary["complete"] else 0


if __name__ == "__main__":
  app.run(main)
