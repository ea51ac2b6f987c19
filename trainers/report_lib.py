"""Pooling finished folds into the report (flag-free; trainers.report is its entry point).

A run is complete only when every fold in <workdir>/folds.json has its DONE marker; until
then every output says PARTIAL and how many folds it pooled.
"""

import json
import os

import numpy as np

from eegmobile import evaluation
from trainers import train_lib

_UNFINISHED = {"status": "NOT FINISHED", "num_epochs": "", "acc": "", "mf1": "", "kappa": ""}


def finished_folds(workdir: str) -> tuple[int, list[int]]:
  """(number of folds expected, the finished fold numbers).

  Raises:
    FileNotFoundError: no folds.json (no fold was ever started in workdir).
  """
  path = os.path.join(workdir, "folds.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no folds.json; is {workdir} a trainers.cv workdir?")
  with open(path) as f:
    num_folds = json.load(f)["num_folds"]
  done = [
      k for k in range(num_folds)
      if os.path.exists(os.path.join(workdir, f"fold_{k:02d}", train_lib.DONE))
  ]
  return num_folds, done


def _read_folds(workdir: str, done: list[int]):
  """Pooled (labels, predictions), {fold: history} and one metrics row per finished fold."""
  labels, predicted, histories, per_fold = [], [], {}, []
  for k in done:
    directory = os.path.join(workdir, f"fold_{k:02d}")
    y, p = train_lib.read_predictions(os.path.join(directory, "predictions.csv"))
    labels.append(y)
    predicted.append(p)
    with open(os.path.join(directory, "history.json")) as f:
      histories[k] = json.load(f)
    fold = evaluation.metrics(y, p)
    row = {"fold": k, "status": "done", "num_epochs": fold["num_epochs"]}
    row.update({key: round(fold[key], 3) for key in ("acc", "mf1", "kappa")})
    per_fold.append(row)
  return np.concatenate(labels), np.concatenate(predicted), histories, per_fold


def write_report(workdir: str) -> dict:
  """Pools finished folds; writes table.{md,csv,json}, folds.csv, confusion.png, curves.png.

  Args:
    workdir: the trainers.cv workdir (holds folds.json and fold_XX/).

  Returns:
    {"complete", "folds_done", "num_folds", "per_fold", "pooled" (metrics), "status",
     "markdown", "out_dir"}.

  Raises:
    FileNotFoundError: not a workdir. ValueError: no finished fold.
  """
  num_folds, done = finished_folds(workdir)
  if not done:
    raise ValueError(f"{workdir}: no finished fold to report")
  labels, predicted, histories, per_fold = _read_folds(workdir, done)
  # Unfinished folds are listed too, so folds.csv cannot pass for a complete run.
  per_fold += [{"fold": k, **_UNFINISHED} for k in range(num_folds) if k not in done]
  per_fold.sort(key=lambda row: row["fold"])
  pooled = evaluation.metrics(labels, predicted)
  complete = len(done) == num_folds
  status = "complete" if complete else f"PARTIAL: {len(done)} of {num_folds} folds"
  rows = evaluation.table_rows(pooled, f"eegmobile ({status})")
  title = f"Sleep-EDF, {num_folds}-fold subject-wise CV, pooled {len(done)} fold(s) ({status})"
  markdown = evaluation.to_markdown(rows, title)
  extra = {
      "complete": complete,
      "folds_done": done,
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
    with open(os.path.join(out_dir, name), "w") as f:
      f.write(text)
  evaluation.plot_confusion(pooled["confusion"], os.path.join(out_dir, "confusion.png"), title)
  evaluation.plot_curves(histories, os.path.join(out_dir, "curves.png"), title)
  return {**extra, "markdown": markdown, "out_dir": out_dir}
