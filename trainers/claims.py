"""Fold claims, so several workers sharing a workdir train each fold once.

A worker claims a fold by creating `<fold dir>/CLAIM` exclusively (O_CREAT | O_EXCL): it
holds the owner (host, pid) and a heartbeat time the owner refreshes while it trains (a
thread). A claim whose heartbeat is older than the timeout belongs to a dead worker, and so
does one whose owner ran on this machine and is no longer a process (a worker killed here
and restarted need not wait out the timeout): it is taken over by renaming it away (atomic: only one worker's rename succeeds) and claiming
again; training then resumes from the fold's checkpoint. All file access of claims is in
this module. A fold dir that is an s3:// URL uses S3 conditional writes instead (below).
"""

import json
import os
import socket
import threading
import time
from typing import Optional

CLAIM = "CLAIM"


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
  if _is_s3(fold_dir):
    return _s3_read(_s3_join(fold_dir))[0]
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
  if _is_s3(fold_dir):
    return _s3_try_claim(fold_dir, timeout_s)
  os.makedirs(fold_dir, exist_ok=True)
  path = os.path.join(fold_dir, CLAIM)
  mine = {**_owner(), "heartbeat": time.time()}
  if _write_new(path, mine):
    return True
  held = read_claim(fold_dir)
  if held is None or not is_stale(held, timeout_s):
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
  if _is_s3(fold_dir):
    _s3_release(fold_dir)
    return
  if _is_mine(read_claim(fold_dir)):
    os.remove(os.path.join(fold_dir, CLAIM))


class Heartbeat:
  """Refreshes this process's claim every `interval_s` seconds while in a `with` block."""

  def __init__(self, fold_dir: str, interval_s: float):
    self._fold_dir = fold_dir
    self._path = os.path.join(fold_dir, CLAIM)
    self._interval_s = interval_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    while not self._stop.wait(self._interval_s):
      if _is_s3(self._fold_dir):
        _s3_heartbeat(self._fold_dir)
        continue
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


# Object-store claims (s3:// fold dirs). The same protocol on S3 conditional writes: a claim
# is created with If-None-Match "*" (one creator wins, the others get 412), refreshed with
# If-Match <the ETag this process last wrote>, and a stale one taken over with If-Match <the
# stale ETag> (one contender wins). Endpoint and credentials: boto3's standard settings
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL), with
# tensorflow-io's S3_ENDPOINT accepted as the endpoint when AWS_ENDPOINT_URL is unset.

_ETAGS: dict[str, str] = {}  # s3 claim URL -> ETag of this process's last write
_ETAGS_LOCK = threading.Lock()


def _is_s3(path: str) -> bool:
  return path.startswith("s3://")


def _s3():
  from trainers import workdir  # pylint: disable=g-import-not-at-top
  return workdir.client()


def _split(url: str) -> tuple[str, str]:
  from trainers import workdir  # pylint: disable=g-import-not-at-top
  return workdir.split(url)


def _s3_join(fold_dir: str) -> str:
  return fold_dir.rstrip("/") + "/" + CLAIM


def _s3_put(url: str, value: dict, **condition) -> bool:
  """Puts `value` at `url` under a condition (IfNoneMatch/IfMatch); False when it fails."""
  from botocore import exceptions  # pylint: disable=g-import-not-at-top
  bucket, key = _split(url)
  try:
    etag = _s3().put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode(),
                            **condition)["ETag"]
  except exceptions.ClientError as e:
    if e.response.get("Error",
                      {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict",
                                          "NoSuchKey", "412", "409"):
      return False
    raise
  with _ETAGS_LOCK:
    _ETAGS[url] = etag
  return True


def _s3_read(url: str) -> tuple[Optional[dict], Optional[str]]:
  """(claim, ETag) of the claim object at `url`, or (None, None) when there is none."""
  from botocore import exceptions  # pylint: disable=g-import-not-at-top
  bucket, key = _split(url)
  try:
    response = _s3().get_object(Bucket=bucket, Key=key)
  except exceptions.ClientError as e:
    if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
      return None, None
    raise
  return json.loads(response["Body"].read()), response["ETag"]


def _s3_try_claim(fold_dir: str, timeout_s: float) -> bool:
  url = _s3_join(fold_dir)
  mine = {**_owner(), "heartbeat": time.time()}
  if _s3_put(url, mine, IfNoneMatch="*"):
    return True
  held, etag = _s3_read(url)
  if held is None:
    return _s3_put(url, mine, IfNoneMatch="*")
  if not is_stale(held, timeout_s):
    return False
  return _s3_put(url, mine, IfMatch=etag)  # only one contender's conditional put succeeds


def _s3_release(fold_dir: str) -> None:
  url = _s3_join(fold_dir)
  held, _ = _s3_read(url)
  if _is_mine(held):
    bucket, key = _split(url)
    _s3().delete_object(Bucket=bucket, Key=key)
  with _ETAGS_LOCK:
    _ETAGS.pop(url, None)


def _s3_heartbeat(fold_dir: str) -> None:
  url = _s3_join(fold_dir)
  with _ETAGS_LOCK:
    etag = _ETAGS.get(url)
  if etag is not None:  # a failed put means another worker took the claim over: stop
    if not _s3_put(url, {**_owner(), "heartbeat": time.time()}, IfMatch=etag):
      with _ETAGS_LOCK:
        _ETAGS.pop(url, None)
