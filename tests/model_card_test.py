"""trainers.cv --fold final on a tiny demo build: card, CV metrics, export (subprocesses)."""

import json
import os
import subprocess
import sys

import pytest

from tests import fakes
from trainers import fold_results
from trainers import config as config_lib
from trainers import model_card
from trainers import train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("--weights", "none", "--phase1_epochs", "1", "--phase2_epochs", "1", "--steps_per_epoch",
        "1", "--batch_size", "4")


def _run(cwd, module, *args):
  env = {**os.environ, "PYTHONPATH": REPO}
  return subprocess.run([sys.executable, "-m", module, *args],
                        cwd=cwd,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  directory = tmp_path_factory.mktemp("final")
  fakes.make_fake_build(str(directory / "out" / "demo"), epochs_per_night=4, image_size=32)
  return directory


@pytest.mark.slow  # four subprocesses that import TensorFlow: about 140 s on 2 cores
def test_final_card_without_and_with_cv_metrics_and_export(demo):
  result = _run(demo, "trainers.cv", "--build_dir", "out/demo", "--workdir", "runs/a", "--fold",
                "final", *TINY)
  assert result.returncode == 0, result.stderr
  final = demo / "runs" / "a" / "final"
  card = json.loads((final / "model_card.json").read_text())
  manifest = json.loads((demo / "out" / "demo" / "manifest.json").read_text())
  run = json.loads((demo / "runs" / "a" / "run.json").read_text())
  assert card["run_id"] == run["run_id"]
  assert card["preprocessing"]["spectrogram"] == manifest["config"]["spectrogram"]
  assert card["classes"] == ["W", "N1", "N2", "N3", "REM"]
  assert card["evaluation"]["cross_validation"] == "none"
  assert (final / "MODEL_CARD.md").exists() and (final / "checkpoint.keras").exists()
  # Folds of the same run, then final again (retrained after its DONE is removed).
  result = _run(demo, "trainers.cv", "--build_dir", "out/demo", "--workdir", "runs/a", "--fold",
                "0", *TINY)
  assert result.returncode == 0, result.stderr
  os.remove(final / "DONE")
  os.remove(final / "state.json")
  result = _run(demo, "trainers.cv", "--build_dir", "out/demo", "--workdir", "runs/a", "--fold",
                "final", *TINY)
  assert result.returncode == 0, result.stderr
  card = json.loads((final / "model_card.json").read_text())
  assert card["evaluation"]["cross_validation"]["folds_done"] == [0]
  result = _run(demo, "trainers.export", "--model", str(final), "--output_dir", "exp", "--formats",
                "float32")
  assert result.returncode == 0, result.stderr
  exported = json.loads((demo / "exp" / "export.json").read_text())
  assert exported["model_card"]["run_id"] == run["run_id"]
  assert exported["preprocessing"]["source"].endswith("model_card.json")


def test_an_interrupted_final_leaves_no_card(demo, monkeypatch):
  config = config_lib.smoke(build_dir=str(demo / "out" / "demo"),
                            workdir=str(demo / "runs" / "killed"),
                            fold=train_lib.FINAL)
  final = demo / "runs" / "killed" / "final"
  final.mkdir(parents=True)
  (final / "model_card.json").write_text("{}")  # a card of an earlier training
  (final / "MODEL_CARD.md").write_text("old")

  def interrupted(*unused_args):
    raise KeyboardInterrupt

  monkeypatch.setattr(train_lib, "_train_dataset", lambda *unused_args: None)
  monkeypatch.setattr(train_lib, "_load_or_build", lambda *unused_args: None)
  monkeypatch.setattr(train_lib, "_train_epochs", interrupted)
  with pytest.raises(KeyboardInterrupt):
    train_lib.train_fold(config)
  assert not (final / "model_card.json").exists()
  assert not (final / "MODEL_CARD.md").exists()
  assert not (final / "DONE").exists()
  assert model_card.read_card(str(final)) is None
  assert json.loads((final / "split.json").read_text())["test"] == []


def test_cv_metrics_pool_only_finished_folds_of_the_run(tmp_path):
  assert model_card.cv_metrics(str(tmp_path), "abc") is None
  for k, run_id in ((0, "abc"), (1, "other")):
    fold = tmp_path / f"fold_{k:02d}"
    fold.mkdir()
    (fold / "run.json").write_text(json.dumps({"run_id": run_id}))
    (fold / "history.json").write_text("[]")
    (fold / "DONE").write_text("{}")
    fold_results.write_predictions(str(fold / "predictions.csv"), [{
        "label": s,
        "predicted": s if s else 1
    } for s in range(5)])
  cv = model_card.cv_metrics(str(tmp_path), "abc")
  assert cv["folds_done"] == [0] and cv["num_folds_done"] == 1
  assert cv["acc"] == pytest.approx(80.0)
  assert set(cv["per_class_f1"]) == {"W", "N1", "N2", "N3", "REM"}
