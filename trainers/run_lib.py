"""A run's identity: what defines the folds of one cross-validation, so runs never mix.

A workdir holds one run. `<workdir>/run.json` records what defines it:

  build       sha256 of the build's manifest (its canonical bytes), its subset and demo flag
  folds       number of folds and the subject -> fold map
  training    the TrainConfig fields that change what is trained (RUN_FIELDS), seed included
  context     the context stage's fields (CONTEXT_FIELDS), only when the run has one: a
              run without a context stage keeps the identity (and run id) it always had

and `run_id`, a short hash of those. Every fold directory records the run id it was trained
for (`fold_XX/run.json`), so a report pools only folds of the workdir's run. Epoch counts
of phase 2 are not part of the identity: asking for more extends finished folds.

Starting a different run in a workdir that holds one is refused (`RunMismatchError` lists
each differing field); `start_run(..., restart=True)` moves the old run's files into
`<workdir>/previous/<old run id>/` first and says so.
"""

import dataclasses
import hashlib
import json
import os
import shutil
from typing import Optional

from absl import logging

from eegmobile import folds
from eegmobile import storage
from tfrecords import manifest as manifest_lib
from trainers import config as config_lib
from trainers import fold_results

RUN_FILE = "run.json"
FOLDS_FILE = "folds.json"
PREVIOUS_DIR = "previous"
# TrainConfig fields that define what is trained. Not here: build_dir and workdir (paths:
# the build is identified by its manifest), fold, cache (where examples are kept, not
# which), and phase2_epochs (more epochs extend a run's folds; each fold records its own).
RUN_FIELDS = ("num_validation_subjects", "weights", "batch_size", "phase1_epochs", "learning_rate",
              "mixed_precision", "color", "seed", "steps_per_epoch", "validation_steps", "shuffle",
              "shuffle_buffer", "colormap_on", "batch_norm_momentum")
# Fields that earlier runs recorded and that can now have only this value (the image size is
# the build's): kept in the identity so that the run ids of earlier runs stay valid.
FIXED_FIELDS = {"image_size": None}
# The context stage (trainers/context_lib.py): in the identity only when `context` is not
# "none", so that runs without one keep their ids.
CONTEXT_FIELDS = ("context", "context_lag", "context_window", "context_head_steps")


class WorkdirError(ValueError):
  """A workdir (or what it holds) cannot be used as asked; the message says why."""


class RunMismatchError(WorkdirError):
  """The workdir holds another run than the one asked for.

  Attributes:
    differences: {field: (recorded value, asked-for value)}.
  """

  def __init__(self, message: str, differences: dict):
    super().__init__(message)
    self.differences = differences


def _canonical(value) -> str:
  return json.dumps(value, indent=1, sort_keys=True) + "\n"


def build_identity(manifest: dict) -> dict:
  """{"manifest_sha256", "subset", "demo"} of a build's manifest."""
  digest = hashlib.sha256(manifest_lib.dumps(manifest).encode()).hexdigest()
  return {"manifest_sha256": digest, "subset": manifest["subset"], "demo": manifest["demo"]}


def run_record(config, manifest: dict) -> dict:
  """The identity of the run `config` asks for on the build of `manifest`, with its id.

  Args:
    config: a trainers.config.TrainConfig.
    manifest: the build's manifest (tfrecords.manifest.load_manifest).

  Returns:
    {"run_id", "build", "folds" {"num_folds", "fold_of_subject"}, "training" {field: value}}.

  Raises:
    ValueError: the number of folds does not fit the build's subjects.
  """
  subjects = manifest_lib.subjects(manifest)
  num_folds = config.num_folds or len(subjects)
  identity = {
      "build": build_identity(manifest),
      "folds": {
          "num_folds": num_folds,
          "fold_of_subject": folds.fold_map(subjects, num_folds)
      },
      "training": {
          **{
              name: getattr(config, name) for name in RUN_FIELDS
          },
          **FIXED_FIELDS,
          # The momentum trained with; Keras' default recorded as None, as earlier runs did.
          "batch_norm_momentum":
              _recorded_momentum(config),
      },
  }
  if getattr(config, "context", "none") != "none":
    identity["context"] = {name: getattr(config, name) for name in CONTEXT_FIELDS}
  run_id = hashlib.sha256(_canonical(identity).encode()).hexdigest()[:12]
  return {"run_id": run_id, **identity}


def _recorded_momentum(config) -> Optional[float]:
  momentum = config.effective_batch_norm_momentum
  return None if momentum == config_lib.KERAS_BATCH_NORM_MOMENTUM else momentum


def _flatten(record: dict) -> dict:
  flat = {f"build.{k}": v for k, v in record.get("build", {}).items()}
  fold_info = record.get("folds", {})
  flat["folds.num_folds"] = fold_info.get("num_folds")
  flat["folds.fold_of_subject"] = fold_info.get("fold_of_subject")
  flat.update({f"training.{k}": v for k, v in record.get("training", {}).items()})
  flat.update({f"context.{k}": v for k, v in record.get("context", {}).items()})
  return flat


def differences(recorded: dict, asked: dict) -> dict:
  """{field: (recorded value, asked-for value)} for every field that differs."""
  a, b = _flatten(recorded), _flatten(asked)
  return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def fold_dirs(workdir: str) -> list[str]:
  """Names of the fold directories (fold_XX) in workdir, sorted."""
  if not os.path.isdir(workdir):
    return []
  return sorted(n for n in os.listdir(workdir)
                if n.startswith("fold_") and os.path.isdir(os.path.join(workdir, n)))


