"""Tests for the trainers.cv entry point: flags, bad input, bugs, refused runs, hints."""

import json
import os
import subprocess
import sys

import pytest
from absl import flags

from tests import fakes
from trainers import cv
from trainers import fold_results
from trainers import run_lib
from trainers import train_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_SUBJECTS = ("SC00", "SC01", "SC02", "SC03")  # the demo build's four subjects


@pytest.fixture(scope="module")
def cwd_with_demo(tmp_path_factory):
  """A directory like the README's after its main command: a build at out/demo only."""
  directory = tmp_path_factory.mktemp("checkout")
  fakes.make_fake_build(str(directory / "out" / "demo"),
                        subjects=DEMO_SUBJECTS,
                        epochs_per_night=4,
                        image_size=32)
  return directory


def _cv(cwd, *args, check_tensorflow=False):
  """Runs trainers.cv in `cwd`; with check_tensorflow, prints whether TF was imported."""
  code = ("import runpy, sys\n"
          f"sys.argv = ['trainers.cv'] + {list(args)!r}\n"
          "try:\n"
          "  runpy.run_module('trainers.cv', run_name='__main__')\n"
          "finally:\n"
          "  print('TENSORFLOW IMPORTED' if 'tensorflow' in sys.modules else 'NO TENSORFLOW')\n")
  command = [sys.executable, "-c", code
            ] if check_tensorflow else [sys.executable, "-m", "trainers.cv", *args]
  env = {**os.environ, "PYTHONPATH": ROOT}
  return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_a_misspelt_flag_is_refused_before_anything_runs(tmp_path):
  result = _cv(tmp_path, "--fodl", "3", "--workdir", "runs/x", check_tensorflow=True)
  assert result.returncode != 0
  assert "Unknown command line flag 'fodl'" in result.stderr
  assert "Did you mean: fold" in result.stderr
  assert "NO TENSORFLOW" in result.stdout  # refused before TensorFlow was even imported
  assert not (tmp_path / "runs").exists()


def test_no_build_tells_what_to_run_next(cwd_with_demo):
  result = _cv(cwd_with_demo, "--fold", "3", check_tensorflow=True)
  assert result.returncode == 2, result.stderr
  message = result.stderr
  assert message.startswith("error: out/sleep-edf-20 holds no build")
  assert "out/demo: sleep-edf-20 (synthetic demo), 4 subjects, 32 epochs" in message
  assert "python -m trainers.cv --build_dir out/demo --workdir runs/demo --fold 3" in message
  assert "python -m beam_pipelines.build --runner DirectRunner --download --subset sleep-edf-20" \
      in message
  assert "--data_dir DIR" in message
  assert "NO TENSORFLOW" in result.stdout
  assert not (cwd_with_demo / "runs").exists()


def test_images_too_small_for_the_model_are_bad_input(tmp_path):
  fakes.make_fake_build(str(tmp_path / "tiny"), epochs_per_night=2, image_size=8)
  result = _cv(tmp_path, "--build_dir", "tiny", "--workdir", "runs/tiny", "--fold", "0")
  assert result.returncode == 2
  assert result.stderr.startswith("error: tiny: images of 8x8 pixels; the model needs at least")


def test_a_bad_fold_is_one_error_line_and_exit_2(cwd_with_demo):
  result = _cv(cwd_with_demo, "--build_dir", "out/demo", "--workdir", "runs/bad", "--fold", "4")
  assert result.returncode == 2
  assert result.stderr.strip() == "error: --fold 4: this run has folds 0 to 3"
  assert not (cwd_with_demo / "runs" / "bad" / "errors.log").exists()


@pytest.mark.parametrize("text, folds", [("all", [0, 1, 2, 3, 4, 5, 6, 7]), ("3", [3]),
                                         ("0,2,5-7", [0, 2, 5, 6, 7]), ("6-7, 1,1", [1, 6, 7]),
                                         ("final", [-1]),
                                         ("all,final", [0, 1, 2, 3, 4, 5, 6, 7, -1]),
                                         ("final,2", [2, -1])])
def test_fold_lists_and_ranges(text, folds):
  assert cv.parse_folds(text, 8) == folds


@pytest.mark.parametrize("text, message", [("8", "--fold 8: this run has folds 0 to 7"),
                                           ("2-9", "--fold 2-9: this run"),
                                           ("3-1", "--fold 3-1: this run"),
                                           ("one", "a list such as 0,2,5-7"), ("1,,2", "got")])
def test_bad_fold_lists_are_refused(text, message):
  with pytest.raises(ValueError, match=message):
    cv.parse_folds(text, 8)


