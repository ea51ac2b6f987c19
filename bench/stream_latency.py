r"""Live staging's latency, CPU time and memory on one core (issue 16).

  PYTHONPATH=. python bench/stream_latency.py --model EXPORT [--hours 8] [--rate 256] \
      [--lsl_seconds 300] [--workdir /tmp/stream_bench]

Two measurements, both through `eegmobile.staging.live.run` (what `python -m
eegmobile.stage --stream/--board` runs: stage each epoch, rewrite its TSV, EDF+, JSON and
state, the plot every 10 epochs), pinned to one core with the runtime on one thread:

1. A replayed night (`--hours`, synthetic EEG from eegmobile/demo/synthetic.py at `--rate`
   Hz, made an hour at a time, resampled to 100 Hz by the stager) fed through the Python API
   faster than real time, one second of samples per read. Latency: from the read that
   completed an epoch to its outputs written. CPU seconds per staged epoch
   (`time.process_time`), resident memory at each hour and the peak (ru_maxrss, before
   anything else runs), then offline staging of the same samples in the same process
   (`stage_lib.score_night`, no outputs) as the CPU baseline.
2. `--lsl_seconds` of the real Sleep-EDF excerpt (../shared/sleep-edf/excerpt; its
   `EEG Fpz-Cz` at 100 Hz, repeated to the length) replayed in real time by mne-lsl's
   player on loopback and received by `sources.LslSource`: latency from the chunk that
   completed an epoch arriving to its outputs written. Skipped without mne-lsl or the file.

The process must not import TensorFlow (what the `lite` install has, a small board's
budget): the script checks `sys.modules` at the end and says so. `--model` is an export
directory or a .tflite file (bench/demo_model.py makes a short-trained one); the runtime is
LiteRT unless --runtime says otherwise.
"""

import os
import resource
import sys
import tempfile
import threading
import time
import warnings

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
from eegmobile import edf_reader
from eegmobile.demo import synthetic
from eegmobile.staging import live
from eegmobile.staging import runtimes
from eegmobile.staging import sources
from eegmobile.staging import stage_lib
from tests import lsl_outlet

_MODEL = flags.DEFINE_string("model", None, "Export directory or .tflite file.", required=True)
_RUNTIME = flags.DEFINE_string("runtime", "litert", "Runtime (runtimes.RUNTIMES).")
_HOURS = flags.DEFINE_float("hours", 8.0, "Length of the replayed night.")
_RATE = flags.DEFINE_integer("rate", 256, "The replayed night's rate, Hz (Muse S: 256).")
_LSL_SECONDS = flags.DEFINE_integer("lsl_seconds", 300, "Real-time LSL replay length; 0: none.")
_EXCERPT = flags.DEFINE_string(
    "excerpt",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf", "excerpt",
                 "SC4001E0-PSG.first300s.edf"), "The real EDF the LSL replay sends.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Outputs go here (default: a temp dir).")
_CORE = flags.DEFINE_integer("core", 0, "The one core the process runs on.")


def _hour(hour: int, rate: int) -> np.ndarray:
  """One hour of the replayed night (synthetic EEG, stages held 10 min), at `rate` Hz."""
  rng = np.random.default_rng(hour)
  stages = np.repeat(rng.integers(0, 5, 6), 20)
  eeg = synthetic.synthesize_eeg(stages, seed=hour).astype(np.float64)  # 100 Hz, uV
  return edf_reader.resample(eeg, 100.0, float(rate)).astype(np.float64) if rate != 100 else eeg


def _rss_mib() -> float:
  with open("/proc/self/statm", encoding="ascii") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Replay(sources.Source):
  """A night made an hour at a time (the bench holds one hour, not the night), handed out
  one second per read as fast as it is asked for; then stop. Notes the process's resident
  memory at the start of every hour."""

  def __init__(self, hours: int, rate: int, stop: threading.Event):
    self.description, self.rate, self.unit = "replayed night", float(rate), "uV"
    self.labels, self.columns, self.notes = ("EEG Fpz-Cz",), [0], []
    self._hours, self._stop, self._hour = hours, stop, -1
    self._samples, self._at, self._sent = np.zeros(0), 0, 0
    self.rss: list[float] = []

  def read(self, timeout):
    if self._at >= len(self._samples):
      if self._hour + 1 >= self._hours:
        self._stop.set()
        return np.zeros((0, 1)), np.zeros(0)
      self._hour += 1
      self.rss.append(_rss_mib())
      self._samples, self._at = _hour(self._hour, int(self.rate)), 0
    part = self._samples[self._at:self._at + int(self.rate)]
    self._at += len(part)
    times = 1.7e9 + (self._sent + np.arange(len(part))) / self.rate
    self._sent += len(part)
    return part[:, None], times

  def reopen(self):
    raise sources.SourceLost("replay: nothing to reopen")

  def close(self):
    pass


