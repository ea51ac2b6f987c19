"""Fold claims, so several workers sharing a workdir train each fold once.

A worker claims a fold by creating `<fold dir>/CLAIM` exclusively (O_CREAT | O_EXCL): it
holds the owner (host, pid) and a heartbeat time the owner refreshes while it trains (a
thread). A claim whose heartbeat is older than the timeout belongs to a dead worker: it is
taken over by renaming it away (atomic: only one worker's rename succeeds) and claiming
again; training then resumes from the fold's checkpoint. All file access of claims is in
this module, so it can move to tf.io.gfile for object stores.
"""

import json
import os
import socket
import threading
import time
from typing import Optional

CLAIM = "CLAIM"


def _owner() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid()}


def _write_new(path: str, value: dict) -> bool:
  """Creates `path` holding `value` only if it does not exist."""
  try:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(handle, "w") as f:
    json.dump(value, f)
  return True


def read_claim(fold_dir: str) -> Optional[dict]:
  """The fold's claim ({"host", "pid", "heartbeat"}), or None when unclaimed."""
  try:
    with open(os.path.join(fold_dir, CLAIM)) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except ValueError:  # being written right now: treat as fresh
    return {"host": "?", "pid": -1, "heartbeat": time.time()}


def try_claim(fold_dir: str, timeout_s: float) -> bool:
  """Claims the fold for this process; takes over a claim older than timeout_s.

  Returns:
    True when this process now holds the claim.
  """
  os.makedirs(fold_dir, exist_ok=True)
  path = os.path.join(fold_dir, CLAIM)
  mine = {**_owner(), "heartbeat": time.time()}
  if _write_new(path, mine):
    return True
  held = read_claim(fold_dir)
  if held is None or time.time() - held["heartbeat"] <= timeout_s:
    return held is None and _write_new(path, mine)
  stale = f"{path}.stale-{mine['host']}-{mine['pid']}"
  try:
    os.rename(path, stale)  # only one worker's rename of this claim succeeds
  except FileNotFoundError:
    return False  # another worker took it over first
  os.remove(stale)
  return _write_new(path, mine)


def release(fold_dir: str) -> None:
  """Removes this process's claim (another's is left alone)."""
  held = read_claim(fold_dir)
  if held and (held["host"], held["pid"]) == tuple(_owner().values()):
    os.remove(os.path.join(fold_dir, CLAIM))


class Heartbeat:
  """Refreshes this process's claim every `interval_s` seconds while in a `with` block."""

  def __init__(self, fold_dir: str, interval_s: float):
    self._path = os.path.join(fold_dir, CLAIM)
    self._interval_s = interval_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    while not self._stop.wait(self._interval_s):
      part = f"{self._path}.{os.getpid()}.part"
      with open(part, "w") as f:
        json.dump({**_owner(), "heartbeat": time.time()}, f)
      os.replace(part, self._path)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
