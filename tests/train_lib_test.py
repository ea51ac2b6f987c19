"""Tests for trainers.train_lib: one fold end to end, resume, and that it really learns."""

import csv
import dataclasses
import itertools
import json
import os

import keras
import pytest

from eegmobile import model as model_lib
from tests import fakes
from trainers import fold_results
from trainers import config as config_lib
from trainers import run_lib
from trainers import train_lib

SUBJECTS = ("SC00", "SC01", "SC02")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(directory, subjects=SUBJECTS, epochs_per_night=12, image_size=32)
  return directory


def test_one_fold_end_to_end_and_resume_after_an_interruption(build, tmp_path, monkeypatch):
  config = config_lib.smoke(build_dir=build, workdir=str(tmp_path), fold=1)
  real_save = train_lib._save_epoch

  def save_then_die(*args, **kwargs):
    real_save(*args, **kwargs)
    raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

  monkeypatch.setattr(train_lib, "_save_epoch", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    train_lib.train_fold(config)
  fold = tmp_path / "fold_01"
  assert json.loads((fold / "state.json").read_text()) == {"epochs_done": 1, "phase": 1}
  assert not (fold / fold_results.DONE).exists()
  first_epoch = json.loads((fold / "history.json").read_text())

  monkeypatch.setattr(train_lib, "_save_epoch", real_save)
  metrics = train_lib.train_fold(config)  # the same call again: continues, not restarts
  history = json.loads((fold / "history.json").read_text())
  assert [h["epoch"] for h in history] == [1, 2] and [h["phase"] for h in history] == [1, 2]
  assert history[0] == first_epoch[0]
  assert json.loads((fold / "split.json").read_text())["test"] == ["SC01"]
  with open(fold / "predictions.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 24 and {r["subject"] for r in rows} == {"SC01"}
  assert [int(r["epoch_index"]) for r in rows] == list(range(12)) * 2
  assert set(rows[0]) >= {"night", "onset_seconds", "record", "label", "predicted", "p_W", "p_REM"}
  assert metrics["num_epochs"] == 24 and metrics["test_subjects"] == ["SC01"]
  assert (fold / "checkpoint.keras").exists() and list((fold / "logs").rglob("*tfevents*"))
  assert json.loads((tmp_path / "folds.json").read_text())["num_folds"] == 3

  with open(fold / "history.csv") as f:
    assert [(r["epoch"], r["phase"]) for r in csv.DictReader(f)] == [("1", "1"), ("2", "2")]
  checkpoint = keras.models.load_model(fold / "checkpoint.keras")  # carries phase + optimizer
  assert model_lib.trainable_count(checkpoint) == 525_829  # phase 2 (counts: any image size)
  assert int(checkpoint.optimizer.iterations) == 1  # phase 2's fresh Adam, one step

  stamp = os.path.getmtime(fold / "checkpoint.keras")
  assert train_lib.train_fold(config) == metrics  # done: skipped, not retrained
  assert os.path.getmtime(fold / "checkpoint.keras") == stamp

  longer = dataclasses.replace(config, phase2_epochs=2)  # asked for more: extended
  train_lib.train_fold(longer)
  extended = json.loads((fold / "history.json").read_text())
  assert [h["epoch"] for h in extended] == [1, 2, 3] and extended[:2] == history
  assert json.loads((fold / fold_results.DONE).read_text()) == {"epochs": 3}

  run = json.loads((tmp_path / "run.json").read_text())
  assert json.loads((fold / "run.json").read_text()) == {"run_id": run["run_id"]}
  stamp = os.path.getmtime(fold / "checkpoint.keras")
  for other in (dict(seed=1), dict(batch_size=8), dict(phase1_epochs=2), dict(num_folds=2)):
    with pytest.raises(run_lib.RunMismatchError, match="--restart"):  # refused, not mixed in
      train_lib.train_fold(dataclasses.replace(longer, **other))
  assert os.path.getmtime(fold / "checkpoint.keras") == stamp
  assert json.loads((tmp_path / "run.json").read_text()) == run


def test_colour_map_on_device_trains_a_fold(build, tmp_path):
  config = config_lib.smoke(build_dir=build, workdir=str(tmp_path), fold=2, colormap_on="device")
  assert train_lib.train_fold(config)["num_epochs"] == 24


@pytest.mark.slow
def test_killing_the_cli_mid_epoch_and_rerunning_it_resumes(build, tmp_path):
  import subprocess
  import sys
  import time
  command = [
      sys.executable, "-m", "trainers.cv", "--build_dir", build, "--workdir",
      str(tmp_path), "--fold", "0", "--weights", "none", "--phase1_epochs", "2", "--phase2_epochs",
      "1", "--batch_size", "4", "--cache", "none"
  ]
  state = tmp_path / "fold_00" / "state.json"
  first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  deadline = time.monotonic() + 240
  while not state.exists() and time.monotonic() < deadline and first.poll() is None:
    time.sleep(0.2)
  first.kill()  # during epoch 2: epoch 1's checkpoint is on disk
  first.wait()
  assert json.loads(state.read_text())["epochs_done"] == 1
  second = subprocess.run(command, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "resuming" in second.stderr and "after epoch 1" in second.stderr
  history = json.loads((tmp_path / "fold_00" / "history.json").read_text())
  assert [h["epoch"] for h in history] == [1, 2, 3]
  assert "fold 0 (SC00): ACC" in second.stdout


def _learned_accuracy(tmp_path, shuffle_labels):
  build = str(tmp_path / "build")
  fakes.make_fake_build(build,
                        subjects=SUBJECTS,
                        epochs_per_night=60,
                        image_size=32,
                        shuffle_labels=shuffle_labels)
  config = config_lib.smoke(build_dir=build,
                            workdir=str(tmp_path / "run"),
                            fold=0,
                            phase1_epochs=5,
                            phase2_epochs=1,
                            steps_per_epoch=None,
                            validation_steps=None,
                            batch_size=16,
                            batch_norm_momentum=0.6)
  return train_lib.train_fold(config)["acc"]


@pytest.mark.slow
def test_a_short_run_beats_chance_on_separable_stages(tmp_path):
  assert _learned_accuracy(tmp_path, shuffle_labels=False) > 60.0  # chance: 20%


@pytest.mark.slow
def test_the_same_run_on_shuffled_labels_does_not(tmp_path):
  assert _learned_accuracy(tmp_path, shuffle_labels=True) < 40.0


def test_shuffle_settings_follow_the_cache_and_refuse_what_cannot_be():
  assert config_lib.paper().shuffle_mode == "full"  # the paper: a full shuffle each epoch
  assert config_lib.paper(cache=None).shuffle_mode == "stream"
  assert config_lib.paper(shuffle="stream").shuffle_mode == "stream"
  with pytest.raises(ValueError, match="needs cache 'memory'"):
    config_lib.paper(shuffle="full", cache=None)


def test_the_batch_norm_momentum_follows_the_weights_unless_given():
  assert config_lib.paper().effective_batch_norm_momentum == 0.999  # Keras' for ImageNet
  assert config_lib.paper(weights=None).effective_batch_norm_momentum == 0.9
  assert config_lib.paper(weights=None, batch_norm_momentum=0.99).effective_batch_norm_momentum \
      == 0.99
  with pytest.raises(ValueError, match="batch_norm_momentum must be in"):
    config_lib.paper(batch_norm_momentum=1.0)


def test_earlier_runs_keep_their_ids_and_a_new_default_is_a_new_run(build):
  """Keras' 0.999 is recorded as None, as runs recorded it before it became a setting."""
  from tfrecords import manifest as manifest_lib  # pylint: disable=import-outside-toplevel
  manifest = manifest_lib.load_manifest(build)
  imagenet = run_lib.run_record(config_lib.paper(build_dir=build), manifest)
  assert imagenet["training"]["batch_norm_momentum"] is None
  assert imagenet["training"]["image_size"] is None  # no longer a setting; kept in the id
  random = run_lib.run_record(config_lib.paper(build_dir=build, weights=None), manifest)
  assert random["training"]["batch_norm_momentum"] == 0.9
  same = run_lib.run_record(
      config_lib.paper(build_dir=build, weights=None, batch_norm_momentum=0.999), manifest)
  assert same["training"]["batch_norm_momentum"] is None and same["run_id"] != random["run_id"]


def test_a_collapsed_model_is_named_in_a_warning():
  assert train_lib.collapse_warning("fold 3", 0, {"val_predicted_classes": 2.0}, 0.9) is None
  warning = train_lib.collapse_warning("fold 3", 4, {
      "predicted_classes": 3.0,
      "val_predicted_classes": 1.0
  }, 0.999)
  assert warning.startswith("fold 3 epoch 5: every validation prediction is one class")
  assert "momentum 0.999" in warning and "--batch_norm_momentum" in warning
  assert "every training prediction" in train_lib.collapse_warning("final", 0,
                                                                   {"predicted_classes": 1.0}, 0.9)


def test_predicted_classes_counts_the_classes_an_epoch_predicted():
  metric = model_lib.PredictedClasses()
  metric.update_state(None, keras.ops.one_hot([0, 0, 3], 5))
  metric.update_state(None, keras.ops.one_hot([3], 5))
  assert float(metric.result()) == 2.0
  metric.reset_state()
  assert float(metric.result()) == 0.0
  assert model_lib.PredictedClasses.from_config(metric.get_config()).num_classes == 5


class _Terminal:

  def __init__(self, tty):
    self.text, self._tty = "", tty

  def isatty(self):
    return self._tty

  def write(self, text):
    self.text += text

  def flush(self):
    pass


def test_progress_is_one_rewritten_line_on_a_terminal_and_nothing_in_a_log(monkeypatch):
  clock = itertools.chain([0.0, 2.0, 2.5, 4.0], itertools.repeat(9.0))
  monkeypatch.setattr(train_lib.time, "monotonic", lambda: next(clock))
  terminal = _Terminal(tty=True)
  progress = train_lib.Progress("fold 3 epoch 2/20", steps=100, batch_size=16, stream=terminal)
  progress.on_epoch_begin(1)
  progress.on_train_batch_end(9)  # 2 s in: shown
  progress.on_train_batch_end(10)  # 0.5 s later: not yet
  progress.on_train_batch_end(19)  # 2 s later: shown
  progress.on_epoch_end(1)
  lines = terminal.text.split("\r")[1:]
  assert lines[0] == "fold 3 epoch 2/20: step 10/100, 80 images/s, 0:00:18 left\x1b[K"
  assert lines[1] == "fold 3 epoch 2/20: step 20/100, 80 images/s, 0:00:16 left\x1b[K"
  assert lines[2] == "\x1b[K" and len(lines) == 3  # the line is cleared for the epoch's line
  log = _Terminal(tty=False)
  quiet = train_lib.Progress("fold 3", steps=100, batch_size=16, stream=log)
  quiet.on_epoch_begin(0)
  quiet.on_train_batch_end(50)
  quiet.on_epoch_end(0)
  assert log.text == ""
