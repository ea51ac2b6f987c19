"""Tests for eegmobile.evaluation: metrics against scikit-learn, table rendering, figures."""

import csv
import io
import json

import numpy as np
import pytest
from sklearn import metrics as sk

from eegmobile import evaluation
from eegmobile import stages


def _noisy_predictions(n=500, correct=0.7, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, stages.NUM_STAGES, n)
  return labels, np.where(rng.random(n) < correct, labels, rng.integers(0, stages.NUM_STAGES, n))


def test_metrics_match_scikit_learn():
  labels, predicted = _noisy_predictions()
  m = evaluation.metrics(labels, predicted)
  assert m["num_epochs"] == 500
  assert m["acc"] == pytest.approx(100 * sk.accuracy_score(labels, predicted))
  assert m["mf1"] == pytest.approx(100 * sk.f1_score(labels, predicted, average="macro"))
  assert m["kappa"] == pytest.approx(sk.cohen_kappa_score(labels, predicted))
  for index, stage in enumerate(stages.STAGES):
    assert m["f1"][stage] == pytest.approx(100 * sk.f1_score(labels == index, predicted == index))
  np.testing.assert_array_equal(m["confusion"], sk.confusion_matrix(labels, predicted))


def test_metrics_on_a_hand_worked_example():
  # W W N1 N2 N2 N3 REM scored; one N2 called N1 and the N1 called W.
  labels = np.array([0, 0, 1, 2, 2, 3, 4])
  predicted = np.array([0, 0, 0, 2, 1, 3, 4])
  m = evaluation.metrics(labels, predicted)
  assert m["acc"] == pytest.approx(100 * 5 / 7)
  # F1 = 2TP / (2TP + FP + FN): W 4/5, N1 0, N2 2/3, N3 1, REM 1.
  assert m["f1"] == pytest.approx({"W": 80.0, "N1": 0.0, "N2": 200 / 3, "N3": 100.0, "REM": 100.0})
  assert m["mf1"] == pytest.approx((80 + 0 + 200 / 3 + 100 + 100) / 5)
  assert m["confusion"][2] == [0, 1, 1, 0, 0]


def test_perfect_predictions_and_an_absent_stage():
  m = evaluation.metrics(np.arange(10) % 5, np.arange(10) % 5)
  assert (m["acc"], m["mf1"], m["kappa"]) == (100.0, 100.0, 1.0)
  no_n1 = np.array([0, 2, 3, 4, 2])  # N1 in neither array: F1 0, still in the macro mean
  m = evaluation.metrics(no_n1, no_n1)
  assert m["f1"]["N1"] == 0.0 and m["mf1"] == pytest.approx(80.0)
  assert len(m["confusion"]) == stages.NUM_STAGES


def test_pooled_nights_equal_their_epochs_concatenated():
  nights = [
      _noisy_predictions(n, correct, seed)
      for n, correct, seed in ((40, 0.9, 1), (300, 0.5, 2), (7, 0.0, 3))
  ]
  pooled = evaluation.pooled([evaluation.metrics(*night)["confusion"] for night in nights])
  together = evaluation.metrics(np.concatenate([n[0] for n in nights]),
                                np.concatenate([n[1] for n in nights]))
  assert pooled["num_epochs"] == 347
  for key in ("acc", "mf1", "kappa"):
    assert pooled[key] == pytest.approx(together[key])
  assert pooled["f1"] == pytest.approx(
      together["f1"]) and pooled["confusion"] == together["confusion"]
  # Pooling is not averaging: the long, poorly staged night weighs most.
  assert pooled["acc"] < np.mean([evaluation.metrics(*n)["acc"] for n in nights[:2]])


def test_published_rows_are_self_consistent():
  for row in evaluation.PUBLISHED:
    assert set(row["f1"]) == set(stages.STAGES)
    # Each paper's macro-F1 is the mean of its per-class F1: catches a mistyped F1.
    assert np.mean(list(row["f1"].values())) == pytest.approx(row["mf1"], abs=0.06), row["method"]
  paper = evaluation.PUBLISHED[0]
  assert (paper["acc"], paper["mf1"], paper["kappa"]) == (86.97, 81.42, 0.81)
  assert "arXiv:2309.07182, Table 1" in paper["source"]
  for row in evaluation.PUBLISHED[1:]:  # both read from the TinySleepNet repository's table
    assert "akaraspt/tinysleepnet" in row["source"], row["method"]


