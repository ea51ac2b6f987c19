"""Pooling finished folds into the report (flag-free; trainers.report is its entry point)."""

import json
import os

import numpy as np

from eegmobile import evaluation
from trainers import train_lib


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


def write_report(workdir: str) -> dict:
  """Pools finished folds and writes table.{md,csv,json}, confusion.png, curves.png.

  Raises:
    FileNotFoundError: not a workdir. ValueError: no finished fold.
  """
  num_folds, done = finished_folds(workdir)
  if not done:
    raise ValueError(f"{workdir}: no finished fold to report")
  labels, predicted, histories = [], [], {}
  for k in done:
    directory = os.path.join(workdir, f"fold_{k:02d}")
    y, p = train_lib.read_predictions(os.path.join(directory, "predictions.csv"))
    labels.append(y)
    predicted.append(p)
    with open(os.path.join(directory, "history.json")) as f:
      histories[k] = json.load(f)
  pooled = evaluation.metrics(np.concatenate(labels), np.concatenate(predicted))
  complete = len(done) == num_folds
  status = "complete" if complete else f"PARTIAL: {len(done)} of {num_folds} folds"
  label = f"eegmobile ({status})"
  rows = evaluation.table_rows(pooled, label)
  out_dir = os.path.join(workdir, "report")
  os.makedirs(out_dir, exist_ok=True)
  title = f"Sleep-EDF, {num_folds}-fold subject-wise CV, pooled {len(done)} fold(s) ({status})"
  markdown = evaluation.to_markdown(rows, title)
  extra = {
      "complete": complete,
      "folds_done": done,
      "num_folds": num_folds,
      "pooled": pooled,
      "status": status
  }
  for name, text in (("table.md", markdown), ("table.csv", evaluation.to_csv(rows)),
                     ("table.json", evaluation.to_json(rows, extra))):
    with open(os.path.join(out_dir, name), "w") as f:
      f.write(text)
  evaluation.plot_confusion(pooled["confusion"], os.path.join(out_dir, "confusion.png"), title)
  evaluation.plot_curves(histories, os.path.join(out_dir, "curves.png"))
  return {**extra, "markdown": markdown, "out_dir": out_dir}
