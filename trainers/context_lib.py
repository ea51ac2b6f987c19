"""The context stage of a fold: fitted on the fold's training subjects, scored on its test one.

Flag-free; `train_lib.train_fold` calls `run_fold` after the per-epoch model is scored (and
`train_final` calls `fit_final`), when `TrainConfig.context` is not "none". The per-epoch
model is not changed. Per fold, `<fold dir>/context/` holds:

  features.npz        the per-epoch model's probabilities and Dense-224 features
                      (`sequence_head.FEATURE_LAYER`, float16) of the training and test
                      subjects' epochs, with subject, night, epoch index and label:
                      computed once per fold (one pass over the images) and reused
                      (recomputed when the fold's model changed: its epochs are recorded)
  smoother.json       the hidden Markov smoother (`eegmobile.context`): transitions and
                      priors counted from the training subjects' hypnograms
  head.keras,         the sequence heads (`eegmobile.sequence_head`), centred and causal
  head_causal.keras   (context "head" only), trained on the training subjects' features
  context.json        what was fitted, on which subjects, and the seconds each part took

and `<fold dir>/context_predictions.csv` one row per test epoch: the metadata, the label,
and for each method of `METHODS` its predicted stage and probabilities
(`<method>_p_<stage>`). The validation subject is not used (nothing is chosen: the
schedules are fixed); the test subject is only scored.
"""

import dataclasses
import os
import time
from typing import Optional

from absl import logging
import numpy as np

from eegmobile import context as context_lib
from eegmobile import evaluation
from eegmobile import sequence_head
from eegmobile import stages
from eegmobile import storage
from tfrecords import datasets
from trainers import fold_results

CONTEXT_DIR = "context"
FEATURES_FILE = "features.npz"
SMOOTHER_FILE = "smoother.json"
HEAD_FILE = "head.keras"
CAUSAL_HEAD_FILE = "head_causal.keras"
RECORD_FILE = "context.json"
PREDICTIONS = "context_predictions.csv"
# Every method a fold's context_predictions.csv holds, in report order; the head's only with
# context "head".
METHODS = ("per_epoch", "smoother", "smoother_causal", "head", "head_causal")
_FEATURES_BATCH = 256  # images per inference call: features are computed once a fold


@dataclasses.dataclass(frozen=True)
class ContextConfig:
  """The context stage of a run (from TrainConfig's context fields).

  Attributes:
    stage: "none", "smoother" (the HMM), or "head" (the sequence head, and the smoother
      beside it): what staging applies.
    lag: epochs after the decided one the causal variants read.
    window: epochs each head output sees.
    head_steps: Adam steps training each head.
    seed: the heads' initialisation and crops.
  """
  stage: str = "none"
  lag: int = 0
  window: int = 21
  head_steps: int = 1500
  seed: int = 0

  @property
  def methods(self) -> tuple[str, ...]:
    """The methods a fold of this run scores (`METHODS`)."""
    return METHODS if self.stage == "head" else METHODS[:3]

  def head_config(self, causal: bool) -> sequence_head.HeadConfig:
    return sequence_head.HeadConfig(window=self.window,
                                    causal=causal,
                                    lag=self.lag if causal else 0)


def from_train_config(config) -> ContextConfig:
  """The ContextConfig of a trainers.config.TrainConfig."""
  return ContextConfig(stage=config.context,
                       lag=config.context_lag,
                       window=config.context_window,
                       head_steps=config.context_head_steps,
                       seed=config.seed)


def context_dir(fold_directory: str) -> str:
  return os.path.join(fold_directory, CONTEXT_DIR)


# ------------------------------------------------------------------------------ features


def compute_features(model, build_dir: str, subjects, *, color: Optional[str]) -> dict:
  """The per-epoch model's probabilities and features of every epoch of some subjects.

  Args:
    model: the fold's Keras model.
    build_dir: the build.
    subjects: subject ids.
    color: the colour map the model's input pipeline applies (None: the model takes
      colour-map indices).

  Returns:
    {"subject" str [n], "night" int [n], "epoch_index" int [n], "label" int [n],
     "probabilities" float32 [n, 5], "features" float16 [n, F]}, in file order.
  """
  both = sequence_head.feature_model(model)
  ds = datasets.make_dataset(build_dir,
                             list(subjects),
                             training=False,
                             batch_size=_FEATURES_BATCH,
                             color=color,
                             cache=None,
                             with_metadata=True)
  parts = {k: [] for k in ("subject", "night", "epoch_index", "label", "probabilities", "features")}
  for images, labels, meta in ds:
    probabilities, features = both.predict_on_batch(images)
    parts["subject"].append(np.char.decode(meta["subject"].numpy().astype(bytes)))
    parts["night"].append(meta["night"].numpy().astype(np.int64))
    parts["epoch_index"].append(meta["epoch_index"].numpy().astype(np.int64))
    parts["label"].append(labels.numpy().astype(np.int64))
    parts["probabilities"].append(np.asarray(probabilities, np.float32))
    parts["features"].append(np.asarray(features, np.float16))
  return {k: np.concatenate(v) for k, v in parts.items()}