def test_table_rows_markdown_csv_and_json():
  labels, predicted = _noisy_predictions()
  rows = evaluation.table_rows(evaluation.metrics(labels, predicted), "ours (PARTIAL)")
  published = [r["method"] for r in evaluation.PUBLISHED]
  assert [r["method"] for r in rows] == ["ours (PARTIAL)"] + published
  assert list(rows[0]) == [
      "method", "acc", "mf1", "kappa", "f1_W", "f1_N1", "f1_N2", "f1_N3", "f1_REM", "source"
  ]
  assert rows[0]["acc"] == round(100 * sk.accuracy_score(labels, predicted), 2)
  markdown = evaluation.to_markdown(rows, "Table 1")
  assert markdown.startswith("# Table 1\n") and markdown.count("\n| ") == len(rows) + 1
  assert "| EEGMobile (paper) | 86.97 | 81.42 | 0.81 | 95.4 |" in markdown
  parsed = list(csv.DictReader(io.StringIO(evaluation.to_csv(rows))))
  assert parsed[1]["f1_N1"] == "56.4" and len(parsed) == len(rows)
  assert json.loads(evaluation.to_json(rows, {"status": "x"}))["rows"][0] == rows[0]


def test_figures_are_written_as_png(tmp_path):
  labels, predicted = _noisy_predictions()
  confusion = evaluation.metrics(labels, predicted)["confusion"]
  evaluation.plot_confusion(confusion, str(tmp_path / "confusion.png"), "title (PARTIAL)")
  history = [{
      "epoch": e,
      "phase": 1 if e <= 5 else 2,
      "accuracy": 0.5 + e / 50,
      "val_accuracy": 0.45 + e / 60
  } for e in range(1, 21)]
  evaluation.plot_curves({0: history, 1: history[:12]}, str(tmp_path / "curves.png"), "curves")
  for name in ("confusion.png", "curves.png"):
    data = (tmp_path / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_mean_curve_averages_the_folds_that_reached_each_epoch():
  fold_0 = [dict(epoch=1, accuracy=0.5), dict(epoch=2, accuracy=0.7)]
  fold_3 = [dict(epoch=1, accuracy=0.7)]  # stopped after one epoch
  histories = {0: fold_0, 3: fold_3}
  assert evaluation.mean_by_epoch(histories, "accuracy") == ([1, 2], [pytest.approx(0.6), 0.7])


def test_consecutive_epochs_break_at_gaps_and_night_boundaries():
  nights = ["a", "a", "a", "a", "b", "b"]
  index = [0, 1, 3, 4, 4, 5]
  assert evaluation.consecutive_epochs(nights,
                                       index).tolist() == [False, True, False, True, False, True]


def test_transition_errors_count_false_and_missed_changes():
  labels = np.array([0, 0, 0, 2, 2, 2, 2, 2, 4, 4])
  predicted = np.array([0, 1, 0, 0, 2, 2, 3, 2, 2, 4])
  consecutive = np.ones(10, bool)
  consecutive[0] = False
  errors = evaluation.transition_errors(labels, predicted, consecutive)
  # Expert changes at pairs 2->3 and 7->8; predicted changes at 0->1, 1->2, 3->4, 5->6,
  # 6->7, 8->9: all six false, and both of the expert's missed.
  assert errors["pairs"] == 9 and errors["hours"] == pytest.approx(9 * 30 / 3600)
  assert errors["expert_transitions"] == 2 and errors["predicted_transitions"] == 6
  assert errors["false_transitions"] == 6 and errors["missed_transitions"] == 2
  assert errors["missed_percent"] == 100.0 and errors["predicted_per_expert"] == 3.0
  assert errors["false_per_hour"] == pytest.approx(6 / (9 * 30 / 3600))
  # A pair across a gap is not compared.
  consecutive[3] = False
  assert evaluation.transition_errors(labels, predicted, consecutive)["expert_transitions"] == 1
  perfect = evaluation.transition_errors(labels, labels, np.r_[False, np.ones(9, bool)])
  assert perfect["false_transitions"] == perfect["missed_transitions"] == 0
