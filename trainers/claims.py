"""Fold claims, so several workers sharing a workdir train each fold once.

A worker claims a fold by creating `<fold dir>/CLAIM` exclusively
(`storage.create_exclusive`: O_EXCL-like locally, a conditional put on S3): it holds the
owner (host, pid, the machine's boot and PID namespace) and a heartbeat time the owner
refreshes while it trains (a thread). A claim whose heartbeat is older than the timeout
belongs to a dead worker, and so does one whose owner ran on this machine and is no longer
a process (a worker killed here and restarted need not wait out the timeout): it is taken
over and training resumes from the fold's checkpoint.

Taking over is atomic so that only one contender wins: locally the stale claim is renamed
away (only one rename succeeds), then claimed again; on S3 the claim is rewritten with
If-Match <the stale ETag>, and a heartbeat with If-Match <the ETag this process last
wrote> (a worker whose heartbeat put fails has been taken over, and stops refreshing).
"""

import json
import os
import socket
import threading
import time
from typing import Optional

from eegmobile import storage

CLAIM = "CLAIM"

_ETAGS: dict[str, str] = {}  # s3 claim URL -> ETag of this process's last write
_ETAGS_LOCK = threading.Lock()


def _node() -> str:
  """This machine's boot and PID namespace: a pid names one process only within both."""
  try:
    with open("/proc/sys/kernel/random/boot_id") as f:
      boot = f.read().strip()
    return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
  except OSError:
    return ""  # not Linux: a dead local owner is only noticed by its heartbeat


def _owner() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid(), "node": _node()}


def _is_mine(held: Optional[dict]) -> bool:
  return bool(held) and all(held.get(k) == v for k, v in _owner().items())


def _owner_is_dead(held: dict) -> bool:
  """True when the claim's owner ran on this machine (same boot, same PID namespace) and its
  process is gone: a worker killed here is taken over at once, not after the timeout."""
  node = _node()
  if not node or held.get("node") != node or held.get("host") != socket.gethostname():
    return False
  pid = held.get("pid")
  if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    return False  # alive, another user's
  return False


def is_stale(held: dict, timeout_s: float) -> bool:
  """A claim whose heartbeat is older than timeout_s, or whose owner died on this machine."""
  return time.time() - held["heartbeat"] > timeout_s or _owner_is_dead(held)


def _path(fold_dir: str) -> str:
  return storage.join(fold_dir, CLAIM)


def _encode(claim: dict) -> bytes:
  return json.dumps(claim).encode()


def _read(fold_dir: str) -> tuple[Optional[dict], Optional[str]]:
  """(claim, version) of the fold, or (None, None) when unclaimed."""
  data, version = storage.read_versioned(_path(fold_dir))
  if data is None:
    return None, None
  try:
    return json.loads(data), version
  except ValueError:  # being written right now: treat as fresh
    return {"host": "?", "pid": -1, "heartbeat": time.time()}, version


def read_claim(fold_dir: str) -> Optional[dict]:
  """The fold's claim ({"host", "pid", "node", "heartbeat"}), or None when unclaimed."""
  return _read(fold_dir)[0]


def _create(fold_dir: str, mine: dict) -> bool:
  path = _path(fold_dir)
  if storage.is_url(path):
    etag = storage.put_versioned(path, _encode(mine), if_absent=True)
    if etag is not None:
      with _ETAGS_LOCK:
        _ETAGS[path] = etag
    return etag is not None
  return storage.create_exclusive(path, _encode(mine))


def _take_over(fold_dir: str, mine: dict, version: Optional[str]) -> bool:
  """Replaces a stale claim with `mine`; of several contenders one succeeds."""
  path = _path(fold_dir)
  if storage.is_url(path):
    etag = storage.put_versioned(path, _encode(mine), if_version=version)
    if etag is not None:
      with _ETAGS_LOCK:
        _ETAGS[path] = etag
    return etag is not None
  stale = f"{path}.stale-{mine['host']}-{mine['pid']}"
  try:
    storage.rename(path, stale)  # only one worker's rename of this claim succeeds
  except FileNotFoundError:
    return False  # another worker took it over first
  storage.delete([stale])
  return _create(fold_dir, mine)


def try_claim(fold_dir: str, timeout_s: float) -> bool:
  """Claims the fold for this process; takes over a claim older than timeout_s.

  Returns:
    True when this process now holds the claim.
  """
  storage.make_dirs(fold_dir)
  mine = {**_owner(), "heartbeat": time.time()}
  if _create(fold_dir, mine):
    return True
  held, version = _read(fold_dir)
  if held is None:
    return _create(fold_dir, mine)
  return is_stale(held, timeout_s) and _take_over(fold_dir, mine, version)


def release(fold_dir: str) -> None:
  """Removes this process's claim (another's is left alone)."""
  if _is_mine(read_claim(fold_dir)):
    storage.delete([_path(fold_dir)])
  with _ETAGS_LOCK:
    _ETAGS.pop(_path(fold_dir), None)


def _refresh(fold_dir: str) -> None:
  """Writes a new heartbeat into this process's claim (S3: only while it is still ours)."""
  path = _path(fold_dir)
  mine = _encode({**_owner(), "heartbeat": time.time()})
  if not storage.is_url(path):
    storage.write_bytes(path, mine)
    return
  with _ETAGS_LOCK:
    etag = _ETAGS.get(path)
  if etag is None:
    return  # taken over earlier: nothing of ours to refresh
  etag = storage.put_versioned(path, mine, if_version=etag)
  with _ETAGS_LOCK:
    if etag is None:
      _ETAGS.pop(path, None)
    else:
      _ETAGS[path] = etag


class Heartbeat:
  """Refreshes this process's claim every `interval_s` seconds while in a `with` block."""

  def __init__(self, fold_dir: str, interval_s: float):
    self._fold_dir = fold_dir
    self._interval_s = interval_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    while not self._stop.wait(self._interval_s):
      _refresh(self._fold_dir)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
