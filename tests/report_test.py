"""Tests for the report: trainers.report_lib and the trainers.report entry point."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as sk

from eegmobile import evaluation
from trainers import report_lib
from trainers import train_lib


def _fake_workdir(workdir, done_folds, num_folds=3, seed=0):
  rng = np.random.default_rng(seed)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "folds.json"), "w") as f:
    json.dump({"num_folds": num_folds, "fold_of_subject": {}}, f)
  pooled_labels, pooled_predicted = [], []
  for k in done_folds:
    fold = os.path.join(workdir, f"fold_{k:02d}")
    os.makedirs(fold)
    labels = rng.integers(0, 5, 40)
    predicted = np.where(rng.random(40) < 0.8, labels, (labels + 1) % 5)
    train_lib.write_predictions(os.path.join(fold, "predictions.csv"), [{
        "subject": f"SC{k:02d}",
        "label": int(a),
        "predicted": int(b)
    } for a, b in zip(labels, predicted)])
    with open(os.path.join(fold, "history.json"), "w") as f:
      json.dump([{
          "epoch": e,
          "phase": 1 if e <= 2 else 2,
          "accuracy": 0.5 + e / 10,
          "val_accuracy": 0.4 + e / 12
      } for e in range(1, 5)], f)
    open(os.path.join(fold, train_lib.DONE), "w").close()
    pooled_labels.append(labels)
    pooled_predicted.append(predicted)
  return np.concatenate(pooled_labels), np.concatenate(pooled_predicted)


def test_partial_run_is_marked_partial_and_pools_only_finished_folds(tmp_path):
  labels, predicted = _fake_workdir(str(tmp_path), [0, 2])
  os.makedirs(tmp_path / "fold_01")  # started, not finished
  summary = report_lib.write_report(str(tmp_path))
  assert not summary["complete"] and summary["folds_done"] == [0, 2]
  pooled = summary["pooled"]  # the finished folds' predictions, pooled, as scikit-learn scores them
  assert pooled["acc"] == pytest.approx(100 * sk.accuracy_score(labels, predicted))
  assert pooled["mf1"] == pytest.approx(100 * sk.f1_score(labels, predicted, average="macro"))
  assert pooled["kappa"] == pytest.approx(sk.cohen_kappa_score(labels, predicted))
  assert pooled["num_epochs"] == 80
  out = tmp_path / "report"
  assert "PARTIAL: 2 of 3 folds" in (out / "table.md").read_text()
  assert "PARTIAL" in (out / "table.csv").read_text()
  table = json.loads((out / "table.json").read_text())
  assert table["status"] == "PARTIAL: 2 of 3 folds"
  assert [r["method"] for r in table["rows"]][1:] == [r["method"] for r in evaluation.PUBLISHED]
  for png in ("confusion.png", "curves.png"):
    assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  with open(out / "folds.csv") as f:
    per_fold = list(csv.DictReader(f))
  assert [(r["fold"], r["status"]) for r in per_fold] == [("0", "done"), ("1", "NOT FINISHED"),
                                                          ("2", "done")]


def test_cli_require_complete(tmp_path):
  _fake_workdir(str(tmp_path), [0])
  run = lambda *a: subprocess.run(
      [sys.executable, "-m", "trainers.report", "--workdir",
       str(tmp_path), *a],
      capture_output=True,
      text=True)
  assert run().returncode == 0
  partial = run("--require_complete")
  assert partial.returncode == 1 and "pooled 1 of 3 folds" in partial.stdout
  _fake_workdir(str(tmp_path / "full"), [0, 1, 2])
  full = subprocess.run([
      sys.executable, "-m", "trainers.report", "--workdir",
      str(tmp_path / "full"), "--require_complete"
  ],
                        capture_output=True,
                        text=True)
  assert full.returncode == 0 and "complete" in full.stdout


def test_not_a_workdir(tmp_path):
  with pytest.raises(FileNotFoundError, match="no folds.json"):
    report_lib.write_report(str(tmp_path))
