"""Pooling finished folds into the report (flag-free; trainers.report is its entry point).

The report covers the workdir's run (<workdir>/run.json, see run_lib) and pools only folds
that record that run's id; a fold directory of another run is skipped and named. A run is
complete only when every one of its folds has its DONE marker; until then every output
says PARTIAL and how many folds it pooled. Every output names the run and its settings.

A run with a context stage (TrainConfig.context) also gets context.{md,csv,json}: the
per-epoch model, the smoother and the sequence head (finished-night and causal variants)
side by side on the same folds' test epochs: ACC, macro-F1, kappa, per-class F1 and the
transition errors (`evaluation.transition_errors`).
"""

import csv
import io
import os
from typing import Optional

import numpy as np

from eegmobile import evaluation
from eegmobile import storage
from trainers import run_lib
from trainers import fold_results

# Every file the report (and trainers.model_card) reads of a workdir: an s3:// workdir is
# downloaded for them alone, not the folds' checkpoints.
INPUTS = (run_lib.RUN_FILE, fold_results.DONE, fold_results.PREDICTIONS, fold_results.HISTORY,
          "context_predictions.csv")
CONTEXT_PREDICTIONS = INPUTS[-1]  # trainers.context_lib.PREDICTIONS (that module needs Keras)
# Method names in the context table.
METHOD_NAMES = {
    "per_epoch": "per-epoch model",
    "smoother": "HMM smoother (finished night)",
    "smoother_causal": "HMM smoother (causal, lag {lag})",
    "head": "sequence head (finished night)",
    "head_causal": "sequence head (causal, lag {lag})",
}

_UNFINISHED = {"status": "NOT FINISHED", "num_epochs": "", "acc": "", "mf1": "", "kappa": ""}


def finished_folds(workdir: str, run_id: str) -> tuple[list[int], dict[int, str]]:
  """(the finished folds of run `run_id`, {fold: why it was skipped} for other folds).

  A fold directory recording another run id (or none) is skipped even when finished.
  """
  done, skipped = [], {}
  for name in run_lib.fold_dirs(workdir):
    k = int(name.split("_")[1])
    directory = os.path.join(workdir, name)
    fold_run = fold_results.read_json(os.path.join(directory, run_lib.RUN_FILE), {}).get("run_id")
    if fold_run != run_id:
      skipped[k] = f"{directory}: belongs to run {fold_run or 'unknown (no run.json)'}"
    elif storage.exists(os.path.join(directory, fold_results.DONE)):
      done.append(k)
  return done, skipped


def read_folds(workdir: str, done: list[int]):
  """Pooled (labels, predictions), {fold: history} and one metrics row per finished fold."""
  labels, predicted, histories, per_fold = [], [], {}, []
  for k in done:
    directory = os.path.join(workdir, f"fold_{k:02d}")
    y, p = fold_results.read_predictions(os.path.join(directory, fold_results.PREDICTIONS))
    labels.append(y)
    predicted.append(p)
    histories[k] = fold_results.read_json(os.path.join(directory, fold_results.HISTORY))
    fold = evaluation.metrics(y, p)
    row = {"fold": k, "status": "done", "num_epochs": fold["num_epochs"]}
    row.update({key: round(fold[key], 3) for key in ("acc", "mf1", "kappa")})
    per_fold.append(row)
  return np.concatenate(labels), np.concatenate(predicted), histories, per_fold


