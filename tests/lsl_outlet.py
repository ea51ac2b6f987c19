"""An LSL stream on loopback for tests: a recording pushed `speed` times faster than real
time, each sample with the timestamp of its place in the recording (so a receiver sees the
recording's clock), with optional gaps (samples never pushed) and a pause.

    with lsl_outlet.FastOutlet("test-night", samples, 100, ["EEG Fpz-Cz"], speed=10) as outlet:
      ...   # the stream exists here; outlet.done is set once everything is pushed
"""

import os
import tempfile
import threading
import time
import uuid

import numpy as np


def quiet_liblsl() -> None:
  """liblsl logs INFO lines unless configured: as the live stager does, keep only errors."""
  if "LSLAPICFG" not in os.environ:
    path = os.path.join(tempfile.mkdtemp(), "lsl_api.cfg")
    with open(path, "w", encoding="utf-8") as f:
      f.write("[log]\nlevel = -3\n")
    os.environ["LSLAPICFG"] = path


class FastOutlet:
  """See the module docstring.

  Args:
    name: the stream's name (unique per test: `unique_name`).
    samples: [n, channels] float64.
    rate: nominal rate, Hz.
    labels: channel names.
    unit: channel unit ("microvolts", or mne-lsl's power of ten of volts "0", "-6").
    speed: how much faster than real time.
    gaps: (first, stop) sample ranges never pushed.
    Pushing starts once a receiver has connected (what is pushed before is not received).
    pause_after: samples after which pushing stops for `pause_seconds` (wall clock) while
      the clock runs on (a stall that is also a gap).
    chunk: samples per push.
  """

  def __init__(self,
               name,
               samples,
               rate,
               labels,
               *,
               unit="microvolts",
               speed=10.0,
               gaps=(),
               pause_after=None,
               pause_seconds=0.0,
               chunk=None):
    quiet_liblsl()
    from mne_lsl import lsl  # pylint: disable=g-import-not-at-top
    self._lsl = lsl
    self.samples = np.asarray(samples, np.float64)
    if self.samples.ndim == 1:
      self.samples = self.samples[:, None]
    self.rate, self.speed = float(rate), speed
    self.gaps, self.pause_after, self.pause_seconds = gaps, pause_after, pause_seconds
    self.chunk = chunk or max(1, int(rate // 10))
    info = lsl.StreamInfo(name, "EEG", self.samples.shape[1], self.rate, np.float64,
                          f"eegmobile-test-{uuid.uuid4().hex[:8]}")
    info.set_channel_names(list(labels))
    info.set_channel_units([unit] * len(labels))
    self._outlet = lsl.StreamOutlet(info, self.chunk)
    self.t0 = None
    self.pushed = 0
    self.done = threading.Event()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._push, daemon=True)

  def _skipped(self, i):
    return any(a <= i < b for a, b in self.gaps)

  def _push(self):
    # An inlet gets what is pushed after it connects: wait for the first one.
    self._outlet.wait_for_consumers(timeout=60)
    self.t0 = self._lsl.local_clock()
    began = time.monotonic()
    i = 0
    paused = False
    while i < len(self.samples) and not self._stop.is_set():
      stop = min(i + self.chunk, len(self.samples))
      keep = [j for j in range(i, stop) if not self._skipped(j)]
      if keep:
        self._outlet.push_chunk(np.ascontiguousarray(self.samples[keep]),
                                timestamp=self.t0 + np.asarray(keep) / self.rate)
        self.pushed += len(keep)
      i = stop
      if self.pause_after is not None and i >= self.pause_after and not paused:
        paused = True
        if self._stop.wait(self.pause_seconds):
          break
        began -= self.pause_seconds
      # Pace: sample i is due at i / rate / speed seconds after the start.
      delay = began + i / self.rate / self.speed - time.monotonic()
      if delay > 0 and self._stop.wait(delay):
        break
    self.done.set()

  def start(self):
    self._thread.start()
    return self

  def close(self):
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join()
    if self._outlet is not None:
      self._outlet._del()  # pylint: disable=protected-access  # releases the stream now
      self._outlet = None

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc):
    self.close()


def unique_name(prefix="eegmobile-test"):
  return f"{prefix}-{uuid.uuid4().hex[:8]}"
