"""Tests for trainers.claims: fold lists, atomic claims, stale takeover, two real workers."""

import json
import multiprocessing
import os
import signal
import time

import pytest

from trainers import claims


@pytest.mark.parametrize("spec,expected", [("all", [0, 1, 2, 3, 4]), ("3", [3]),
                                           ("0,2,3-4", [0, 2, 3, 4]), ("4,1-2,2", [1, 2, 4])])
def test_fold_lists_and_ranges(spec, expected):
  assert claims.parse_folds(spec, 5) == expected


@pytest.mark.parametrize("spec,message", [("5", "fold 5 does not exist"), ("3-1", "backwards"),
                                          ("x", "not a fold number"), ("1,,2", "not a fold"),
                                          ("-2", "not a fold")])
def test_bad_fold_specs_are_refused_naming_the_part(spec, message):
  with pytest.raises(ValueError, match=message):
    claims.parse_folds(spec, 5)


def test_one_claim_per_fold_and_stale_claims_are_taken_over(tmp_path):
  fold = str(tmp_path / "fold_00")
  first = claims.try_claim(fold, stale_after_s=60, owner="a:1")
  assert first and json.load(open(first.path))["owner"] == "a:1"
  assert claims.try_claim(fold, stale_after_s=60, owner="b:2") is None  # held and alive
  old = time.time() - 120
  os.utime(first.path, (old, old))  # a's heartbeat stopped two minutes ago
  second = claims.try_claim(fold, stale_after_s=60, owner="b:2")
  assert second and json.load(open(second.path))["owner"] == "b:2"
  assert os.listdir(fold) == [claims.CLAIM]  # the stale claim was moved away, not kept
  claims.release(first)  # a coming back late must not remove b's claim
  assert os.path.exists(second.path)
  claims.release(second)
  assert not os.path.exists(second.path)


def test_a_heartbeat_keeps_a_claim_alive(tmp_path):
  claim = claims.try_claim(str(tmp_path / "f"), stale_after_s=60)
  old = time.time() - 30
  os.utime(claim.path, (old, old))
  with claims.Heartbeat(claim, every_s=0.05):
    time.sleep(0.3)
  assert time.time() - os.path.getmtime(claim.path) < 5


def _worker(workdir: str, folds: list, seconds_per_fold: float, log: str):
  """A worker process: 'trains' a fold by sleeping, then marks it done."""

  def fold_dir(k):
    return os.path.join(workdir, f"fold_{k:02d}")

  def is_done(k):
    return os.path.exists(os.path.join(fold_dir(k), "DONE"))

  def train(k):
    with open(log, "a") as f:
      f.write(f"{os.getpid()} start {k}\n")
    time.sleep(seconds_per_fold)
    open(os.path.join(fold_dir(k), "DONE"), "w").close()
    with open(log, "a") as f:
      f.write(f"{os.getpid()} done {k}\n")
    return {"fold": k}

  for _ in claims.train_claimed(folds,
                                fold_dir,
                                is_done,
                                train,
                                stale_after_s=1.5,
                                heartbeat_s=0.2,
                                poll_s=0.2):
    pass


def test_two_workers_train_every_fold_once_and_resume_a_killed_workers_fold(tmp_path):
  log = str(tmp_path / "log.txt")
  context = multiprocessing.get_context("fork")
  victim = context.Process(target=_worker, args=(str(tmp_path), [0, 1, 2, 3], 30.0, log))
  victim.start()
  deadline = time.time() + 10
  while not (os.path.exists(log) and "start" in open(log).read()) and time.time() < deadline:
    time.sleep(0.05)
  os.kill(victim.pid, signal.SIGKILL)  # dies mid-fold, its claim left behind
  victim.join()
  survivor = context.Process(target=_worker, args=(str(tmp_path), [0, 1, 2, 3], 0.2, log))
  second = context.Process(target=_worker, args=(str(tmp_path), [0, 1, 2, 3], 0.2, log))
  survivor.start()
  second.start()
  survivor.join(60)
  second.join(60)
  assert survivor.exitcode == 0 and second.exitcode == 0
  lines = open(log).read().split("\n")
  done = [int(l.split()[2]) for l in lines if " done " in l]
  assert sorted(done) == [0, 1, 2, 3]  # every fold finished, exactly once
  killed_fold = int(next(l for l in lines if str(victim.pid) in l).split()[2])
  assert killed_fold in done  # the killed worker's fold was resumed by another
  assert not [
      f for f in os.listdir(tmp_path)
      if f.startswith("fold_") and os.path.exists(os.path.join(tmp_path, f, claims.CLAIM))
  ]  # no claim left behind
