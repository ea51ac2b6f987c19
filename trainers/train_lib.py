"""Training one fold, and cross-validation: flag-free, importable, resumable.

What the paper did and what we do: EEGMobile reports 20-fold subject-wise
cross-validation on Sleep-EDF-20 and gives no separate validation set, so its curves (and
any choice made from them) appear to use the held-out fold. Here the test subject is
never used to choose anything: one further subject (the next fold's) is held out of
training as the validation set, the schedule is fixed (5 + 15 epochs, no early stopping,
the last epoch's weights are evaluated), and the test subject is scored once, at the end.

Per fold, `<workdir>/fold_XX/` holds:
  run.json            the id of the run the fold belongs to (<workdir>/run.json: run_lib)
  split.json          train / validation / test subjects
  checkpoint.keras    model + optimizer after the last finished epoch (atomic replace)
  state.json          epochs finished and phase; a rerun resumes after the last finished
                      epoch; a done fold is skipped, or extended when asked for more epochs
  config.json         the TrainConfig of the latest call (a different run is refused)
  history.json/.csv   loss and accuracy per epoch (train and validation), with the phase
  logs/               TensorBoard
  predictions.csv     one row per test epoch: metadata, label, prediction, probabilities
  metrics.json        the fold's ACC, macro-F1, kappa, per-class F1
  context/, context_predictions.csv
                      with a context stage (TrainConfig.context): fitted on the training
                      subjects, the test subject scored by each method (context_lib)
  DONE                written last
  CLAIM               while a trainers.cv worker trains the fold: its owner and heartbeat
                      (trainers/claims.py)
"""

import dataclasses
import json
import os
import sys
import time
import warnings
from typing import Callable, Iterable, Optional

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from eegmobile import evaluation
from eegmobile import folds
from eegmobile import model as model_lib
from eegmobile import stages
from eegmobile import storage
from tfrecords import datasets
from tfrecords import manifest as manifest_lib
from trainers import context_lib
from trainers import fold_results
from trainers import model_card
from trainers import run_lib
from trainers.config import TrainConfig

DONE = fold_results.DONE
FINAL = fold_results.FINAL
_write_json = fold_results.write_json
_read_json = fold_results.read_json


def fold_dir(config: TrainConfig) -> str:
  """The fold's own directory, <workdir>/fold_XX (<workdir>/final for FINAL)."""
  return fold_results.fold_dir(config.workdir, config.fold)


def _use_mixed_precision(setting: str) -> bool:
  return setting == "on" or (setting == "auto" and bool(tf.config.list_physical_devices("GPU")))


def _datasets(config: TrainConfig, split: folds.FoldSplit, mixed: bool):
  train = _train_dataset(config, split, mixed)
  common = dict(batch_size=config.batch_size,
                color=config.color if config.colormap_on == "host" else None,
                seed=config.seed,
                output_dtype=tf.float16 if mixed else tf.float32)
  val = datasets.make_dataset(config.build_dir,
                              split.validation,
                              training=False,
                              cache=config.cache,
                              **common)
  test = datasets.make_dataset(config.build_dir,
                               split.test,
                               training=False,
                               cache=None,
                               with_metadata=True,
                               **common)
  return train, val, test


def _compile(model, learning_rate: float) -> None:
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy", model_lib.PredictedClasses()])


def _load_or_build(config: TrainConfig, directory: str, image_size: int, epochs_done: int):
  checkpoint = os.path.join(directory, "checkpoint.keras")
  if epochs_done and os.path.exists(checkpoint):
    logging.info("resuming %s after epoch %d", directory, epochs_done)
    return keras.models.load_model(checkpoint)
  model = model_lib.build_model(model_lib.ModelConfig(
      image_size=image_size,
      batch_norm_momentum=config.effective_batch_norm_momentum,
      input_colormap=config.color if config.colormap_on == "device" else None,
      mixed_precision=_use_mixed_precision(config.mixed_precision)),
                                weights=config.weights)
  model_lib.set_trainable_phase(model, 1 if config.phase1_epochs else 2)
  _compile(model, config.learning_rate)
  return model


