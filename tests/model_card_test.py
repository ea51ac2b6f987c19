"""trainers.cv --fold final on a tiny demo build: card, CV metrics, export (subprocesses)."""

import json
import os
import subprocess
import sys

import pytest

from tests import fakes

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
