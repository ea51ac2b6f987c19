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
starts over. On a GPU, mixed precision is on by default; add --colormap_on device.
BUILD_NOTES.md has measured times. Offline, pass a local ImageNet weights file with
--weights (the error message says which file). A smoke run on the demo build:

  python -m trainers.cv --build_dir out/demo --workdir /tmp/smoke --weights none \
      --phase1_epochs 1 --phase2_epochs 1 --steps_per_epoch 2 --batch_size 4 --fold 3

Exit status: 0 done; 2 bad input (one `error:` line; with no build, the builds there are
and how to make one); 1 an unexpected error, a bug: its traceback is appended to
<workdir>/errors.log. TensorFlow's own logs go to <workdir>/tensorflow.log unless --verbose.
"""

import dataclasses
import os
import sys

from absl import app
from absl import flags

from tfrecords import filesystems

# An s3:// --workdir: the URL; config.workdir is then this worker's local scratch mirror.
_remote_workdir = None
_scratch = None  # this worker's local mirror of an s3:// workdir, deleted on success

# Flags live only in entry modules: defined in libraries they collide when imported twice.
_BUILD_DIR = flags.DEFINE_string("build_dir", "out/sleep-edf-20", "Output of beam_pipelines.build.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/paper", "Checkpoints, logs and predictions.")
_FOLD = flags.DEFINE_string(
    "fold", "0", "Fold number (0-based), a list and ranges of them "
    "(e.g. 0,2,5-7), or 'all'; 'final' (alone or in a list, e.g. all,final) trains the model "
    "to ship on every subject into <workdir>/final, with its model card.")
_NUM_FOLDS = flags.DEFINE_integer("num_folds", None, "Default: one fold per subject.")
_NUM_VALIDATION = flags.DEFINE_integer(
    "num_validation_subjects", 1, "Subjects held out of training to validate on (never the "
    "test subject).")
_WEIGHTS = flags.DEFINE_string("weights", "imagenet", "'imagenet', a weights file, or 'none'.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Examples per batch.")
_PHASE1 = flags.DEFINE_integer("phase1_epochs", 5, "Epochs training every layer.")
_PHASE2 = flags.DEFINE_integer("phase2_epochs", 15, "Epochs training the top only.")
_LR = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
_CACHE = flags.DEFINE_string("cache", "memory", "'memory', a file path prefix, or 'none'.")
_SHUFFLE = flags.DEFINE_enum(
    "shuffle", "auto", ["auto", "full", "stream"], "auto: full with --cache memory, else "
    "stream. full: every epoch a uniform random permutation of "
    "the training set, held in memory (needs --cache memory); stream: shard interleave and a "
    "shuffle buffer, for data that does not fit in memory.")
_MIXED = flags.DEFINE_enum("mixed_precision", "auto", ["auto", "on", "off"],
                           "auto: on only when a GPU is present.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Resize images; default: the build's.")
_COLOR = flags.DEFINE_enum("color", "viridis", ["viridis", "grey"], "Colour map.")
_COLORMAP_ON = flags.DEFINE_enum(
    "colormap_on", "host", ["host", "device"], "Where the colour map is applied: in tf.data "
    "(host) or as the model's first layer on the accelerator (device; fastest to feed).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Limit steps per epoch (smoke runs).")
_RESTART = flags.DEFINE_bool(
    "restart", False, "If --workdir holds another run, move its files to "
    "<workdir>/previous/<run id>/ and start this one (default: refuse, naming the differences).")
_CLAIM_TIMEOUT = flags.DEFINE_float(
    "claim_timeout", 600, "Seconds without a heartbeat after which another worker's claim on "
    "a fold counts as dead and the fold is taken over (workers sharing --workdir).")
_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show TensorFlow's and Keras' own logs, warnings and progress bars.")

FINAL = -1  # train_lib.FINAL (importing train_lib here would import TensorFlow)


def parse_folds(text: str, num_folds: int) -> list[int]:
  """Fold numbers from --fold: 'all', a number, or a list of numbers and ranges ('0,2,5-7').

  Returns:
    The folds, sorted, each once.

  Raises:
    ValueError: not that syntax, or a fold this run does not have.
  """
  if text.strip() == "all":
    return list(range(num_folds))
  chosen = set()
  parts = [part for part in text.split(",") if part.strip() != "final"]
  final = [FINAL] if len(parts) < len(text.split(",")) else []
  if not parts and final:
    return final
  if parts == ["all"]:
    return list(range(num_folds)) + final
  for part in parts:
    first, _, last = part.strip().partition("-")
    try:
      low, high = int(first), int(last or first)
    except ValueError:
      raise ValueError(f"--fold must be 'all', a fold number or a list such as 0,2,5-7; "
                       f"got {text!r}") from None
    if not 0 <= low <= high < num_folds:
      raise ValueError(f"--fold {part.strip()}: this run has folds 0 to {num_folds - 1}")
    chosen.update(range(low, high + 1))
  return sorted(chosen) + final  # final last: its card pools the folds before it


def _config():
  from trainers import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.paper(build_dir=_BUILD_DIR.value,
                          workdir=_WORKDIR.value,
                          num_folds=_NUM_FOLDS.value,
                          num_validation_subjects=_NUM_VALIDATION.value,
                          weights=None if _WEIGHTS.value.lower() == "none" else _WEIGHTS.value,
                          batch_size=_BATCH.value,
                          phase1_epochs=_PHASE1.value,
                          phase2_epochs=_PHASE2.value,
                          learning_rate=_LR.value,
                          cache=None if _CACHE.value == "none" else _CACHE.value,
                          shuffle=_SHUFFLE.value,
                          mixed_precision=_MIXED.value,
                          image_size=_IMAGE_SIZE.value,
                          color=_COLOR.value,
                          colormap_on=_COLORMAP_ON.value,
                          seed=_SEED.value,
                          steps_per_epoch=_STEPS.value,
                          validation_steps=_STEPS.value)


def _check_input(config) -> list[int]:
  """Everything about the input that can be checked before training; returns the folds.

  Raises:
    FileNotFoundError: no build. ValueError: bad fold, settings or build;
    run_lib.RunMismatchError: the workdir holds another run.
  """
  from eegmobile import folds  # pylint: disable=g-import-not-at-top
  from tfrecords import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  from trainers import run_lib  # pylint: disable=g-import-not-at-top
  manifest = manifest_lib.load_manifest(config.build_dir)
  if (config.image_size and config.colormap_on == "device" and
      config.image_size != manifest["image"]["height"]):
    raise ValueError("--image_size with --colormap_on device: rebuild at that size instead")
  size = config.image_size or manifest["image"]["height"]
  if size < 32:  # MobileNetV3's smallest input
    raise ValueError(f"{config.build_dir}: images of {size}x{size} pixels; the model needs at "
                     "least 32x32 (pass --image_size, or rebuild with a larger --image_size)")
  if _remote_workdir:
    run = _start_remote_run(config, manifest)
  else:
    run = run_lib.start_run(config, manifest, restart=_RESTART.value)
  num_folds = run["folds"]["num_folds"]
  fold_numbers = parse_folds(_FOLD.value, num_folds)
  subjects = manifest_lib.subjects(manifest)
  for fold in (f for f in fold_numbers
               if f != FINAL):  # refuses an impossible split now, not after hours of training
    folds.split(subjects, fold, num_folds, num_validation_subjects=config.num_validation_subjects)
  print(f"{run_lib.describe(run)}\nworkdir {_remote_workdir or config.workdir}, "
        f"build {config.build_dir}")
  return fold_numbers


# Uploaded after a fold's other files, so the store never shows progress ahead of its checkpoint.
_PROGRESS_FILES = ("history.json", "state.json", "predictions.csv", "metrics.json", "DONE")


def _start_remote_run(config, manifest) -> dict:
  """start_run for an s3:// workdir: its run.json is created once (conditional put) or compared.

  Raises:
    run_lib.RunMismatchError: the workdir holds another run. ValueError: --restart asked.
  """
  from trainers import run_lib  # pylint: disable=g-import-not-at-top
  from trainers import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  if _RESTART.value:
    raise ValueError(f"{_remote_workdir}: --restart is not supported for s3:// workdirs; "
                     "use a new workdir URL")
  remote_run = f"{_remote_workdir}/{run_lib.RUN_FILE}"
  for _ in range(2):  # a second pass when another worker created run.json meanwhile
    recorded = workdir_lib.read_text(remote_run)
    if recorded is not None:
      with open(os.path.join(config.workdir, run_lib.RUN_FILE), "w") as f:
        f.write(recorded)
    try:
      run = run_lib.start_run(config, manifest)
    except run_lib.RunMismatchError as e:
      raise run_lib.RunMismatchError(
          str(e).replace(config.workdir, _remote_workdir), e.differences) from None
    if recorded is not None:
      return run
    local_run = os.path.join(config.workdir, run_lib.RUN_FILE)
    with open(local_run) as f:
      created = workdir_lib.create_exclusive(remote_run, f.read())
    if created:
      with open(os.path.join(config.workdir, run_lib.FOLDS_FILE)) as f:
        workdir_lib.create_exclusive(f"{_remote_workdir}/{run_lib.FOLDS_FILE}", f.read())
      return run
    os.remove(local_run)
  raise AssertionError("unreachable: run.json exists after a failed conditional create")


def _train_claimed(config, fold: int) -> bool:
  """Trains `fold` if this worker can claim it; returns whether it did."""
  from trainers import claims  # pylint: disable=g-import-not-at-top
  from trainers import report_lib  # pylint: disable=g-import-not-at-top
  from trainers import train_lib  # pylint: disable=g-import-not-at-top
  fold_config = dataclasses.replace(config, fold=fold)
  from trainers import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  directory = train_lib.fold_dir(fold_config)
  claimed = directory
  after_epoch = None
  if _remote_workdir:  # claim in the store; train in the mirror, uploading each checkpoint
    claimed = f"{_remote_workdir}/{os.path.basename(directory)}"

    def after_epoch(local_dir):
      workdir_lib.upload(local_dir, claimed, skip=(claims.CLAIM,), last=_PROGRESS_FILES)

  if not claims.try_claim(claimed, _CLAIM_TIMEOUT.value):
    return False
  name = "final" if fold == FINAL else f"fold {fold}"
  print(f"{name}: training ({config.total_epochs} epochs)", flush=True)
  try:
    with claims.Heartbeat(claimed, max(1.0, _CLAIM_TIMEOUT.value / 10)):
      if _remote_workdir:  # resume from what a previous worker uploaded
        workdir_lib.download(claimed, directory, skip=(claims.CLAIM,))
        if fold == FINAL:  # the folds' results (no checkpoints), for the model card's metrics
          workdir_lib.download(_remote_workdir, config.workdir, only=report_lib.INPUTS)
      result = train_lib.train_fold(fold_config, after_epoch=after_epoch)
      if _remote_workdir:
        after_epoch(directory)  # predictions, metrics, DONE
  finally:
    claims.release(claimed)
  if fold == FINAL:
    cv = result["evaluation"]["cross_validation"]
    done = "none" if cv == "none" else f"{cv['num_folds_done']} fold(s) pooled"
    shown = claimed if _remote_workdir else directory
    print(
        f"final: {shown}/{result['model_file']}, model card {shown}/model_card.json "
        f"(cross-validation metrics: {done})",
        flush=True)
    return True
  print(
      f"fold {result['fold']} ({', '.join(result['test_subjects'])}): "
      f"ACC {result['acc']:.2f}  MF1 {result['mf1']:.2f}  kappa {result['kappa']:.3f}",
      flush=True)
  return True


def _train(config, fold_numbers) -> None:
  """Trains every fold once, sharing them with any other worker on the same workdir.

  A fold claimed by another live worker is left to it and checked again later; one whose
  worker died (no heartbeat for --claim_timeout seconds) is taken over and resumed.
  """
  import time  # pylint: disable=g-import-not-at-top
  pending = list(fold_numbers)
  while pending:
    trained = [fold for fold in pending if _train_claimed(config, fold)]
    pending = [fold for fold in pending if fold not in trained]
    if pending and not trained:
      print(f"waiting: fold(s) {', '.join(map(str, pending))} claimed by other workers", flush=True)
      time.sleep(min(30.0, _CLAIM_TIMEOUT.value / 4))


def main(argv):
  del argv
  global _remote_workdir, _scratch
  from trainers import cli_lib  # pylint: disable=g-import-not-at-top
  from trainers import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  try:
    workdir_lib.check(_WORKDIR.value)
    config = _config()
    if workdir_lib.is_s3(_WORKDIR.value):
      _remote_workdir = _WORKDIR.value.rstrip("/")
      _scratch = workdir_lib.scratch(_remote_workdir)
      config = dataclasses.replace(config, workdir=_scratch)
    fold_numbers = _check_input(config)
  except FileNotFoundError as e:
    no_build = "no manifest" in str(e)
    print(cli_lib.no_build_help(_BUILD_DIR.value) if no_build else f"error: {e}", file=sys.stderr)
    _remove_scratch()
    return 2
  except ValueError as e:  # bad settings, fold or build; run_lib.RunMismatchError
    print(f"error: {e}", file=sys.stderr)
    _remove_scratch()
    return 2
  except Exception as e:  # pylint: disable=broad-except
    print(cli_lib.bug_message(e, cli_lib.report_bug(_WORKDIR.value, e)), file=sys.stderr)
    _remove_scratch()
    return 1
  # Checking the input imports no TensorFlow (local builds); training does, quietly.
  cli_lib.quiet(_VERBOSE.value, os.path.join(config.workdir, cli_lib.NATIVE_LOG))
  from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top
  try:
    _train(config, fold_numbers)
  except (FileNotFoundError, model_lib.WeightsUnavailableError,
          workdir_lib.WorkdirError) as e:  # e.g. a weights file, an unreachable store
    print(f"error: {e}", file=sys.stderr)
    _kept_scratch()
    return 2
  except Exception as e:  # pylint: disable=broad-except
    print(cli_lib.bug_message(e, cli_lib.report_bug(config.workdir, e)), file=sys.stderr)
    _kept_scratch()
    return 1
  _remove_scratch()  # every fold's files are in the store
  return 0


def _remove_scratch() -> None:
  """Deletes this worker's scratch mirror of an s3:// workdir (no-op for a local one)."""
  from trainers import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  if _scratch:
    workdir_lib.remove_scratch(_scratch)


def _kept_scratch() -> None:
  if _scratch:
    print(f"this worker's local copy of {_remote_workdir} is kept: {_scratch}", file=sys.stderr)


if __name__ == "__main__":
  # After reading s3:// (tensorflow-io), leave with our status, not the SDK's abort at exit.
  app.run(filesystems.exits_cleanly(main))