def _predict(model, test) -> list[dict]:
  rows = []
  for images, labels, meta in test:
    probabilities = np.asarray(model.predict_on_batch(images), np.float64)
    for i, label in enumerate(labels.numpy()):
      row = {
          "subject": meta["subject"][i].numpy().decode(),
          "night": int(meta["night"][i]),
          "epoch_index": int(meta["epoch_index"][i]),
          "onset_seconds": float(meta["onset_seconds"][i]),
          "record": meta["record"][i].numpy().decode(),
          "label": int(label),
          "predicted": int(np.argmax(probabilities[i]))
      }
      row.update({f"p_{s}": round(float(p), 6) for s, p in zip(stages.STAGES, probabilities[i])})
      rows.append(row)
  return rows


def _write_history_csv(path: str, history: list[dict]) -> None:
  columns = sorted({k for h in history for k in h} - {"epoch", "phase"})
  fold_results.write_csv(path, history, ["epoch", "phase"] + columns)


def _save_epoch(model, directory: str, history: list, epoch_log: dict, epoch: int,
                phase: int) -> None:
  """Checkpoint (model + optimizer), history, then state: state.json is written last."""
  with storage.atomic_path(os.path.join(directory, "checkpoint.keras"),
                           keep_extension=True) as part:
    model.save(part)
  history.append({
      "epoch": epoch + 1,
      "phase": phase,
      **{
          k: float(v[-1]) for k, v in epoch_log.items()
      }
  })
  _write_json(os.path.join(directory, "history.json"), history)
  _write_history_csv(os.path.join(directory, "history.csv"), history)
  _write_json(os.path.join(directory, "state.json"), {"epochs_done": epoch + 1, "phase": phase})


def _finished_metrics(config: TrainConfig, directory: str):
  """A finished fold's metrics, or None when it must train (an extended fold is reopened)."""
  done = _read_json(os.path.join(directory, DONE))
  if done and done["epochs"] >= config.total_epochs:
    logging.info("fold %d already done after %d epochs (%s); delete %s to retrain", config.fold,
                 done["epochs"], directory, DONE)
    return _read_json(os.path.join(directory, "metrics.json"))
  if done:
    logging.info("fold %d was done after %d epochs; extending it to %d", config.fold,
                 done["epochs"], config.total_epochs)
    os.remove(os.path.join(directory, DONE))
  return None


def _prepare_fold(config: TrainConfig, manifest: dict, directory: str,
                  run: dict) -> folds.FoldSplit:
  """The fold's split; writes split.json, config.json and the fold's run id."""
  subjects = manifest_lib.subjects(manifest)
  split = folds.split(subjects,
                      config.fold,
                      run["folds"]["num_folds"],
                      num_validation_subjects=config.num_validation_subjects)
  _claim_for_run(directory, run, "fold")
  _write_json(os.path.join(directory, "split.json"), dataclasses.asdict(split))
  _write_json(os.path.join(directory, "config.json"), dataclasses.asdict(config))
  return split


def _set_precision_and_seed(config: TrainConfig) -> bool:
  """Sets Keras' global policy and seeds; returns whether mixed precision is on."""
  mixed = _use_mixed_precision(config.mixed_precision)
  # The model is built under its own policy (ModelConfig.mixed_precision); the global policy
  # is set too so that a checkpoint loaded on resume, and the phase-2 recompile (which adds
  # loss scaling only for a mixed-precision model), see the same one.
  keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
  keras.utils.set_random_seed(config.seed)
  return mixed


def _fit_one_epoch(model, config: TrainConfig, train, val, epoch: int, callbacks) -> dict:
  """Trains one epoch (Keras' fit) and returns its history dict."""
  with warnings.catch_warnings():
    # The datasets' length is unknown to Keras (interleave, unbatch), so each epoch ends
    # by running out of data, which Keras warns about. Reading to the end is wanted: it
    # is also what completes the tf.data cache.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    warnings.filterwarnings("ignore", message=".*shuffle=True.* was passed")
    return model.fit(train,
                     epochs=epoch + 1,
                     initial_epoch=epoch,
                     validation_data=val,
                     steps_per_epoch=config.steps_per_epoch,
                     validation_steps=config.validation_steps if val is not None else None,
                     callbacks=callbacks,
                     verbose=0).history  # our own line per epoch follows (_train_epochs)