@pytest.fixture
def run_cv(tmp_path, monkeypatch):
  """Calls trainers.cv's main in this process (so train_fold can be replaced)."""
  build = str(tmp_path / "build")
  fakes.make_fake_build(build, subjects=DEMO_SUBJECTS, epochs_per_night=4, image_size=32)
  workdir = tmp_path / "run"
  monkeypatch.setattr(sys, "argv", ["trainers.cv", "--fold", "1"])

  def run(*args):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(
        ["trainers.cv", "--build_dir", build, "--workdir",
         str(workdir), "--verbose", *args])
    try:
      return cv.main([])
    finally:
      flags.FLAGS.unparse_flags()

  return run, workdir


def test_an_unexpected_error_is_a_bug_with_its_traceback_logged(run_cv, monkeypatch, capsys):
  run, workdir = run_cv

  def broken_train_fold(config, **kwargs):
    del config, kwargs
    return {}["no such key"]  # a bug inside training

  monkeypatch.setattr(train_lib, "train_fold", broken_train_fold)
  assert run("--fold", "1") == 1
  err = capsys.readouterr().err
  log = workdir / "errors.log"
  assert "unexpected KeyError" in err and "This is a bug" in err and str(log) in err
  text = log.read_text()
  assert text.startswith("=== ") and "trainers.cv --fold 1" in text.splitlines()[0]
  assert "Traceback (most recent call last)" in text and "broken_train_fold" in text


def test_another_run_in_the_workdir_is_refused_then_restarted(run_cv, monkeypatch, capsys):
  run, workdir = run_cv
  trained = []

  def fake_train_fold(config, **kwargs):
    del kwargs
    trained.append(config.seed)
    return {"fold": config.fold, "test_subjects": ["SC01"], "acc": 1.0, "mf1": 1.0, "kappa": 1.0}

  monkeypatch.setattr(train_lib, "train_fold", fake_train_fold)
  assert run("--fold", "1") == 0
  first = run_lib.load_run(str(workdir))
  assert (workdir / "fold_01").is_dir()  # made by its claim
  capsys.readouterr()
  assert run("--fold", "1", "--seed", "7") == 2
  err = capsys.readouterr().err
  assert f"holds run {first['run_id']}" in err and "training.seed: 0 there, 7 now" in err
  assert "--restart" in err and trained == [0]
  assert run("--fold", "1", "--seed", "7", "--restart") == 0
  assert trained == [0, 7]
  assert (workdir / "previous" / first["run_id"] / "fold_01").is_dir()
  assert json.loads((workdir / "run.json").read_text())["training"]["seed"] == 7
  assert "restart: moved" in capsys.readouterr().out


def test_a_fold_claimed_by_a_live_worker_is_left_to_it(run_cv, monkeypatch, capsys):
  run, workdir = run_cv
  trained = []

  def fake_train_fold(config, **kwargs):
    del kwargs
    trained.append(config.fold)
    return {"fold": config.fold, "test_subjects": ["SC00"], "acc": 1.0, "mf1": 1.0, "kappa": 1.0}

  monkeypatch.setattr(train_lib, "train_fold", fake_train_fold)
  assert run("--fold", "0") == 0  # records the run
  os.makedirs(workdir / "fold_01")
  (workdir / "fold_01" / "CLAIM").write_text(
      json.dumps({
          "host": "elsewhere",
          "pid": 1,
          "heartbeat": 4e9  # fresh for a long time: another worker is on it
      }))
  sleeps = []

  def release_after_one_wait(seconds):
    sleeps.append(seconds)
    os.remove(workdir / "fold_01" / "CLAIM")  # the other worker finished and let go

  monkeypatch.setattr("time.sleep", release_after_one_wait)
  assert run("--fold", "0-2", "--claim_timeout", "8") == 0
  assert trained == [0, 0, 2, 1] and sleeps == [2.0]
  assert "waiting: fold(s) 1 claimed by other workers" in capsys.readouterr().out
  assert not (workdir / "fold_00" / "CLAIM").exists()


@pytest.mark.slow
def test_the_suggested_command_trains_quietly(cwd_with_demo):
  result = _cv(cwd_with_demo, "--build_dir", "out/demo", "--workdir", "runs/demo", "--fold", "3",
               "--weights", "none", "--phase1_epochs", "1", "--phase2_epochs", "0",
               "--steps_per_epoch", "1", "--batch_size", "2", "--cache", "none")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "fold 3 (SC03): ACC" in result.stdout and "run " in result.stdout
  for noise in ("XLA", "oneDNN", "cuda", "absl::InitializeLog", "WARNING"):
    assert noise not in result.stderr, result.stderr
  assert (cwd_with_demo / "runs" / "demo" / "tensorflow.log").exists()


