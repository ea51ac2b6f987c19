"""Tests for trainers.run_lib: a workdir holds one run; a different one is refused."""

import dataclasses
import json
import os

import pytest

from tests import fakes
from trainers import config as config_lib
from trainers import run_lib

SUBJECTS = ("SC00", "SC01", "SC02")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
  return fakes.make_fake_build(str(tmp_path_factory.mktemp("build")),
                               subjects=SUBJECTS,
                               epochs_per_night=2,
                               image_size=8)


def test_the_same_run_is_accepted_and_recorded_once(manifest, tmp_path):
  config = config_lib.smoke(workdir=str(tmp_path))
  record = run_lib.start_run(config, manifest)
  text = (tmp_path / "run.json").read_text()
  assert json.loads(text) == record and len(record["run_id"]) == 12
  assert record["folds"] == {"num_folds": 3, "fold_of_subject": {"SC00": 0, "SC01": 1, "SC02": 2}}
  assert record["training"]["seed"] == 0 and record["build"]["demo"] is True
  assert record["build"]["manifest_sha256"] == run_lib.build_identity(manifest)["manifest_sha256"]
  # Another build path, cache, fold or more phase-2 epochs: the same run.
  same = dataclasses.replace(config, build_dir="/elsewhere", cache=None, fold=2, phase2_epochs=9)
  assert run_lib.start_run(same, manifest) == record
  assert (tmp_path / "run.json").read_text() == text
  assert json.loads((tmp_path / "folds.json").read_text())["num_folds"] == 3


def test_another_run_is_refused_naming_each_difference(manifest, tmp_path):
  config = config_lib.smoke(workdir=str(tmp_path))
  record = run_lib.start_run(config, manifest)
  os.makedirs(tmp_path / "fold_00")
  other = dataclasses.replace(config, seed=1, batch_size=8, num_folds=2)
  with pytest.raises(run_lib.RunMismatchError) as refused:
    run_lib.start_run(other, manifest)
  message = str(refused.value)
  assert f"holds run {record['run_id']}" in message
  assert "training.seed: 0 there, 1 now" in message
  assert "training.batch_size: 4 there, 8 now" in message
  assert "folds.num_folds: 3 there, 2 now" in message
  assert "--restart" in message and "another --workdir" in message
  assert set(refused.value.differences) == {
      "training.seed", "training.batch_size", "folds.num_folds", "folds.fold_of_subject"
  }
  assert run_lib.load_run(str(tmp_path)) == record  # nothing was touched


def test_another_build_is_a_different_run(manifest, tmp_path):
  config = config_lib.smoke(workdir=str(tmp_path))
  run_lib.start_run(config, manifest)
  rebuilt = {**manifest, "library_version": "something else"}
  with pytest.raises(run_lib.RunMismatchError, match="build.manifest_sha256: "):
    run_lib.start_run(config, rebuilt)


def test_restart_moves_the_old_run_aside(manifest, tmp_path, capsys):
  config = config_lib.smoke(workdir=str(tmp_path))
  old = run_lib.start_run(config, manifest)
  os.makedirs(tmp_path / "fold_01")
  (tmp_path / "fold_01" / "DONE").write_text("{}")
  os.makedirs(tmp_path / "final")  # trainers.cv --fold final: part of the same run
  new = run_lib.start_run(dataclasses.replace(config, seed=5), manifest, restart=True)
  assert new["run_id"] != old["run_id"] and run_lib.load_run(str(tmp_path)) == new
  moved = tmp_path / "previous" / old["run_id"]
  assert (moved / "fold_01" / "DONE").exists() and not (tmp_path / "fold_01").exists()
  assert (moved / "final").is_dir() and not (tmp_path / "final").exists()
  assert json.loads((moved / "run.json").read_text()) == old
  assert str(moved) in capsys.readouterr().out


def test_folds_without_a_run_record_are_refused(manifest, tmp_path):
  os.makedirs(tmp_path / "fold_00")  # left by a trainers.cv that wrote no run.json
  config = config_lib.smoke(workdir=str(tmp_path))
  with pytest.raises(run_lib.RunMismatchError, match="(?s)no run.json.*--restart"):
    run_lib.start_run(config, manifest)
  run_lib.start_run(config, manifest, restart=True)
  assert (tmp_path / "previous" / "unknown" / "fold_00").is_dir()


def test_run_ids_without_a_context_stage_are_those_of_earlier_versions(manifest):
  """Pinned: computed with the trainer before context stages existed (issue 17)."""
  assert run_lib.run_record(config_lib.smoke(), manifest)["run_id"] == "7cf9590375bf"
  assert run_lib.run_record(config_lib.paper(), manifest)["run_id"] == "dd00a0091703"


def test_a_context_stage_is_named_in_the_identity_and_makes_another_run(manifest, tmp_path):
  plain = run_lib.run_record(config_lib.smoke(), manifest)
  assert "context" not in plain
  smoother = run_lib.run_record(config_lib.smoke(context="smoother"), manifest)
  assert smoother["context"] == {
      "context": "smoother",
      "context_lag": 0,
      "context_window": 21,
      "context_head_steps": 1500
  }
  head = run_lib.run_record(config_lib.smoke(context="head", context_lag=2), manifest)
  assert len({plain["run_id"], smoother["run_id"], head["run_id"]}) == 3
  assert "context head (lag 2)" in run_lib.describe(head)
  run_lib.start_run(config_lib.smoke(workdir=str(tmp_path)), manifest)
  with pytest.raises(run_lib.RunMismatchError) as error:
    run_lib.start_run(config_lib.smoke(workdir=str(tmp_path), context="smoother"), manifest)
  assert error.value.differences["context.context"] == (None, "smoother")