def _train_epochs(model,
                  config: TrainConfig,
                  directory: str,
                  train,
                  val,
                  epochs_done: int,
                  steps: int,
                  after_epoch: Optional[Callable[[str], None]] = None) -> None:
  """Trains from `epochs_done` to the last epoch, checkpointing after each (then after_epoch).

  A terminal shows each epoch's progress on one line (`Progress`); every epoch leaves
  one log line, and a warning when the validation predictions use a single class.
  """
  history = _read_json(os.path.join(directory, fold_results.HISTORY), [])[:epochs_done]
  board = keras.callbacks.TensorBoard(os.path.join(directory, "logs"))
  name = "final" if config.fold == FINAL else f"fold {config.fold}"
  for epoch in range(epochs_done, config.total_epochs):
    phase = 1 if epoch < config.phase1_epochs else 2
    if epoch == config.phase1_epochs and epoch > 0:  # phase switch: freeze, fresh Adam
      model_lib.set_trainable_phase(model, 2)
      _compile(model, config.learning_rate)
    start = time.monotonic()
    progress = Progress(f"{name} epoch {epoch + 1}/{config.total_epochs}", steps, config.batch_size)
    epoch_log = _fit_one_epoch(model, config, train, val, epoch, [board, progress])
    _save_epoch(model, directory, history, epoch_log, epoch, phase)
    if after_epoch is not None:
      after_epoch(directory)
    logging.info("%s epoch %d/%d (phase %d) in %.0f s: %s", name, epoch + 1, config.total_epochs,
                 phase,
                 time.monotonic() - start, _epoch_summary(history[-1]))
    warning = collapse_warning(name, epoch, history[-1], config.effective_batch_norm_momentum)
    if warning:
      logging.warning("%s", warning)


def collapse_warning(name: str, epoch: int, entry: dict, momentum: float) -> Optional[str]:
  """A warning when one class is all the model predicted on its validation set (on its
  training set for `final`, which has none), else None."""
  key = "val_predicted_classes" if "val_predicted_classes" in entry else "predicted_classes"
  if entry.get(key) != 1:
    return None
  return (
      f"{name} epoch {epoch + 1}: every {'validation' if key.startswith('val_') else 'training'}"
      f" prediction is one class: the model has collapsed or not learnt yet (batch-norm "
      f"momentum {momentum:g}; with random weights and a short run, Keras' 0.999 does "
      "this: see --batch_norm_momentum and BUILD_NOTES.md)")


class Progress(keras.callbacks.Callback):
  """One line on a terminal, rewritten while an epoch trains: steps, images/s, time left.

  Nothing is written when standard error is not a terminal (logs keep one line per epoch).
  """

  def __init__(self, label: str, steps: int, batch_size: int, every_s: float = 1.0, stream=None):
    super().__init__()
    self._label, self._steps, self._batch = label, steps, batch_size
    self._every_s = every_s
    self._stream = stream or sys.stderr
    self._on = self._stream.isatty()
    self._start = self._shown = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = self._shown = time.monotonic()

  def on_train_batch_end(self, batch, logs=None):
    now = time.monotonic()
    if not self._on or now - self._shown < self._every_s:
      return
    self._shown = now
    self._stream.write("\r" + progress_line(self._label, batch + 1, self._steps, self._batch, now -
                                            self._start) + "\033[K")
    self._stream.flush()

  def on_epoch_end(self, epoch, logs=None):
    if self._on:
      self._stream.write("\r\033[K")
      self._stream.flush()


