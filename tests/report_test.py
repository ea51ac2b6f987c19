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
from trainers import fold_results
from trainers import config as config_lib
from trainers import report_lib
from trainers import run_lib
from trainers import train_lib


def _start_run(workdir, num_folds, seed=0):
  """Records a run of `num_folds` one-subject folds in workdir, as trainers.cv does."""
  manifest = {
      "subset": "sleep-edf-20",
      "demo": True,
      "subjects": {
          f"SC{k:02d}": {} for k in range(num_folds)
      }
  }
  config = config_lib.smoke(workdir=workdir, seed=seed)
  return run_lib.start_run(config, manifest)


def _fake_workdir(workdir, done_folds, num_folds=3, seed=0, run_seed=0):
  rng = np.random.default_rng(seed)
  run_id = _start_run(workdir, num_folds, run_seed)["run_id"]
  pooled_labels, pooled_predicted = [], []
  for k in done_folds:
    fold = os.path.join(workdir, f"fold_{k:02d}")
    os.makedirs(fold)
    with open(os.path.join(fold, run_lib.RUN_FILE), "w") as f:
      json.dump({"run_id": run_id}, f)
    labels = rng.integers(0, 5, 40)
    predicted = np.where(rng.random(40) < 0.8, labels, (labels + 1) % 5)
    fold_results.write_predictions(os.path.join(fold, "predictions.csv"), [{
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
    open(os.path.join(fold, fold_results.DONE), "w").close()
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
  # A run without a context stage: no context table, outputs as before it existed.
  assert "context" not in summary and not (out / "context.md").exists()
  assert "context" not in table


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
  with pytest.raises(run_lib.WorkdirError, match="run.json: no run record"):
    report_lib.write_report(str(tmp_path))


def test_pools_only_the_workdirs_run_and_names_it(tmp_path):
  labels, predicted = _fake_workdir(str(tmp_path), [0, 2])
  run = run_lib.load_run(str(tmp_path))
  other = tmp_path / "fold_01"  # finished, but for another run (seed 1)
  _fake_workdir(str(tmp_path / "elsewhere"), [1], run_seed=1)
  os.rename(tmp_path / "elsewhere" / "fold_01", other)
  other_id = json.loads((other / run_lib.RUN_FILE).read_text())["run_id"]
  assert other_id != run["run_id"] and (other / fold_results.DONE).exists()
  summary = report_lib.write_report(str(tmp_path))
  assert summary["folds_done"] == [0, 2] and list(summary["folds_skipped"]) == [1]
  assert other_id in summary["folds_skipped"][1]
  assert summary["pooled"]["num_epochs"] == len(labels) == 80
  table = json.loads((tmp_path / "report" / "table.json").read_text())
  assert table["run_id"] == run["run_id"] and table["run"]["training"]["seed"] == 0
  title = (tmp_path / "report" / "table.md").read_text().splitlines()[0]
  assert f"run {run['run_id']}" in title and "seed 0" in title and "3 folds" in title


def _report(workdir, *args):
  return subprocess.run([sys.executable, "-m", "trainers.report", "--workdir", workdir, *args],
                        capture_output=True,
                        text=True)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
  result = _report(str(tmp_path / "nothing"))
  assert result.returncode == 2
  assert result.stderr.startswith("error: ") and "no run record" in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "nothing" / "errors.log").exists()


def test_cli_unexpected_error_is_a_bug_with_its_traceback_in_a_log(tmp_path):
  _fake_workdir(str(tmp_path), [0])
  (tmp_path / "fold_00" / "history.json").write_text("[1]")  # not a list of epoch dicts
  result = _report(str(tmp_path))
  log = tmp_path / "errors.log"
  assert result.returncode == 1
  assert "bug" in result.stderr and str(log) in result.stderr
  assert "TypeError" in result.stderr and "Traceback" not in result.stderr
  text = log.read_text()
  assert "Traceback (most recent call last)" in text and "TypeError" in text
  assert "trainers.report" in text.splitlines()[0] or "--workdir" in text.splitlines()[0]
