r"""Train and evaluate folds of subject-wise cross-validation (the EEGMobile fine-tune).

  python -m trainers.cv --build_dir out/sleep-edf-20 --workdir runs/paper --fold 3
  python -m trainers.cv --build_dir out/sleep-edf-20 --workdir runs/paper --fold all
  python -m trainers.cv --build_dir out/sleep-edf-20 --workdir runs/paper --fold final
  python -m trainers.report --workdir runs/paper

--fold final (or all,final) trains the model to ship: every subject of the build, the
same schedule and settings, no validation and no test subject, into <workdir>/final of the
same run (the run identity does not depend on the fold). After the last epoch it writes
model_card.json and MODEL_CARD.md (trainers/model_card.py): the build's preprocessing,
classes, training settings, run id and, when the workdir holds finished folds of the run,
their pooled cross-validation metrics (train the folds first). trainers.export takes the
directory: --model <workdir>/final.

Each fold trains 5 epochs with every layer trainable, then 15 with only the top of the
backbone and the head (see eegmobile/model.py), and scores its held-out subject. Kill it
and run the same command again: it resumes after the last finished epoch; finished folds
are skipped (or extended, when asked for more phase-2 epochs than they ran). A workdir
holds one run (trainers/run_lib.py): running it with another build or other settings is
refused, naming the differences; --restart moves the old run to <workdir>/previous/ and
starts over. Several workers may share a workdir (trainers/workers.py). The images' size
is the build's: to train at another size, build at it. On a GPU, mixed precision is on by
default; add --colormap_on device. Offline, pass a local ImageNet weights file with
--weights (the error message says which file). A smoke run on the demo build:

  python -m trainers.cv --build_dir out/demo --workdir /tmp/smoke --weights none \
      --phase1_epochs 1 --phase2_epochs 1 --steps_per_epoch 2 --batch_size 4 --fold 3

--context smoother (or head) adds a context stage after the per-epoch model, fitted per
fold on the training subjects only (trainers/context_lib.py); trainers.report then sets
the per-epoch model, the smoother and the head side by side (report/context.md).

Exit status: 0 done; 2 bad input (one `error:` line; with no build, the builds there are
and how to make one); 1 an unexpected error, a bug: its traceback is appended to
<workdir>/errors.log. TensorFlow's own logs go to <workdir>/tensorflow.log unless --verbose.
"""

import dataclasses
import os
import sys

from absl import app
from absl import flags

from eegmobile import cli
from eegmobile import folds
from eegmobile import storage
from tfrecords import manifest as manifest_lib
from trainers import cli_lib
from trainers import fold_results
from trainers import run_lib
from trainers import workdir as workdir_lib
from trainers import workers
from trainers.config import TrainConfig

# Flags live only in entry modules: defined in libraries they collide when imported twice.
_CONFIG = cli.define_flags(TrainConfig, [
    "build_dir", "workdir", "num_folds", "num_validation_subjects", "weights", "batch_size",
    "phase1_epochs", "phase2_epochs", "learning_rate", "cache", "shuffle", "mixed_precision",
    "color", "colormap_on", "seed", "steps_per_epoch", "batch_norm_momentum", "context",
    "context_lag", "context_window", "context_head_steps"
])
_FOLD = flags.DEFINE_string(
    "fold", "0", "Fold number (0-based), a list and ranges of them "
    "(e.g. 0,2,5-7), or 'all'; 'final' (alone or in a list, e.g. all,final) trains the model "
    "to ship on every subject into <workdir>/final, with its model card.")
_RESTART = flags.DEFINE_bool(
    "restart", False, "If --workdir holds another run, move its files to "
    "<workdir>/previous/<run id>/ and start this one (default: refuse, naming the differences).")
_CLAIM_TIMEOUT = flags.DEFINE_float(
    "claim_timeout", 600, "Seconds without a heartbeat after which another worker's claim on "
    "a fold counts as dead and the fold is taken over (workers sharing --workdir).")
_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show TensorFlow's and Keras' own logs, warnings and progress bars.")


def parse_folds(text: str, num_folds: int) -> list[int]:
  """Fold numbers from --fold: 'all', a number, or a list of numbers and ranges ('0,2,5-7').

  Returns:
    The folds, sorted, each once; fold_results.FINAL last when 'final' is named.

  Raises:
    ValueError: not that syntax, or a fold this run does not have.
  """
  parts = [part.strip() for part in text.split(",")]
  final = [fold_results.FINAL] if "final" in parts else []
  parts = [part for part in parts if part != "final"]
  if parts == ["all"]:
    return list(range(num_folds)) + final
  chosen = set()
  for part in parts:
    first, _, last = part.partition("-")
    try:
      low, high = int(first), int(last or first)
    except ValueError:
      raise ValueError(f"--fold must be 'all', a fold number or a list such as 0,2,5-7; "
                       f"got {text!r}") from None
    if not 0 <= low <= high < num_folds:
      raise ValueError(f"--fold {part}: this run has folds 0 to {num_folds - 1}")
    chosen.update(range(low, high + 1))
  return sorted(chosen) + final  # final last: its card pools the folds before it