def progress_line(label: str, done: int, total: int, batch_size: int, seconds: float) -> str:
  """e.g. "fold 3 epoch 2/20: step 120/2379, 27 images/s, 2:45:10 left"."""
  rate = done * batch_size / max(seconds, 1e-9)
  left = (total - done) * batch_size / max(rate, 1e-9) if total else 0.0
  hours, rest = divmod(int(left), 3600)
  return (f"{label}: step {done}/{total or '?'}, {rate:.0f} images/s, "
          f"{hours}:{rest // 60:02d}:{rest % 60:02d} left")


def _epoch_summary(entry: dict) -> str:
  keys = ("loss", "accuracy", "val_loss", "val_accuracy", "val_predicted_classes")
  return ", ".join(f"{k} {entry[k]:.4g}" for k in keys if k in entry)


def _score(model, config: TrainConfig, directory: str, split: folds.FoldSplit, test) -> dict:
  """Predicts the test subjects; writes predictions.csv, metrics.json, the context stage's
  files (with one), then DONE."""
  rows = _predict(model, test)
  fold_results.write_predictions(os.path.join(directory, fold_results.PREDICTIONS), rows)
  labels = np.array([r["label"] for r in rows])
  predicted = np.array([r["predicted"] for r in rows])
  metrics = {
      "fold": config.fold,
      "test_subjects": list(split.test),
      **evaluation.metrics(labels, predicted)
  }
  _write_json(os.path.join(directory, "metrics.json"), metrics)
  if config.context != "none":
    context_lib.run_fold(model, config, directory, split, config.total_epochs)
  _write_json(os.path.join(directory, DONE), {"epochs": config.total_epochs})
  return metrics


def _claim_for_run(directory: str, run: dict, what: str) -> None:
  """Records `directory` as belonging to `run` (once); refuses one of another run."""
  os.makedirs(directory, exist_ok=True)
  fold_run = os.path.join(directory, run_lib.RUN_FILE)
  storage.create_exclusive(fold_run, (json.dumps({"run_id": run["run_id"]}) + "\n").encode())
  recorded = _read_json(fold_run)["run_id"]
  if recorded != run["run_id"]:
    raise run_lib.WorkdirError(f"{fold_run}: this {what} belongs to run {recorded}, not "
                               f"{run['run_id']}; pass --restart to start over")


def train_fold(config: TrainConfig,
               *,
               restart: bool = False,
               after_epoch: Optional[Callable[[str], None]] = None) -> dict:
  """Trains and evaluates one fold; resumes an interrupted fold, skips a finished one.

  The workdir's run must be the one `config` asks for (see run_lib): resuming with other
  settings is refused. A fold that finished with fewer epochs than `config` asks for is
  extended: training continues from its last checkpoint and the test subject is scored
  again.

  Args:
    config: the run; `config.fold` is the fold to train.
    restart: the workdir holds another run: move it to <workdir>/previous/ and start over.
    after_epoch: called with the fold dir after each epoch's checkpoint is written (e.g. to
      upload it to an object-store workdir).

  Returns:
    The fold's metrics (also in <fold dir>/metrics.json).

  Raises:
    FileNotFoundError, ValueError: unusable build or fold.
    run_lib.RunMismatchError: the workdir holds another run (and restart is False).
    model.WeightsUnavailableError: ImageNet weights requested but unavailable.
  """
  if config.fold == FINAL:
    return train_final(config, restart=restart)
  manifest = manifest_lib.load_manifest(config.build_dir)
  run = run_lib.start_run(config, manifest, restart=restart)
  directory = fold_dir(config)
  finished = _finished_metrics(config, directory)
  if finished is not None:
    return finished
  split = _prepare_fold(config, manifest, directory, run)
  mixed = _set_precision_and_seed(config)
  image_size = manifest["image"]["height"]
  train, val, test = _datasets(config, split, mixed)
  epochs_done = _read_json(os.path.join(directory, "state.json"), {"epochs_done": 0})["epochs_done"]
  model = _load_or_build(config, directory, image_size, epochs_done)
  logging.info("fold %d/%d (run %s): test %s, validation %s, %d training subjects, %s precision",
               config.fold, run["folds"]["num_folds"], run["run_id"], split.test, split.validation,
               len(split.train), "mixed" if mixed else "float32")
  _train_epochs(model, config, directory, train, val, epochs_done, _steps(config, split.train),
                after_epoch)
  return _score(model, config, directory, split, test)


