"""Folds shared by many workers: which folds to train, and who trains each one.

Several workers (processes, GPUs, machines) given the same workdir on a shared file system
each run `train_claimed`: a worker claims a fold by creating `<fold dir>/CLAIM`
atomically (O_CREAT | O_EXCL: exactly one creator wins), keeps the claim alive by
touching it (a heartbeat thread), trains the fold and removes the claim when the fold is
done. A claim whose heartbeat is older than `stale_after_s` belongs to a worker that
died: another worker takes it over (renaming the stale claim away first, which only one
of several contenders can do) and resumes the fold from its last checkpoint. A worker
returns once every fold it was given is done, by itself or by others, so every fold is
trained exactly once.

All file access of the scheme is in this module (`_create_exclusive`, `_touch`, ...),
so that it can move to another file-system layer in one place.
"""

import dataclasses
import json
import os
import socket
import threading
import time
from typing import Callable, Iterable, Optional, Sequence

from absl import logging

CLAIM = "CLAIM"


def parse_folds(spec: str, num_folds: int) -> list[int]:
  """Fold numbers from "all", "3", "0,2,5-7" (ranges inclusive), sorted, no repeats.

  Raises:
    ValueError: malformed, empty or out-of-range parts (the message names them).
  """
  if spec.strip().lower() == "all":
    return list(range(num_folds))
  folds = set()
  for part in (p.strip() for p in spec.split(",")):
    low, _, high = part.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
      raise ValueError(f"--fold: {part!r} is not a fold number or a range like 5-7 "
                       "(use e.g. 3, 0,2,5-7 or all)")
    first, last = int(low), int(high or low)
    if first > last:
      raise ValueError(f"--fold: range {part!r} runs backwards")
    if last >= num_folds:
      raise ValueError(f"--fold: fold {last} does not exist; this run has folds "
                       f"0-{num_folds - 1}")
    folds.update(range(first, last + 1))
  return sorted(folds)


@dataclasses.dataclass(frozen=True)
class Claim:
  """A held claim on one fold."""
  path: str
  owner: str


def owner_name() -> str:
  return f"{socket.gethostname()}:{os.getpid()}"


def _create_exclusive(path: str, text: str) -> bool:
  try:
    handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(handle, "w") as f:
    f.write(text)
  return True


def _age_s(path: str) -> Optional[float]:
  try:
    return time.time() - os.path.getmtime(path)
  except FileNotFoundError:
    return None


def _touch(path: str) -> None:
  os.utime(path)


def try_claim(fold_dir: str,
              *,
              stale_after_s: float,
              owner: Optional[str] = None) -> Optional[Claim]:
  """Claims a fold, taking over a stale claim; None when a live worker holds it.

  Args:
    fold_dir: the fold's directory (created if missing).
    stale_after_s: a claim not touched for this long belongs to a dead worker.
    owner: who claims (default: host:pid).
  """
  os.makedirs(fold_dir, exist_ok=True)
  owner = owner or owner_name()
  path = os.path.join(fold_dir, CLAIM)
  text = json.dumps({"owner": owner, "claimed_at": time.time()})
  if _create_exclusive(path, text):
    return Claim(path, owner)
  age = _age_s(path)
  if age is not None and age < stale_after_s:
    return None
  try:  # stale (or just released): only one contender can move it away
    os.rename(path, f"{path}.stale-{owner.replace(':', '-')}")
  except FileNotFoundError:
    pass
  else:
    previous = _read_owner(f"{path}.stale-{owner.replace(':', '-')}")
    logging.warning("%s: taking over from %s, whose claim was not renewed for %.0f s", fold_dir,
                    previous, age or 0)
    os.remove(f"{path}.stale-{owner.replace(':', '-')}")
  return Claim(path, owner) if _create_exclusive(path, text) else None


def _read_owner(path: str) -> str:
  try:
    with open(path) as f:
      return json.load(f).get("owner", "?")
  except (OSError, ValueError):
    return "?"


def release(claim: Claim) -> None:
  """Gives a claim up (the fold is done, or this worker stops on an error)."""
  if _read_owner(claim.path) == claim.owner:
    os.remove(claim.path)


class Heartbeat:
  """Touches a claim every `every_s` seconds while a fold trains (a context manager)."""

  def __init__(self, claim: Claim, every_s: float):
    self._claim, self._every_s = claim, every_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, daemon=True)

  def _beat(self):
    while not self._stop.wait(self._every_s):
      try:
        _touch(self._claim.path)
      except FileNotFoundError:
        logging.error("%s: our claim disappeared (taken over?)", self._claim.path)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()


def train_claimed(folds: Sequence[int],
                  fold_dir: Callable[[int], str],
                  is_done: Callable[[int], bool],
                  train: Callable[[int], dict],
                  *,
                  stale_after_s: float = 600.0,
                  heartbeat_s: float = 30.0,
                  poll_s: float = 10.0) -> Iterable[dict]:
  """Trains every given fold that no live worker holds, until all of them are done.

  Args:
    folds: the folds this worker may train.
    fold_dir: fold -> its directory.
    is_done: fold -> whether it is finished (by anyone).
    train: fold -> its metrics (resumes from a checkpoint when there is one).
    stale_after_s: a claim not renewed for this long is taken over.
    heartbeat_s: how often a held claim is renewed (well below stale_after_s).
    poll_s: how long to wait when every pending fold is held by other live workers.

  Yields:
    The metrics of each fold this worker finished.
  """
  if heartbeat_s >= stale_after_s:
    raise ValueError(f"heartbeat ({heartbeat_s} s) must be shorter than the stale time "
                     f"({stale_after_s} s)")
  pending = list(folds)
  while pending:
    pending = [k for k in pending if not is_done(k)]
    progressed = False
    for fold in pending:
      claim = try_claim(fold_dir(fold), stale_after_s=stale_after_s)
      if claim is None:
        continue
      try:
        if is_done(fold):  # finished by another worker between our check and our claim
          continue
        with Heartbeat(claim, heartbeat_s):
          yield train(fold)
        progressed = True
      finally:
        release(claim)
    pending = [k for k in pending if not is_done(k)]
    if pending and not progressed:
      logging.info("folds %s are being trained by other workers; waiting", pending)
      time.sleep(poll_s)
