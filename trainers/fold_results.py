"""A fold directory's files and how they are read and written (no TensorFlow).

The trainer (`train_lib`) writes them, the report (`report_lib`) and the model card
(`model_card`) read them. Per fold, `<workdir>/fold_XX/` (`<workdir>/final` for FINAL):

  run.json, split.json, config.json   the run id, the subjects, the TrainConfig
  checkpoint.keras, state.json        the last finished epoch (state.json written last)
  history.json/.csv, logs/            loss and accuracy per epoch; TensorBoard
  predictions.csv, metrics.json       one row per test epoch; the fold's metrics
  DONE                                written last, {"epochs": n}
"""

import csv
import io
import json
import os
from typing import Any

import numpy as np

from eegmobile import storage

DONE = "DONE"
PREDICTIONS = "predictions.csv"
HISTORY = "history.json"
FINAL = -1  # TrainConfig.fold of the model to ship: every subject trains, <workdir>/final


def fold_dir(workdir: str, fold: int) -> str:
  """<workdir>/fold_XX, or <workdir>/final for FINAL."""
  return os.path.join(workdir, "final" if fold == FINAL else f"fold_{fold:02d}")


def write_json(path: str, value: Any) -> None:
  """Canonical JSON (sorted keys, one-space indent), whole or not at all."""
  storage.write_text(path, json.dumps(value, indent=1, sort_keys=True))


def read_json(path: str, default: Any = None) -> Any:
  """The JSON value in `path`, or `default` when there is no such file."""
  if not storage.exists(path):
    return default
  return json.loads(storage.read_text(path))


def write_csv(path: str, rows: list[dict], fieldnames: list[str]) -> None:
  """Rows (dicts) as CSV with a header, whole or not at all."""
  text = io.StringIO(newline="")
  out = csv.DictWriter(text, fieldnames=fieldnames)
  out.writeheader()
  out.writerows(rows)
  storage.write_text(path, text.getvalue())


def write_predictions(path: str, rows: list[dict]) -> None:
  """Writes prediction rows (dicts with the same keys) as CSV, atomically."""
  write_csv(path, rows, list(rows[0]) if rows else ["label", "predicted"])


def read_predictions(path: str) -> tuple[np.ndarray, np.ndarray]:
  """(labels, predictions) from a fold's predictions.csv."""
  rows = list(csv.DictReader(io.StringIO(storage.read_text(path))))
  return (np.array([int(r["label"]) for r in rows],
                   np.int64), np.array([int(r["predicted"]) for r in rows], np.int64))