def cached_features(directory: str, model, build_dir: str, subjects, *, color: Optional[str],
                    model_epochs: int) -> dict:
  """`compute_features`, read from <directory>/features.npz when it was computed for the
  same subjects by a model trained as many epochs (else computed and written there)."""
  path = os.path.join(directory, FEATURES_FILE)
  wanted = sorted(subjects)
  if storage.exists(path):
    with np.load(path) as cached:
      table = {k: cached[k] for k in cached.files}
    if int(table.pop("model_epochs")) == model_epochs and sorted(set(
        table["subject"].tolist())) == wanted:
      logging.info("context: features of %d epochs read from %s", len(table["label"]), path)
      return table
  table = compute_features(model, build_dir, wanted, color=color)
  os.makedirs(directory, exist_ok=True)
  with storage.atomic_path(path, keep_extension=True) as part:
    np.savez(part, model_epochs=model_epochs, **table)
  return table


def nights_of(table: dict, subjects) -> list[dict]:
  """The nights of some subjects in a features table, each in epoch order.

  Returns:
    [{"subject", "night", "epoch_index" [n], "label" [n], "probabilities" [n, 5],
      "features" float32 [n, F] (None for a table without)}], sorted by subject and night.
  """
  out = []
  wanted = set(subjects)
  keys = sorted({(s, int(n)) for s, n in zip(table["subject"], table["night"]) if s in wanted})
  for subject, night in keys:
    rows = np.flatnonzero((table["subject"] == subject) & (table["night"] == night))
    rows = rows[np.argsort(table["epoch_index"][rows], kind="stable")]
    out.append({
        "subject": subject,
        "night": night,
        "epoch_index": table["epoch_index"][rows],
        "label": table["label"][rows],
        "probabilities": table["probabilities"][rows],
        "features": table["features"][rows].astype(np.float32) if "features" in table else None,
    })
  return out


# ------------------------------------------------------------------------------- fitting


def fit_smoother(training_nights: list[dict]) -> context_lib.Smoother:
  """The HMM smoother counted from the training nights' labels."""
  return context_lib.fit_smoother((n["epoch_index"], n["label"]) for n in training_nights)


def fit_heads(config: ContextConfig, training_nights: list[dict]) -> dict:
  """{"head": centred, "head_causal": causal} sequence heads trained on the nights given."""
  grid = [
      sequence_head.grid_night(n["epoch_index"], n["features"], n["label"]) for n in training_nights
  ]
  return {
      name:
          sequence_head.fit_head(config.head_config(causal),
                                 grid,
                                 steps=config.head_steps,
                                 seed=config.seed)
      for name, causal in (("head", False), ("head_causal", True))
  }


def fit(config: ContextConfig, table: dict, training_subjects) -> dict:
  """Fits the context stage on the training subjects' nights only.

  Args:
    config: what to fit.
    table: a features table (`compute_features`) holding at least those subjects.
    training_subjects: the subjects it may learn from (never a test subject).

  Returns:
    {"smoother": Smoother, "head", "head_causal" (context "head"), "seconds" {part: s},
     "training_subjects"}.
  """
  training_nights = nights_of(table, training_subjects)
  fitted = {"training_subjects": sorted(training_subjects), "seconds": {}}
  start = time.perf_counter()
  fitted["smoother"] = fit_smoother(training_nights)
  fitted["seconds"]["smoother"] = time.perf_counter() - start
  if config.stage == "head":
    start = time.perf_counter()
    fitted.update(fit_heads(config, training_nights))
    fitted["seconds"]["heads"] = time.perf_counter() - start
  return fitted


def method_probabilities(config: ContextConfig, fitted: dict, night: dict) -> dict:
  """{method: [n, 5] probabilities} of one night's epochs, for every method of the run."""
  smoother = fitted["smoother"]
  out = {
      "per_epoch":
          night["probabilities"].astype(np.float64),
      "smoother":
          smoother.posteriors(night["probabilities"], night["epoch_index"]),
      "smoother_causal":
          smoother.causal_posteriors(night["probabilities"], config.lag, night["epoch_index"]),
  }
  if config.stage == "head":
    features, _ = sequence_head.grid_night(night["epoch_index"], night["features"])
    on_grid = night["epoch_index"] - night["epoch_index"][0]
    for name, causal in (("head", False), ("head_causal", True)):
      grid = sequence_head.predict_night(fitted[name], config.head_config(causal), features)
      out[name] = np.asarray(grid, np.float64)[on_grid]
  return out


def score_rows(config: ContextConfig, fitted: dict, nights: list[dict]) -> list[dict]:
  """context_predictions.csv rows: one per epoch of the nights given."""
  rows = []
  for night in nights:
    by_method = method_probabilities(config, fitted, night)
    for i, epoch in enumerate(night["epoch_index"]):
      row = {
          "subject": night["subject"],
          "night": night["night"],
          "epoch_index": int(epoch),
          "label": int(night["label"][i]),
      }
      for method in config.methods:
        p = by_method[method][i]
        row[f"{method}_predicted"] = int(np.argmax(p))
        row.update({f"{method}_p_{s}": round(float(v), 6) for s, v in zip(stages.STAGES, p)})
      rows.append(row)
  return rows