def cross_validate(config: TrainConfig,
                   fold_numbers: Iterable[int],
                   *,
                   restart: bool = False) -> list[dict]:
  """Trains the given folds one after another (each resumable); returns their metrics.

  Args:
    config: the run; its `fold` is ignored.
    fold_numbers: the folds to train, in order.
    restart: see `train_fold`.

  Returns:
    Each fold's metrics (see `train_fold`).
  """
  return [train_fold(dataclasses.replace(config, fold=f), restart=restart) for f in fold_numbers]


def train_final(config: TrainConfig, *, restart: bool = False) -> dict:
  """Trains the model to ship on every subject of the build, into <workdir>/final.

  Same schedule, settings and run as the folds (the run identity does not depend on the
  fold), but no subject is held out: no validation and no test, so no test metrics.
  After the last epoch the model card is written (trainers/model_card.py; cross-validation
  metrics of the same run's finished folds if any), then DONE. Resumable like a fold.

  Returns:
    The model card.
  """
  manifest = manifest_lib.load_manifest(config.build_dir)
  run = run_lib.start_run(config, manifest, restart=restart)
  directory = fold_dir(config)
  done = _read_json(os.path.join(directory, DONE))
  card = model_card.read_card(directory)
  if done and card and done["epochs"] >= config.total_epochs:
    logging.info("final already done after %d epochs (%s)", done["epochs"], directory)
    return card
  if done:
    os.remove(os.path.join(directory, DONE))
  subjects = manifest_lib.subjects(manifest)
  split = folds.FoldSplit(FINAL, run["folds"]["num_folds"], tuple(sorted(subjects)), (), ())
  _claim_for_run(directory, run, "model")
  for name in (model_card.CARD_JSON, model_card.CARD_MD):  # a card only for a finished model
    if os.path.exists(os.path.join(directory, name)):
      os.remove(os.path.join(directory, name))
  _write_json(os.path.join(directory, "split.json"), dataclasses.asdict(split))
  _write_json(os.path.join(directory, "config.json"), dataclasses.asdict(config))
  mixed = _set_precision_and_seed(config)
  image_size = manifest["image"]["height"]
  train = _train_dataset(config, split, mixed)
  epochs_done = _read_json(os.path.join(directory, "state.json"), {"epochs_done": 0})["epochs_done"]
  model = _load_or_build(config, directory, image_size, epochs_done)
  logging.info("final (run %s): all %d subjects train, none held out", run["run_id"],
               len(split.train))
  _train_epochs(model, config, directory, train, None, epochs_done, _steps(config, split.train))
  context = None
  if config.context != "none":
    context = context_lib.fit_final(model, config, directory, list(split.train),
                                    config.total_epochs)
  card = model_card.build_card(config, manifest, run, list(split.train), context=context)
  model_card.write_card(directory, card)
  _write_json(os.path.join(directory, DONE), {"epochs": config.total_epochs})
  return card


def _train_dataset(config: TrainConfig, split: folds.FoldSplit, mixed: bool):
  return datasets.make_dataset(config.build_dir,
                               split.train,
                               training=True,
                               cache=config.cache,
                               shuffle=config.shuffle_mode,
                               shuffle_buffer=config.shuffle_buffer,
                               batch_size=config.batch_size,
                               color=config.color if config.colormap_on == "host" else None,
                               seed=config.seed,
                               output_dtype=tf.float16 if mixed else tf.float32)


def _steps(config: TrainConfig, subjects) -> int:
  """Training steps per epoch (for the progress line)."""
  if config.steps_per_epoch:
    return config.steps_per_epoch
  return datasets.dataset_info(config.build_dir, subjects).steps_per_epoch(config.batch_size)
