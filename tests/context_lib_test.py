"""Tests for trainers.context_lib: a fold's context stage never sees its test subject."""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from eegmobile import stages
from tests import fakes
from trainers import config as config_lib
from trainers import context_lib
from trainers import report_lib
from trainers import train_lib

SUBJECTS = ("SC00", "SC01", "SC02")


def _table(seed=0, nights=2, epochs=60, size=8):
  """A features table as `compute_features` gives it: stage runs, noisy features."""
  rng = np.random.default_rng(seed)
  parts = {k: [] for k in ("subject", "night", "epoch_index", "label", "probabilities", "features")}
  for subject in SUBJECTS:
    for night in range(1, nights + 1):
      labels = np.repeat(rng.integers(0, stages.NUM_STAGES, epochs // 6), 6)
      parts["subject"].append(np.full(epochs, subject))
      parts["night"].append(np.full(epochs, night))
      parts["epoch_index"].append(np.arange(epochs))
      parts["label"].append(labels)
      parts["probabilities"].append(rng.dirichlet(np.ones(5), epochs).astype(np.float32))
      parts["features"].append((np.eye(stages.NUM_STAGES, size)[labels] + rng.standard_normal(
          (epochs, size))).astype(np.float16))
  return {k: np.concatenate(v) for k, v in parts.items()}


def test_fitting_never_reads_the_test_subject():
  config = context_lib.ContextConfig(stage="head", window=9, head_steps=20)
  table = _table()
  fitted = context_lib.fit(config, table, ["SC00", "SC01"])
  poisoned = {k: v.copy() for k, v in table.items()}
  test = poisoned["subject"] == "SC02"
  poisoned["features"][test] = np.nan
  poisoned["label"][test] = np.random.default_rng(1).integers(0, 5, test.sum())
  again = context_lib.fit(config, poisoned, ["SC00", "SC01"])
  np.testing.assert_array_equal(again["smoother"].transitions, fitted["smoother"].transitions)
  np.testing.assert_array_equal(again["smoother"].priors, fitted["smoother"].priors)
  for name in ("head", "head_causal"):
    for a, b in zip(again[name].get_weights(), fitted[name].get_weights()):
      np.testing.assert_array_equal(a, b)
      assert np.isfinite(a).all()
  assert fitted["training_subjects"] == ["SC00", "SC01"]
  # ... and what it fits does depend on the training subjects.
  other = context_lib.fit(config, table, ["SC00", "SC02"])
  assert not np.array_equal(other["smoother"].transitions, fitted["smoother"].transitions)


def test_nights_of_sorts_each_night_by_epoch_and_keeps_only_the_subjects_asked():
  table = _table(nights=1, epochs=12)
  order = np.random.default_rng(2).permutation(len(table["label"]))
  shuffled = {k: v[order] for k, v in table.items()}
  nights = context_lib.nights_of(shuffled, ["SC01"])
  assert [(n["subject"], n["night"]) for n in nights] == [("SC01", 1)]
  assert nights[0]["epoch_index"].tolist() == list(range(12))
  assert nights[0]["features"].dtype == np.float32


def test_score_rows_give_every_method_of_the_run():
  config = context_lib.ContextConfig(stage="smoother", lag=1)
  table = _table()
  fitted = context_lib.fit(config, table, ["SC00", "SC01"])
  rows = context_lib.score_rows(config, fitted, context_lib.nights_of(table, ["SC02"]))
  assert len(rows) == 120 and {r["subject"] for r in rows} == {"SC02"}
  assert {k.split("_p_")[0] for k in rows[0] if "_p_" in k} == set(config.methods)
  assert "head_predicted" not in rows[0]
  night = context_lib.nights_of(table, ["SC02"])[0]
  expected = fitted["smoother"].causal_posteriors(night["probabilities"], 1)
  assert [r["smoother_causal_predicted"] for r in rows[:60]] == np.argmax(expected, 1).tolist()


@pytest.fixture(scope="module")
def build(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(directory, subjects=SUBJECTS, epochs_per_night=30, image_size=32)
  return directory


def test_a_fold_with_a_context_head_end_to_end(build, tmp_path, monkeypatch):
  seen = {}
  real_fit_heads, real_fit_smoother = context_lib.fit_heads, context_lib.fit_smoother
  real_compute = context_lib.compute_features

  def spy_heads(config, nights):
    seen["heads"] = sorted({n["subject"] for n in nights})
    return real_fit_heads(config, nights)

  def spy_smoother(nights):
    seen["smoother"] = sorted({n["subject"] for n in nights})
    return real_fit_smoother(nights)

  monkeypatch.setattr(context_lib, "fit_heads", spy_heads)
  monkeypatch.setattr(context_lib, "fit_smoother", spy_smoother)
  config = config_lib.smoke(build_dir=build,
                            workdir=str(tmp_path),
                            fold=1,
                            context="head",
                            context_window=9,
                            context_head_steps=3)
  train_lib.train_fold(config)
  fold = tmp_path / "fold_01"
  split = json.loads((fold / "split.json").read_text())
  assert split["test"] == ["SC01"]
  assert seen["heads"] == seen["smoother"] == sorted(split["train"])  # never SC01, nor SC02
  record = json.loads((fold / "context" / "context.json").read_text())
  assert record["training_subjects"] == sorted(split["train"])
  assert set(record["seconds"]) == {"features", "smoother", "heads"}
  assert set(record["test_metrics"]) == set(context_lib.METHODS)
  for name in ("features.npz", "smoother.json", "head.keras", "head_causal.keras"):
    assert (fold / "context" / name).exists()
  with open(fold / "context_predictions.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 60 and {r["subject"] for r in rows} == {"SC01"}
  with open(fold / "predictions.csv") as f:  # the per-epoch model's own file is unchanged
    per_epoch = list(csv.DictReader(f))
  assert [r["predicted"] for r in per_epoch] == [r["per_epoch_predicted"] for r in rows]
  assert (fold / "DONE").exists()

  # The report sets the methods side by side.
  report = report_lib.write_report(str(tmp_path))
  assert report["context"]["num_epochs"] == 60
  table = (tmp_path / "report" / "context.md").read_text()
  for name in report_lib.METHOD_NAMES.values():
    assert name.format(lag=0) in table
  assert "Context across epochs" in report["markdown"]

  # The features are cached: a second pass reads them, a retrained model recomputes them.
  def no_compute(*args, **kwargs):
    raise AssertionError("features computed again")

  monkeypatch.setattr(context_lib, "compute_features", no_compute)
  cached = context_lib.cached_features(str(fold / "context"),
                                       None,
                                       build, ["SC00", "SC01"],
                                       color="viridis",
                                       model_epochs=2)
  assert len(cached["label"]) == 120
  with pytest.raises(AssertionError, match="computed again"):
    context_lib.cached_features(str(fold / "context"),
                                None,
                                build, ["SC00", "SC01"],
                                color="viridis",
                                model_epochs=3)

  # The model to ship fits its context stage on every subject and its card names it.
  monkeypatch.setattr(context_lib, "compute_features", real_compute)
  card = train_lib.train_fold(dataclasses.replace(config, fold=-1))
  assert seen["heads"] == list(SUBJECTS)
  assert card["context"]["stage"] == "head" and card["context"]["lag"] == 0
  assert card["context"]["cross_validation"][0]["method"] == "per-epoch model"
  assert "## Context across epochs" in (tmp_path / "final" / "MODEL_CARD.md").read_text()
  loaded_config, fitted = context_lib.load(str(tmp_path / "final" / "context"))
  assert loaded_config.window == 9 and set(fitted) >= {"smoother", "head", "head_causal"}
  assert os.path.exists(tmp_path / "final" / "context" / "head.keras")