def _percentiles(latencies) -> str:
  ms = np.asarray(latencies) * 1000
  return (f"latency median {np.median(ms):.0f} ms, 99th percentile {np.percentile(ms, 99):.0f} "
          f"ms, max {ms.max():.0f} ms over {len(ms)} epochs")


def _night(model, workdir: str) -> None:
  hours, rate = int(_HOURS.value), _RATE.value
  print(f"night: {hours} h, {hours * 120} epochs at {rate} Hz, fed one second per read")
  stop = threading.Event()
  source = _Replay(hours, rate, stop)
  cpu, wall = time.process_time(), time.perf_counter()
  result = live.run(source,
                    model,
                    os.path.join(workdir, "api"),
                    record="night",
                    config=stage_lib.StageConfig(batch_size=1),
                    live=live.LiveConfig(stall_seconds=5),
                    log=lambda line: None,
                    stop=stop)
  live_cpu = (time.process_time() - cpu) / result["scored"]
  wall = time.perf_counter() - wall
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f"API replay: {result['scored']} epochs staged in {wall:.0f} s "
        f"({hours * 3600 / wall:.0f}x real time); {_percentiles(result['latencies'])}")
  print("resident memory at each hour's start: " + ", ".join(f"{m:.0f}" for m in source.rss) +
        f" MiB; peak {peak:.0f} MiB")
  # Baseline: offline staging of the same samples (no outputs), same process, model, thread.
  config = stage_lib.StageConfig(batch_size=16)
  samples = np.concatenate([_hour(h, rate) for h in range(hours)])
  signal = edf_reader.resample(samples, float(rate), 100.0)
  night = stage_lib.Night(path="replay",
                          signal=signal,
                          fs=100.0,
                          label="x",
                          original_fs=float(rate),
                          num_epochs=len(signal) // 3000,
                          trailing_seconds=0.0,
                          start=None)
  spec = stage_lib.check_preprocessing(model, config)
  cpu = time.process_time()
  stage_lib.score_night(night, model, spec, config)
  offline_cpu = (time.process_time() - cpu) / night.num_epochs
  print(f"CPU per epoch: live {live_cpu * 1000:.0f} ms (stage + every output rewritten), "
        f"offline staging {offline_cpu * 1000:.0f} ms (stage only, batches of 16): ratio "
        f"{live_cpu / offline_cpu:.2f}")


def _lsl(model, workdir: str) -> None:
  if _LSL_SECONDS.value <= 0:
    return
  if not os.path.exists(_EXCERPT.value):
    print(f"LSL replay: skipped ({_EXCERPT.value} is absent)")
    return
  try:
    import mne  # pylint: disable=g-import-not-at-top
    from mne_lsl.player import PlayerLSL  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("LSL replay: skipped (needs the stream extra: mne-lsl)")
    return
  lsl_outlet.quiet_liblsl()  # liblsl's INFO lines off, as the command has them
  with warnings.catch_warnings():  # the other channels' filter fields, not read here
    warnings.simplefilter("ignore", RuntimeWarning)
    raw = mne.io.read_raw_edf(_EXCERPT.value, include=["EEG Fpz-Cz"], preload=True, verbose=False)
  repeats = int(np.ceil(_LSL_SECONDS.value / raw.times[-1]))
  raw = mne.concatenate_raws([raw.copy() for _ in range(repeats)], verbose=False)
  raw.crop(0, _LSL_SECONDS.value + 2, include_tmax=False, verbose=False)
  name = f"eegmobile-bench-{os.getpid()}"
  player = PlayerLSL(raw, chunk_size=10, n_repeat=1, name=name)  # 0.1 s chunks
  player.start()
  try:
    source = sources.LslSource(name, "Fpz-Cz")
    result = live.run(source,
                      model,
                      os.path.join(workdir, "lsl"),
                      record="night",
                      config=stage_lib.StageConfig(batch_size=1),
                      live=live.LiveConfig(stall_seconds=3,
                                           duration=_LSL_SECONDS.value,
                                           reconnect_tries=0),
                      log=lambda line: None)
  finally:
    try:
      player.stop()
    except RuntimeError:
      pass
  print(f"LSL real-time replay ({_LSL_SECONDS.value} s of {os.path.basename(_EXCERPT.value)}):"
        f" {_percentiles(result['latencies'])}; ended: {result['ended']}")


def main(argv):
  del argv
  os.sched_setaffinity(0, {_CORE.value})
  model = runtimes.load(_MODEL.value, runtime=_RUNTIME.value, threads=1)
  print(f"model: {model.path} on {model.runtime} {model.precision}, {model.input_kind}; "
        f"one core ({_CORE.value}), one thread")
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="stream_bench.")
  _night(model, workdir)
  _lsl(model, workdir)
  print("TensorFlow imported: " + ("yes" if "tensorflow" in sys.modules else "no") +
        "; Beam imported: " + ("yes" if "apache_beam" in sys.modules else "no"))


if __name__ == "__main__":
  app.run(main)