def _check_input(config: TrainConfig, workdir: workers.Workdir) -> list[int]:
  """Everything about the input that can be checked before training; returns the folds.

  Raises:
    FileNotFoundError: no build. ValueError: bad fold, settings or build;
    run_lib.RunMismatchError: the workdir holds another run.
  """
  manifest = manifest_lib.load_manifest(config.build_dir)
  size = manifest["image"]["height"]
  if size < 32:  # MobileNetV3's smallest input
    raise ValueError(f"{config.build_dir}: images of {size}x{size} pixels; the model needs at "
                     "least 32x32 (rebuild with a larger --image_size)")
  run = workers.start_run(config, manifest, workdir, restart=_RESTART.value)
  num_folds = run["folds"]["num_folds"]
  fold_numbers = parse_folds(_FOLD.value, num_folds)
  subjects = manifest_lib.subjects(manifest)
  for fold in fold_numbers:  # an impossible split is refused now, not after hours of training
    if fold != fold_results.FINAL:
      folds.split(subjects, fold, num_folds, num_validation_subjects=config.num_validation_subjects)
  print(f"{run_lib.describe(run)}\nworkdir {workdir.url}, build {config.build_dir}")
  return fold_numbers


def _setup() -> tuple[TrainConfig, workers.Workdir]:
  """The run's config and where this worker trains (a scratch mirror for s3://)."""
  config = cli.from_flags(TrainConfig, _CONFIG)
  config = dataclasses.replace(config, validation_steps=config.steps_per_epoch)
  workdir_lib.check(config.workdir)
  if not workdir_lib.is_remote(config.workdir):
    return config, workers.Workdir(config.workdir, config.workdir)
  url = config.workdir.rstrip("/")
  local = workdir_lib.scratch(url)
  return dataclasses.replace(config, workdir=local), workers.Workdir(url, local)


def main(argv):
  del argv
  workdir = None
  try:
    config, workdir = _setup()
    fold_numbers = _check_input(config, workdir)
  except FileNotFoundError as e:
    no_build = "no manifest" in str(e)
    print(cli_lib.no_build_help(_CONFIG["build_dir"].value) if no_build else f"error: {e}",
          file=sys.stderr)
    return _finish(workdir, 2)
  except (ValueError, storage.StorageError) as e:  # bad settings, fold, build or store
    print(f"error: {e}", file=sys.stderr)
    return _finish(workdir, 2)
  except Exception as e:  # pylint: disable=broad-except
    log = cli.report_bug(e, storage.join(_CONFIG["workdir"].value, cli.BUG_LOG))
    print(cli.bug_message(e, log), file=sys.stderr)
    return _finish(workdir, 1)
  cli.quiet(_VERBOSE.value, os.path.join(config.workdir, cli.NATIVE_LOG))
  # Lazy: checking the input imports no TensorFlow; training does, quietly: quiet() must run
  # before TensorFlow is imported, so train_lib is imported here, not above.
  from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top
  from trainers import train_lib  # pylint: disable=g-import-not-at-top
  try:
    workers.train_all(config, fold_numbers, workdir, _CLAIM_TIMEOUT.value, train_lib.train_fold,
                      lambda line: print(line, flush=True))
  except (FileNotFoundError, model_lib.WeightsUnavailableError, storage.StorageError,
          workdir_lib.WorkdirError) as e:  # e.g. a weights file, an unreachable store
    print(f"error: {e}", file=sys.stderr)
    return _finish(workdir, 2, kept=True)
  except Exception as e:  # pylint: disable=broad-except
    print(cli.bug_message(e, cli.report_bug(e, os.path.join(config.workdir, cli.BUG_LOG))),
          file=sys.stderr)
    return _finish(workdir, 1, kept=True)
  return _finish(workdir, 0)  # every fold's files are in the store


def _finish(workdir: workers.Workdir | None, status: int, kept: bool = False) -> int:
  """Deletes this worker's scratch mirror of an s3:// workdir (kept, and named, on failure)."""
  if workdir is not None and workdir.remote:
    if kept:
      print(f"this worker's local copy of {workdir.url} is kept: {workdir.local}", file=sys.stderr)
    else:
      workdir_lib.remove_scratch(workdir.local)
  return status


if __name__ == "__main__":
  app.run(main)