@pytest.mark.slow
def test_two_workers_share_the_folds_and_a_killed_workers_fold_is_resumed(tmp_path):
  import time  # pylint: disable=g-import-not-at-top
  build, workdir = str(tmp_path / "build"), tmp_path / "run"
  fakes.make_fake_build(build, subjects=("SC00", "SC01", "SC02"), epochs_per_night=6, image_size=32)
  command = [
      sys.executable, "-m", "trainers.cv", "--build_dir", build, "--workdir",
      str(workdir), "--fold", "all", "--weights", "none", "--phase1_epochs", "2", "--phase2_epochs",
      "0", "--steps_per_epoch", "1", "--batch_size", "4", "--cache", "none", "--claim_timeout", "6"
  ]
  env = {**os.environ, "PYTHONPATH": ROOT}
  first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  killed_fold, deadline = None, time.monotonic() + 600
  while killed_fold is None and time.monotonic() < deadline and first.poll() is None:
    for fold in range(3):
      claim = workdir / f"fold_{fold:02d}" / "CLAIM"
      state = workdir / f"fold_{fold:02d}" / "state.json"
      try:
        mine = json.loads(claim.read_text())["pid"] == first.pid
      except (OSError, ValueError):
        continue
      if mine and state.exists():  # first worker is past epoch 1 of this fold
        killed_fold = fold
    time.sleep(0.2)
  first.kill()
  first.wait()
  assert killed_fold is not None
  assert not (workdir / f"fold_{killed_fold:02d}" / fold_results.DONE).exists()
  output = second.communicate(timeout=900)[0].decode()
  assert second.returncode == 0, output[-3000:]
  assert f"resuming {workdir / f'fold_{killed_fold:02d}'} after epoch 1" in output
  for fold in range(3):  # each fold trained once: two epochs in its history, no repeats
    history = json.loads((workdir / f"fold_{fold:02d}" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2], (fold, history)
    assert (workdir / f"fold_{fold:02d}" / fold_results.DONE).exists()
  report = subprocess.run(
      [sys.executable, "-m", "trainers.report", "--workdir",
       str(workdir), "--require_complete"],
      env=env,
      capture_output=True,
      text=True)
  assert report.returncode == 0 and "pooled 3 of 3 folds" in report.stdout, report.stderr


@pytest.mark.slow
def test_a_fold_trains_from_a_build_in_s3_and_the_process_exits_cleanly(tmp_path):
  pytest.importorskip("boto3", reason="needs the aws extra")
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  from eegmobile import storage  # pylint: disable=g-import-not-at-top
  from tests import servers  # pylint: disable=g-import-not-at-top
  local = tmp_path / "build"
  fakes.make_fake_build(str(local), subjects=DEMO_SUBJECTS, epochs_per_night=4, image_size=32)
  with servers.s3_server() as s3, servers.aws_env_restored():
    storage.configure_s3(**s3.settings)
    storage.upload_tree(str(local), s3.url("build"))
    run = subprocess.run([
        sys.executable, "-m", "trainers.cv", "--build_dir",
        s3.url("build"), "--workdir",
        str(tmp_path / "runs"), "--fold", "1", "--weights", "none", "--phase1_epochs", "1",
        "--phase2_epochs", "0", "--steps_per_epoch", "1", "--batch_size", "2", "--cache", "none"
    ],
                         cwd=tmp_path,
                         env={
                             **os.environ, "PYTHONPATH": ROOT,
                             **s3.env
                         },
                         capture_output=True,
                         text=True,
                         timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]  # not tensorflow-io's abort at exit (134)
  assert "fold 1 (SC01): ACC" in run.stdout
  assert (tmp_path / "runs" / "fold_01" / "DONE").exists()


def _s3_env(s3) -> dict:
  return {**os.environ, "PYTHONPATH": ROOT, **s3.env}


def _tiny(build, workdir, *extra):
  return [
      sys.executable, "-m", "trainers.cv", "--build_dir", build, "--workdir", workdir, "--weights",
      "none", "--phase2_epochs", "0", "--steps_per_epoch", "1", "--batch_size", "4", "--cache",
      "none", *extra
  ]


def test_an_s3_workdir_of_another_run_is_refused_and_a_gs_one_too(tmp_path):
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  from tests import servers  # pylint: disable=g-import-not-at-top
  build = str(tmp_path / "build")
  fakes.make_fake_build(build, subjects=DEMO_SUBJECTS, epochs_per_night=4, image_size=32)
  home = tmp_path / "home"
  with servers.s3_server() as s3:
    url = s3.url("runs", "paper")
    first = subprocess.run(_tiny(build, url, "--fold", "99", "--phase1_epochs", "1"),
                           env={
                               **_s3_env(s3), "HOME": str(home)
                           },
                           capture_output=True,
                           text=True,
                           timeout=300)
    assert first.returncode == 2 and "--fold 99" in first.stderr, first.stderr[-2000:]
    recorded = servers.s3_objects(s3, "runs/paper")
    assert sorted(recorded) == [run_lib.FOLDS_FILE, run_lib.RUN_FILE]
    other = subprocess.run(_tiny(build, url, "--fold", "0", "--phase1_epochs", "1",
                                 "--learning_rate", "0.5"),
                           env=_s3_env(s3),
                           capture_output=True,
                           text=True,
                           timeout=300)
    assert other.returncode == 2, other.stderr[-2000:]
    assert url in other.stderr and "learning_rate" in other.stderr, other.stderr[-2000:]
    assert servers.s3_objects(s3, "runs/paper") == recorded  # nothing rewritten
    no_build = subprocess.run(_tiny(str(tmp_path / "nowhere"), url, "--fold", "0"),
                              env={
                                  **_s3_env(s3), "HOME": str(home)
                              },
                              capture_output=True,
                              text=True,
                              timeout=300)
    assert no_build.returncode == 2, no_build.stderr[-2000:]
  assert not os.listdir(home / ".cache" / "eegmobile" / "workdirs")  # the scratch went with it
  gs = subprocess.run(_tiny(build, "gs://b/runs", "--fold", "0"),
                      env={
                          **os.environ, "PYTHONPATH": ROOT
                      },
                      capture_output=True,
                      text=True,
                      timeout=300)
  assert gs.returncode == 2 and "gs://b/runs: only local paths and s3://" in gs.stderr


@pytest.mark.slow
def test_two_workers_share_an_s3_workdir_and_a_killed_workers_fold_is_resumed(tmp_path):
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  import time  # pylint: disable=g-import-not-at-top
  from tests import servers  # pylint: disable=g-import-not-at-top
  build = str(tmp_path / "build")
  fakes.make_fake_build(build, subjects=("SC00", "SC01", "SC02"), epochs_per_night=6, image_size=32)
  home = tmp_path / "home"  # the workers' scratch mirrors go under ~/.cache/eegmobile/workdirs
  with servers.s3_server() as s3:
    url, env = s3.url("runs", "paper"), {**_s3_env(s3), "HOME": str(home)}
    command = _tiny(build, url, "--fold", "all", "--phase1_epochs", "2", "--claim_timeout", "6")
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_fold, deadline = None, time.monotonic() + 600
    while killed_fold is None and time.monotonic() < deadline and first.poll() is None:
      objects = servers.s3_objects(s3, "runs/paper")
      for fold in range(3):
        claim = objects.get(f"fold_{fold:02d}/CLAIM")
        if (claim and json.loads(claim)["pid"] == first.pid and
            f"fold_{fold:02d}/state.json" in objects):  # first worker uploaded epoch 1
          killed_fold = fold
      time.sleep(0.2)
    first.kill()
    first.wait()
    assert killed_fold is not None
    output = second.communicate(timeout=900)[0].decode()
    assert second.returncode == 0, output[-3000:]
    assert f"fold_{killed_fold:02d} after epoch 1" in output, output[-3000:]
    objects = servers.s3_objects(s3, "runs/paper")
    for fold in range(3):  # each fold trained once: two epochs in its history, no repeats
      history = json.loads(objects[f"fold_{fold:02d}/history.json"])
      assert [h["epoch"] for h in history] == [1, 2], (fold, history)
      assert f"fold_{fold:02d}/{fold_results.DONE}" in objects
      assert f"fold_{fold:02d}/CLAIM" not in objects  # released
    report = subprocess.run(
        [sys.executable, "-m", "trainers.report", "--workdir", url, "--require_complete"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    assert report.returncode == 0 and "pooled 3 of 3 folds" in report.stdout, report.stderr
    assert "report/table.md" in servers.s3_objects(s3, "runs/paper")
    # The model to ship, trained into the same store, carries the folds' pooled metrics.
    final = subprocess.run(_tiny(build, url, "--fold", "final", "--phase1_epochs", "2"),
                           env=env,
                           capture_output=True,
                           text=True,
                           timeout=600)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    assert "cross-validation metrics: 3 fold(s) pooled" in final.stdout, final.stdout
    card = json.loads(servers.s3_objects(s3, "runs/paper")["final/model_card.json"])
    assert card["evaluation"]["cross_validation"]["folds_done"] == [0, 1, 2]
  # Only the killed worker's scratch is left: the others, the report's and final's are gone.
  mirrors = list((home / ".cache" / "eegmobile" / "workdirs").iterdir())
  assert len(mirrors) == 1
  assert [p.name.split("-")[0] for p in mirrors[0].iterdir()] == [str(first.pid)]
