"""Tests for trainers.claims: one worker per fold, dead workers' folds taken over."""

import json
import os
import time

import pytest

from tests import servers
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


def _claim_of_a_process_here(fold_dir, pid):
  os.makedirs(fold_dir, exist_ok=True)
  with open(os.path.join(fold_dir, claims.CLAIM), "w") as f:
    json.dump({**claims._owner(), "pid": pid, "heartbeat": time.time()}, f)  # pylint: disable=protected-access


@pytest.mark.skipif(not os.path.exists("/proc/sys/kernel/random/boot_id"), reason="not Linux")
def test_a_fresh_claim_of_a_process_that_died_here_is_taken_over_at_once(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True,
                        text=True,
                        check=True)
  dead_pid = int(gone.stdout)
  alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    _claim_of_a_process_here(str(tmp_path / "dead"), dead_pid)
    _claim_of_a_process_here(str(tmp_path / "alive"), alive.pid)
    assert claims.try_claim(str(tmp_path / "dead"), timeout_s=600)
    assert claims.read_claim(str(tmp_path / "dead"))["pid"] == os.getpid()
    assert not claims.try_claim(str(tmp_path / "alive"), timeout_s=600)
  finally:
    alive.kill()
    alive.wait()
  # The same dead pid on another machine (another boot or PID namespace) is not judged here.
  other = str(tmp_path / "other")
  _claim_of_a_process_here(other, dead_pid)
  with open(os.path.join(other, claims.CLAIM)) as f:
    held = json.load(f)
  with open(os.path.join(other, claims.CLAIM), "w") as f:
    json.dump({**held, "node": "another-boot/1"}, f)
  assert not claims.try_claim(other, timeout_s=600)


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
  fold = str(tmp_path / "fold_00")
  assert claims.try_claim(fold, timeout_s=60)
  first = claims.read_claim(fold)["heartbeat"]
  with claims.Heartbeat(fold, interval_s=0.05):
    time.sleep(0.3)
  assert claims.read_claim(fold)["heartbeat"] > first
  assert sorted(os.listdir(fold)) == [claims.CLAIM]


# S3 claims, against a local moto server.


@pytest.fixture(name="s3")
def _s3(monkeypatch):
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  with servers.s3_server() as server:
    for name, value in server.env.items():
      monkeypatch.setenv(name, value)
    yield server


def _s3_claim_of_another_worker(s3, fold_url, age_s):
  import boto3  # pylint: disable=g-import-not-at-top
  bucket, _, key = fold_url[len("s3://"):].partition("/")
  boto3.client("s3").put_object(Bucket=bucket,
                                Key=key + "/" + claims.CLAIM,
                                Body=json.dumps({
                                    "host": "elsewhere",
                                    "pid": 1,
                                    "heartbeat": time.time() - age_s
                                }).encode())


def test_an_s3_fold_is_claimed_once_by_conditional_create(s3):
  fold = s3.url("runs", "fold_00")
  assert claims.try_claim(fold, timeout_s=60)
  held = claims.read_claim(fold)
  assert held["pid"] == os.getpid() and time.time() - held["heartbeat"] < 5
  assert not claims.try_claim(fold, timeout_s=60)  # the second create gets 412
  claims.release(fold)
  assert claims.read_claim(fold) is None and claims.try_claim(fold, timeout_s=60)


def test_an_s3_claim_live_is_respected_and_dead_taken_over_by_one_contender(s3):
  live, dead = s3.url("runs", "fold_00"), s3.url("runs", "fold_01")
  _s3_claim_of_another_worker(s3, live, age_s=5)
  _s3_claim_of_another_worker(s3, dead, age_s=120)
  assert not claims.try_claim(live, timeout_s=60)
  claims.release(live)  # not ours: left alone
  assert claims.read_claim(live)["host"] == "elsewhere"
  # Two contenders read the same stale version; only one takeover wins.
  held, stale = claims._read(dead)  # pylint: disable=protected-access
  assert claims.is_stale(held, timeout_s=60)
  wins = [
      claims._take_over(
          dead,
          {  # pylint: disable=protected-access
              "host": h,
              "pid": 2,
              "heartbeat": time.time()
          },
          stale) for h in ("a", "b")
  ]
  assert wins == [True, False] and claims.read_claim(dead)["host"] == "a"


def test_an_s3_stale_claim_is_taken_over_and_the_heartbeat_keeps_it_fresh(s3):
  fold = s3.url("runs", "fold_00")
  _s3_claim_of_another_worker(s3, fold, age_s=120)
  assert claims.try_claim(fold, timeout_s=60)
  first = claims.read_claim(fold)
  assert first["pid"] == os.getpid()
  with claims.Heartbeat(fold, interval_s=0.05):
    time.sleep(0.5)
  assert claims.read_claim(fold)["heartbeat"] > first["heartbeat"]
  assert list(servers.s3_objects(s3, "runs/fold_00")) == [claims.CLAIM]