def write_report(workdir: str) -> dict:
  """Pools the run's finished folds; writes table.{md,csv,json}, folds.csv and the figures.

  Args:
    workdir: the trainers.cv workdir (holds run.json, folds.json and fold_XX/).

  Returns:
    {"run" (the run record), "run_id", "complete", "folds_done", "folds_skipped"
     {fold: reason}, "num_folds", "per_fold", "pooled" (metrics), "status", "markdown",
     "out_dir"}.

  Raises:
    run_lib.WorkdirError: not a workdir (no run.json), or no finished fold of its run.
  """
  run = run_lib.load_run(workdir)
  num_folds = run["folds"]["num_folds"]
  done, skipped = finished_folds(workdir, run["run_id"])
  if not done:
    raise run_lib.WorkdirError(f"{workdir}: no finished fold of run {run['run_id']} to report")
  labels, predicted, histories, per_fold = read_folds(workdir, done)
  # Unfinished folds are listed too, so folds.csv cannot pass for a complete run.
  per_fold += [{"fold": k, **_UNFINISHED} for k in range(num_folds) if k not in done]
  per_fold.sort(key=lambda row: row["fold"])
  pooled = evaluation.metrics(labels, predicted)
  complete = len(done) == num_folds
  status = "complete" if complete else f"PARTIAL: {len(done)} of {num_folds} folds"
  rows = evaluation.table_rows(pooled, f"eegmobile ({status})")
  title = (f"Sleep-EDF, {num_folds}-fold subject-wise CV, pooled {len(done)} fold(s) "
           f"({status}); {run_lib.describe(run)}")
  markdown = evaluation.to_markdown(rows, title)
  extra = {
      "run": run,
      "run_id": run["run_id"],
      "complete": complete,
      "folds_done": done,
      "folds_skipped": skipped,
      "num_folds": num_folds,
      "per_fold": per_fold,
      "pooled": pooled,
      "status": status
  }
  out_dir = os.path.join(workdir, "report")
  os.makedirs(out_dir, exist_ok=True)
  outputs = {
      "table.md": markdown,
      "table.csv": evaluation.to_csv(rows),
      "table.json": evaluation.to_json(rows, extra),
      "folds.csv": evaluation.to_csv(per_fold),
  }
  for name, text in outputs.items():
    storage.write_text(os.path.join(out_dir, name), text)
  context = context_report(workdir, done, run)
  if context:
    extra["context"] = context["json"]
    markdown += "\n" + context["markdown"]
    for name in ("md", "csv"):
      storage.write_text(os.path.join(out_dir, f"context.{name}"), context[name])
    storage.write_text(os.path.join(out_dir, "context.json"),
                       evaluation.to_json(context["rows"], context["json"]))
    storage.write_text(os.path.join(out_dir, "table.json"), evaluation.to_json(rows, extra))
  figure_title = f"{num_folds}-fold CV, {len(done)} pooled ({status}), run {run['run_id']}"
  evaluation.plot_confusion(pooled["confusion"], os.path.join(out_dir, "confusion.png"),
                            figure_title)
  evaluation.plot_curves(histories, os.path.join(out_dir, "curves.png"), figure_title)
  return {**extra, "markdown": markdown, "out_dir": out_dir}


def read_context(workdir: str, done: list[int]) -> dict:
  """The finished folds' context_predictions.csv pooled: {column: array}, or {} if none."""
  columns = {}
  for k in done:
    path = os.path.join(workdir, f"fold_{k:02d}", CONTEXT_PREDICTIONS)
    if not storage.exists(path):
      return {}  # a fold without: not a context run (or an unfinished one); no table
    for row in csv.DictReader(io.StringIO(storage.read_text(path))):
      for key, value in row.items():
        columns.setdefault(key, []).append(value)
  return {k: np.asarray(v) for k, v in columns.items()}


def context_rows(columns: dict, lag: int) -> list[dict]:
  """One row per method: ACC, MF1, kappa, per-class F1 and transition errors."""
  labels = columns["label"].astype(np.int64)
  nights = np.char.add(np.char.add(columns["subject"], "/"), columns["night"])
  consecutive = evaluation.consecutive_epochs(nights, columns["epoch_index"].astype(np.int64))
  rows = []
  methods = [m for m in METHOD_NAMES if f"{m}_predicted" in columns]
  for method in methods + ["expert"]:
    if method == "expert":
      predicted = labels
    else:
      predicted = columns[f"{method}_predicted"].astype(np.int64)
    scores = evaluation.metrics(labels, predicted)
    transitions = evaluation.transition_errors(labels, predicted, consecutive)
    rows.append({
        "method": METHOD_NAMES.get(method, "expert (the labels)").format(lag=lag),
        "acc": round(scores["acc"], 2),
        "mf1": round(scores["mf1"], 2),
        "kappa": round(scores["kappa"], 3),
        **{
            f"f1_{s}": round(scores["f1"][s], 2) for s in scores["f1"]
        },
        "transitions_per_hour": round(transitions["predicted_transitions"] /
                                      transitions["hours"], 2) if transitions["hours"] else 0.0,
        "false_transitions_per_hour": round(transitions["false_per_hour"], 2),
        "missed_transitions_percent": round(transitions["missed_percent"], 1),
    })
  return rows


def context_report(workdir: str, done: list[int], run: dict) -> Optional[dict]:
  """The context table of a run with a context stage, or None.

  Returns:
    {"rows", "markdown", "md", "csv", "json" (extra fields for context.json)}.
  """
  if "context" not in run:
    return None
  columns = read_context(workdir, done)
  if not columns:
    return None
  lag = run["context"]["context_lag"]
  rows = context_rows(columns, lag)
  title = (f"Context across epochs: the same {len(done)} fold(s)' {len(columns['label'])} test "
           f"epochs; run {run['run_id']}, context {run['context']['context']}")
  note = ("transitions_per_hour: stage changes the method predicts between consecutive "
          "epochs; false: a change where the expert's stage stays; missed: % of the expert's "
          "changes where the method's stage stays. The last row is the expert's own.\n")
  markdown = evaluation.to_markdown(rows, title) + "\n" + note
  return {
      "rows": rows,
      "markdown": markdown,
      "md": markdown,
      "csv": evaluation.to_csv(rows),
      "json": {
          "folds_done": done,
          "num_epochs": int(len(columns["label"])),
          "context": run["context"]
      },
  }