def _mismatch_message(workdir: str, recorded: Optional[dict], diffs: dict) -> str:
  if recorded is None:
    what = (f"{workdir} holds fold directories ({', '.join(fold_dirs(workdir))}) but no "
            f"{RUN_FILE}: they were trained by an older trainers.cv and their settings are "
            "unknown")
  else:
    lines = "\n".join(
        f"  {k}: {_short(there)} there, {_short(now)} now" for k, (there, now) in diffs.items())
    what = (f"{workdir} holds run {recorded['run_id']}, trained with other settings than "
            f"asked for now:\n{lines}")
  return (f"{what}\nResuming with different settings would mix two runs in one report. "
          f"Pass --restart to move that run's files to "
          f"{os.path.join(workdir, PREVIOUS_DIR, '<run id>')}/ and start over, or use "
          "another --workdir.")


def _short(value) -> str:
  text = json.dumps(value, sort_keys=True)
  return text if len(text) <= 60 else text[:57] + "..."


def _move_old_run(workdir: str, recorded: Optional[dict]) -> str:
  """Moves the old run's files into <workdir>/previous/<run id>[-n]/; returns that dir."""
  name = recorded["run_id"] if recorded else "unknown"
  target = os.path.join(workdir, PREVIOUS_DIR, name)
  suffix = 1
  while os.path.exists(target):
    suffix += 1
    target = os.path.join(workdir, PREVIOUS_DIR, f"{name}-{suffix}")
  os.makedirs(target)
  moved = []
  for entry in [RUN_FILE, FOLDS_FILE, "report", "final"] + fold_dirs(workdir):
    if os.path.exists(os.path.join(workdir, entry)):
      shutil.move(os.path.join(workdir, entry), os.path.join(target, entry))
      moved.append(entry)
  logging.warning("--restart: moved %s of run %s to %s", ", ".join(moved), name, target)
  print(f"restart: moved the previous run's files ({', '.join(moved)}) to {target}")
  return target


def _write_fold_map(workdir: str, record: dict) -> None:
  """Writes folds.json once; a different one already there is refused, never rewritten."""
  fold_info = record["folds"]
  subjects = sorted(fold_info["fold_of_subject"])
  folds.write_fold_map(os.path.join(workdir, FOLDS_FILE), subjects, fold_info["num_folds"])


def start_run(config, manifest: dict, *, restart: bool = False) -> dict:
  """Records the run in config.workdir, or checks that the workdir holds this very run.

  Args:
    config: a trainers.config.TrainConfig.
    manifest: the build's manifest.
    restart: if the workdir holds another run, move its files into <workdir>/previous/
      and start this one, instead of refusing.

  Returns:
    The run record (see `run_record`), as stored in <workdir>/run.json.

  Raises:
    RunMismatchError: the workdir holds another run (or folds of an unknown one) and
      restart is False.
    ValueError: bad number of folds, or a folds.json that differs from this run's map.
  """
  record = run_record(config, manifest)
  path = os.path.join(config.workdir, RUN_FILE)
  os.makedirs(config.workdir, exist_ok=True)
  recorded = fold_results.read_json(path)
  if recorded is None and fold_dirs(config.workdir):
    if not restart:
      raise RunMismatchError(_mismatch_message(config.workdir, None, {}), {})
    _move_old_run(config.workdir, None)
  elif recorded is not None and recorded["run_id"] != record["run_id"]:
    diffs = differences(recorded, record)
    if not restart:
      raise RunMismatchError(_mismatch_message(config.workdir, recorded, diffs), diffs)
    _move_old_run(config.workdir, recorded)
  if not storage.create_exclusive(path, _canonical(record).encode()):
    recorded = fold_results.read_json(path)  # another worker created it first: it must be this run
    if recorded["run_id"] != record["run_id"]:
      diffs = differences(recorded, record)
      raise RunMismatchError(_mismatch_message(config.workdir, recorded, diffs), diffs)
  _write_fold_map(config.workdir, record)
  return record


def load_run(workdir: str) -> dict:
  """The run record of a workdir (<workdir>/run.json).

  Raises:
    WorkdirError: no run.json (not a trainers.cv workdir, or one from an older version).
  """
  path = os.path.join(workdir, RUN_FILE)
  recorded = fold_results.read_json(path)
  if recorded is None:
    hint = (f"it holds {', '.join(fold_dirs(workdir))} from an older trainers.cv; "
            "retrain them with trainers.cv --restart"
            if fold_dirs(workdir) else "is it a trainers.cv workdir?")
    raise WorkdirError(f"{path}: no run record; {hint}")
  return recorded


def describe(record: dict) -> str:
  """One line naming the run and its key settings, for titles and logs."""
  build, training = record["build"], record["training"]
  kind = "demo" if build["demo"] else "real"
  return (f"run {record['run_id']}: {build['subset']} ({kind} build "
          f"{build['manifest_sha256'][:12]}), {record['folds']['num_folds']} folds, "
          f"weights {training['weights']}, batch {training['batch_size']}, "
          f"lr {training['learning_rate']}, phase 1 {training['phase1_epochs']} epochs, "
          f"seed {training['seed']}" + _describe_context(record.get("context")))


def _describe_context(context: Optional[dict]) -> str:
  if not context:
    return ""
  return f", context {context['context']} (lag {context['context_lag']})"
