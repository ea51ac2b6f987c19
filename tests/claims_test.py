"""Tests for trainers.claims: one worker per fold, dead workers' folds taken over."""

import json
import os
import time

from trainers import claims


def _claim_of_another_worker(fold_dir, age_s):
  os.makedirs(fold_dir, exist_ok=True)
  with open(os.path.join(fold_dir, claims.CLAIM), "w") as f:
    json.dump({"host": "elsewhere", "pid": 1, "heartbeat": time.time() - age_s}, f)


def test_a_fold_is_claimed_once(tmp_path):
  fold = str(tmp_path / "fold_00")
  assert claims.try_claim(fold, timeout_s=60)
  held = claims.read_claim(fold)
  assert held["pid"] == os.getpid() and time.time() - held["heartbeat"] < 5
  assert not claims.try_claim(fold, timeout_s=60)  # held (by anyone, this process too)
  claims.release(fold)
  assert claims.read_claim(fold) is None and claims.try_claim(fold, timeout_s=60)


def test_a_live_claim_is_respected_and_a_dead_one_taken_over(tmp_path):
  live, dead = str(tmp_path / "fold_00"), str(tmp_path / "fold_01")
  _claim_of_another_worker(live, age_s=5)
  _claim_of_another_worker(dead, age_s=120)
  assert not claims.try_claim(live, timeout_s=60)
  assert claims.read_claim(live)["host"] == "elsewhere"
  claims.release(live)  # not ours: left alone
  assert claims.read_claim(live)["host"] == "elsewhere"
  assert claims.try_claim(dead, timeout_s=60)
  assert claims.read_claim(dead)["pid"] == os.getpid()
  assert sorted(os.listdir(dead)) == [claims.CLAIM]  # the stale claim is gone


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
  fold = str(tmp_path / "fold_00")
  assert claims.try_claim(fold, timeout_s=60)
  first = claims.read_claim(fold)["heartbeat"]
  with claims.Heartbeat(fold, interval_s=0.05):
    time.sleep(0.3)
  assert claims.read_claim(fold)["heartbeat"] > first
  assert sorted(os.listdir(fold)) == [claims.CLAIM]