def save(directory: str, config: ContextConfig, fitted: dict) -> dict:
  """Writes the fitted stage into <directory> (smoother.json, heads, context.json)."""
  os.makedirs(directory, exist_ok=True)
  fold_results.write_json(os.path.join(directory, SMOOTHER_FILE), fitted["smoother"].to_dict())
  files = {"smoother": SMOOTHER_FILE}
  if config.stage == "head":
    for name, file in (("head", HEAD_FILE), ("head_causal", CAUSAL_HEAD_FILE)):
      with storage.atomic_path(os.path.join(directory, file), keep_extension=True) as part:
        fitted[name].save(part)
      files[name] = file
  record = {
      "stage": config.stage,
      "lag": config.lag,
      "window": config.window,
      "head_steps": config.head_steps,
      "feature_layer": sequence_head.FEATURE_LAYER,
      "files": files,
      "training_subjects": fitted["training_subjects"],
      "seconds": {
          k: round(v, 2) for k, v in fitted["seconds"].items()
      },
  }
  fold_results.write_json(os.path.join(directory, RECORD_FILE), record)
  return record


def load(directory: str) -> tuple[ContextConfig, dict]:
  """(the config, the fitted stage) `save` wrote into <directory>.

  Raises:
    FileNotFoundError: no context.json there.
  """
  # Lazy: keras is needed only to read the heads back; the report reads no context files.
  import keras  # pylint: disable=g-import-not-at-top
  record = fold_results.read_json(os.path.join(directory, RECORD_FILE))
  if record is None:
    raise FileNotFoundError(f"{directory}: no {RECORD_FILE}")
  config = ContextConfig(stage=record["stage"],
                         lag=record["lag"],
                         window=record["window"],
                         head_steps=record["head_steps"])
  fitted = {
      "smoother":
          context_lib.Smoother.from_dict(
              fold_results.read_json(os.path.join(directory, SMOOTHER_FILE))),
      "training_subjects":
          record["training_subjects"],
  }
  for name in ("head", "head_causal"):
    if name in record["files"]:
      fitted[name] = keras.saving.load_model(os.path.join(directory, record["files"][name]))
  return config, fitted


# ------------------------------------------------------------------------------ per fold


def run_fold(model, train_config, directory: str, split, model_epochs: int) -> dict:
  """Fits the fold's context stage on its training subjects and scores its test subject.

  Args:
    model: the fold's trained per-epoch model.
    train_config: the run's TrainConfig.
    directory: the fold's directory.
    split: the fold's FoldSplit.
    model_epochs: epochs the model trained (the features cache's key).

  Returns:
    {method: `evaluation.metrics` of the test epochs} (also in context/context.json).
  """
  config = from_train_config(train_config)
  start = time.perf_counter()
  color = train_config.color if train_config.colormap_on == "host" else None
  table = cached_features(context_dir(directory),
                          model,
                          train_config.build_dir,
                          list(split.train) + list(split.test),
                          color=color,
                          model_epochs=model_epochs)
  features_seconds = time.perf_counter() - start
  fitted = fit(config, table, split.train)
  fitted["seconds"]["features"] = features_seconds
  record = save(context_dir(directory), config, fitted)
  rows = score_rows(config, fitted, nights_of(table, split.test))
  fold_results.write_csv(os.path.join(directory, PREDICTIONS), rows, list(rows[0]))
  labels = np.array([r["label"] for r in rows])
  metrics = {
      m: evaluation.metrics(labels, np.array([r[f"{m}_predicted"] for r in rows]))
      for m in config.methods
  }
  record["test_metrics"] = {
      m: {
          k: v[k] for k in ("acc", "mf1", "kappa", "f1")
      } for m, v in metrics.items()
  }
  fold_results.write_json(os.path.join(context_dir(directory), RECORD_FILE), record)
  logging.info("fold %s context: %s", train_config.fold,
               ", ".join(f"{m} acc {v['acc']:.1f} mf1 {v['mf1']:.1f}" for m, v in metrics.items()))
  return metrics


def fit_final(model, train_config, directory: str, subjects, model_epochs: int) -> dict:
  """Fits the shipped model's context stage on every subject (no test subject).

  Returns:
    The context.json record (what the model card carries).
  """
  config = from_train_config(train_config)
  color = train_config.color if train_config.colormap_on == "host" else None
  start = time.perf_counter()
  table = cached_features(context_dir(directory),
                          model,
                          train_config.build_dir,
                          subjects,
                          color=color,
                          model_epochs=model_epochs)
  features_seconds = time.perf_counter() - start
  fitted = fit(config, table, subjects)
  fitted["seconds"]["features"] = features_seconds
  return save(context_dir(directory), config, fitted)


def read_record(directory: str) -> Optional[dict]:
  """The context.json of a fold or final directory, or None."""
  return fold_results.read_json(os.path.join(context_dir(directory), RECORD_FILE))
