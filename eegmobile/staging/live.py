"""A night staged as it is recorded: a source's samples through the streaming stager, the
outputs on disk kept current (`python -m eegmobile.stage --stream lsl:NAME | --board ...`).

    result = live.run(source, model, "staged", record="night1")

Each epoch, once complete, is printed as one line and the night's outputs are rewritten:
<record>.stages.tsv, .hypnogram.edf and .sleep_stats.json every epoch, the figure
(.hypnogram.png) every `plot_every` epochs and at the end; then <record>.stream.json, the
night's state (every epoch's probabilities or reason, the clock). Each file is replaced
whole (`eegmobile.storage`), so a kill loses at most the epoch being filled, and what is on
disk is always a consistent night up to some epoch. Started again with the same output
directory and record, the night continues from its state: its epochs are kept, the new
samples go where their timestamps put them on the night's clock, and the time in between
is unscored ("gap"). A state from another model, source channel or rate is refused (the
message says what differs), as is one whose last epoch is more than `new_night_hours`
before the new samples (another night: give another record).

Misbehaving sources (the stager marks gaps, NaN samples and clock corrections): no samples
for `stall_seconds` ends the night (`on_stall="end"`) or waits, saying so every
`stall_seconds` (`on_stall="wait"`); a lost source is reopened up to `reconnect_tries`
times, each try logged; the end of the stream, Ctrl-C or SIGTERM finish the outputs
(the resampler's last samples, the figure) and mark the state finished. A rate that
drifts from the nominal shows as gaps (slower) or clock corrections (faster); the rate the
timestamps measure is logged every hour and at the end (of a run of a minute or more).

The model was trained on Fpz-Cz; another channel or pair (a headband's AF7-TP9) stages,
and the output says its accuracy there is not established (`stage_lib.montage_note`).
"""

import contextlib
import dataclasses
import datetime
import json
import os
import signal
import threading
import time
from typing import Callable, Iterator, Optional

import numpy as np

from eegmobile import stages
from eegmobile import storage
from eegmobile.staging import outputs
from eegmobile.staging import runtimes
from eegmobile.staging import sleep_stats
from eegmobile.staging import sources
from eegmobile.staging import stage_lib
from eegmobile.staging import stream

STATE_FORMAT = 1
EPOCH_SECONDS = stage_lib.EPOCH_SECONDS


@dataclasses.dataclass(frozen=True)
class LiveConfig:
  """How a live night is run.

  Attributes:
    stall_seconds: no samples for this long is a stall.
    on_stall: end: a stall ends the night; wait: keep waiting (said every stall_seconds).
    reconnect_tries: times a lost stream or board is looked for again before the night
      ends (1, 2, 4 ... up to 30 s apart).
    plot_every: epochs between figure updates (the figure is also drawn at the end).
    gap_seconds: timestamps this far from where the nominal rate puts a sample are a gap
      (later) or a clock correction (earlier).
    duration: seconds of recording to stage in this run, then finish (None: until the
      stream ends, a stall ends it, or Ctrl-C).
    new_night_hours: a state whose last epoch is further back than this is another night.
  """
  stall_seconds: float = 60.0
  on_stall: str = dataclasses.field(default="end", metadata={"choices": ("end", "wait")})
  reconnect_tries: int = 10
  plot_every: int = 10
  gap_seconds: float = 0.5
  duration: Optional[float] = None
  new_night_hours: float = 12.0

  def __post_init__(self):
    if self.on_stall not in ("end", "wait"):
      raise ValueError(f"on_stall must be end or wait, got {self.on_stall!r}")
    if self.stall_seconds <= 0 or self.plot_every < 1 or self.reconnect_tries < 0:
      raise ValueError("stall_seconds must be positive, plot_every at least 1, "
                       "reconnect_tries at least 0")


class StateError(ValueError):
  """An output directory whose night cannot be continued (the message says why)."""


def state_path(output_dir: str, record: str) -> str:
  return os.path.join(output_dir, f"{record}.stream.json")


def read_state(output_dir: str, record: str) -> Optional[dict]:
  """The night's state, or None where there is none.

  Raises:
    StateError: a state file that is not one (names the file).
  """
  path = state_path(output_dir, record)
  if not storage.exists(path):
    return None
  try:
    state = json.loads(storage.read_text(path))
    if state.get("format") != STATE_FORMAT:
      raise ValueError(f"format {state.get('format')!r}, expected {STATE_FORMAT}")
    for key in ("clock_origin", "epochs", "model", "channel", "rate"):
      state[key]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError) as e:
    raise StateError(f"{path}: not a live night's state ({e}); move it away to start a "
                     "new night") from e
  return state


def _check_continuable(state: dict, fresh: dict, path: str) -> None:
  differ = [
      f"{k} {state[k]!r} (state) vs {fresh[k]!r} (now)" for k in ("model", "channel", "rate")
      if state[k] != fresh[k]
  ]
  if differ:
    raise StateError(f"{path}: the night there was staged with another setup: " +
                     "; ".join(differ) + ". Give another --record or --output_dir")


def _format_epoch(epoch: stream.StagedEpoch, start: datetime.datetime, latency: float) -> str:
  clock = (start + datetime.timedelta(seconds=epoch.onset)).strftime("%H:%M:%S")
  head = f"epoch {epoch.index:5d}  {clock}"
  if not epoch.scored:
    return f"{head}  --   unscored ({epoch.reason})"
  p = "  ".join(f"{s} {v:.2f}" for s, v in zip(stages.STAGES, epoch.probabilities))
  return f"{head}  {stages.STAGES[epoch.stage]:<4} {p}  ({latency * 1000:.0f} ms)"


class _Night:
  """The night's epochs and its files."""

  def __init__(self, output_dir: str, record: str, state: dict, plot_every: int,
               log: Callable[[str], None]):
    self.output_dir, self.record, self.state = output_dir, record, state
    self.plot_every, self.log = plot_every, log
    self.start = datetime.datetime.fromtimestamp(state["clock_origin"])
    self._since_plot = 0
    self.latencies: list[float] = []

  @property
  def next_epoch(self) -> int:
    return len(self.state["epochs"])

  def add(self, epochs: list[stream.StagedEpoch], final: bool = False) -> None:
    if not epochs and not final:
      return
    for e in epochs:
      assert e.index == self.next_epoch, (e.index, self.next_epoch)
      self.state["epochs"].append({
          # float32 -> float -> JSON -> float32 is exact: the outputs are rewritten from it.
          "p": None if e.probabilities is None else [float(v) for v in e.probabilities],
          "reason": e.reason
      })
    self._since_plot += len(epochs)
    plot = final or self._since_plot >= self.plot_every
    self.write(plot=plot)
    now = time.monotonic()
    for e in epochs:
      latency = now - e.completed_at
      if e.scored:
        self.latencies.append(latency)
      self.log(_format_epoch(e, self.start, latency))
    if plot:
      self._since_plot = 0

  def write(self, plot: bool) -> None:
    """The outputs, then the state (so a state never runs ahead of the outputs)."""
    scored = [(i, e["p"]) for i, e in enumerate(self.state["epochs"]) if e["p"] is not None]
    base = os.path.join(self.output_dir, self.record)
    if scored:
      onsets = np.array([i * EPOCH_SECONDS for i, _ in scored])
      probabilities = np.array([p for _, p in scored], np.float32)
      outputs.write_tsv(f"{base}.stages.tsv", onsets, probabilities)
      outputs.write_hypnogram_edf(f"{base}.hypnogram.edf",
                                  onsets,
                                  probabilities,
                                  start=self.start,
                                  record=self.record)
      hypnogram = np.full(self.next_epoch, sleep_stats.UNSCORED, np.int64)
      hypnogram[[i for i, _ in scored]] = outputs.stage_of(probabilities)
      statistics = sleep_stats.sleep_statistics(hypnogram[:scored[-1][0] + 1])
      unscored = [{
          "onset": i * EPOCH_SECONDS,
          "reason": e["reason"]
      } for i, e in enumerate(self.state["epochs"]) if e["p"] is None]
      outputs.write_statistics(
          f"{base}.sleep_stats.json", {
              **statistics, "trailing_partial_epoch": None,
              "live": {
                  "source": self.state["source"],
                  "channel": self.state["channel"],
                  "finished": self.state["finished"],
                  "unscored_epochs": unscored
              },
              "montage": self.state["montage"]
          })
      if plot:
        outputs.plot_night(f"{base}.hypnogram.png",
                           onsets,
                           probabilities,
                           start=self.start,
                           title=self.record)
    self.state["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
    storage.write_text(state_path(self.output_dir, self.record),
                       json.dumps(self.state, indent=None, separators=(",", ":")) + "\n")


@contextlib.contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
  """Ctrl-C and SIGTERM set `stop` (the night then ends cleanly, outputs finished) instead
  of raising mid-write; the previous handlers come back after."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def run(source: sources.Source,
        model: runtimes.StagingModel,
        output_dir: str,
        *,
        record: str,
        config: stage_lib.StageConfig = stage_lib.StageConfig(),
        live: LiveConfig = LiveConfig(),
        log: Callable[[str], None] = print,
        stop: Optional[threading.Event] = None) -> dict:
  """Stages `source` until it ends, stalls (with on_stall end), `duration` passes, or a stop.

  Args:
    source: an open source (closed here when the night ends).
    model: a loaded model.
    output_dir: where the outputs go (created).
    record: the night's name (file names); the same record in the same directory continues.
    config: staging settings (the channel is the source's).
    live: how the night is run.
    log: where the lines go.
    stop: set it to end the night (Ctrl-C and SIGTERM set it too, on the main thread).

  Returns:
    {"record", "epochs" (this run's), "scored", "unscored" ({reason: count}), "ended" (why),
     "night_epochs" (the whole night's), "latencies" (seconds, scored epochs), "state"
     (its path), "continued" (bool)}.

  Raises:
    StateError: an output that cannot be continued.
  """
  os.makedirs(output_dir, exist_ok=True)
  fresh = {
      "format": STATE_FORMAT,
      "record": record,
      "model": os.path.abspath(model.path),
      "source": source.description,
      "channel": source.channel_label,
      "rate": source.rate,
      "montage": stage_lib.montage_note(source.channel_label),
      "finished": False,
  }
  try:
    state = read_state(output_dir, record)
    if state is not None:
      _check_continuable(state, fresh, state_path(output_dir, record))
      state.update(source=fresh["source"], finished=False)
  except StateError:
    source.close()
    raise
  for note in source.notes:
    log(f"note: {note}")
  if fresh["montage"]:
    log(f"note: {fresh['montage']['note']}")
  stop = stop or threading.Event()
  with _signals_set(stop):
    result = _loop(source, model, output_dir, record, config, live, log, stop, state, fresh)
  return {**result, "continued": state is not None}


def _loop(source, model, output_dir, record, config, live, log, stop, state, fresh) -> dict:
  night: Optional[_Night] = None
  stager: Optional[stream.StreamingStager] = None
  first_time = last_time = None
  last_data = last_notice = time.monotonic()
  received = 0
  ended = None
  rate_logged_at = None
  this_run = 0
  try:
    while ended is None:
      if stop.is_set():
        ended = "stopped (Ctrl-C or SIGTERM)"
        break
      try:
        samples, times = source.read(timeout=0.25)
      except sources.SourceLost as e:
        ended = _reconnect(source, live, log, stop, e)
        continue
      now = time.monotonic()
      if not len(samples):
        idle = now - last_data
        if idle >= live.stall_seconds and now - last_notice >= live.stall_seconds:
          last_notice = now
          if live.on_stall == "end":
            ended = f"no samples for {idle:.0f} s (--on_stall end)"
          else:
            log(f"no samples for {idle:.0f} s from {source.description}; waiting "
                "(--on_stall wait)")
        continue
      last_data = last_notice = now
      if first_time is None:
        first_time = times[0]
      if live.duration is not None:
        keep = times < first_time + live.duration
        samples, times = samples[keep], times[keep]
        if not keep.all():
          ended = f"--duration {live.duration:g} s staged"
      if not len(samples):
        continue
      received += len(samples)
      last_time = times[-1]
      if stager is None:
        if state is None:
          state = {**fresh, "clock_origin": float(times[0]), "epochs": []}
          log(f"{source.description}: {source.channel_label} at {source.rate:g} Hz -> "
              f"{output_dir}/{record}.* (a new night, from "
              f"{datetime.datetime.fromtimestamp(times[0]):%Y-%m-%d %H:%M:%S})")
        else:
          _check_same_night(state, times[0], live, output_dir, record)
          log(f"{source.description}: {source.channel_label} at {source.rate:g} Hz -> "
              f"{output_dir}/{record}.* (continuing the night from epoch "
              f"{len(state['epochs'])}; the time in between is unscored)")
        night = _Night(output_dir, record, state, live.plot_every, log)
        stager = stream.StreamingStager(model,
                                        rate=source.rate,
                                        unit=source.unit,
                                        config=config,
                                        gap_seconds=live.gap_seconds,
                                        first_epoch=night.next_epoch,
                                        clock_origin=state["clock_origin"])
      done = stager.push(samples, times)
      this_run += len(done)
      night.add(done)
      if last_time - (rate_logged_at or first_time) >= 3600:
        rate_logged_at = last_time
        _log_rate(log, source, received, first_time, last_time)
  finally:
    source.close()
  if stager is not None:
    done = stager.finish()
    this_run += len(done)
    night.state["finished"] = True
    night.add(done, final=True)
    if last_time is not None and last_time - first_time >= 60:
      _log_rate(log, source, received, first_time, last_time)
  epochs = night.state["epochs"] if night else []
  unscored: dict = {}
  for e in epochs:
    if e["p"] is None:
      unscored[e["reason"]] = unscored.get(e["reason"], 0) + 1
  latencies = night.latencies if night else []
  log(f"ended: {ended}; the night has {len(epochs)} epochs, "
      f"{sum(e['p'] is not None for e in epochs)} scored" +
      (f", unscored: {', '.join(f'{n} {r}' for r, n in unscored.items())}" if unscored else "") +
      (f"; latency median {np.median(latencies) * 1000:.0f} ms, 99th percentile "
       f"{np.percentile(latencies, 99) * 1000:.0f} ms" if latencies else ""))
  return {
      "record": record,
      "epochs": this_run,
      "night_epochs": len(epochs),
      "scored": sum(e["p"] is not None for e in epochs),
      "unscored": unscored,
      "ended": ended,
      "latencies": latencies,
      "state": state_path(output_dir, record),
  }


def _check_same_night(state: dict, first_time: float, live: LiveConfig, output_dir: str,
                      record: str) -> None:
  last_end = state["clock_origin"] + len(state["epochs"]) * EPOCH_SECONDS
  if first_time - last_end > live.new_night_hours * 3600:
    raise StateError(
        f"{state_path(output_dir, record)}: its night ended at "
        f"{datetime.datetime.fromtimestamp(last_end):%Y-%m-%d %H:%M}, "
        f"{(first_time - last_end) / 3600:.1f} h before these samples (more than "
        f"{live.new_night_hours:g} h: another night). Give another --record or --output_dir")
  if first_time < last_end - live.gap_seconds:
    raise StateError(f"{state_path(output_dir, record)}: the stream's samples start at "
                     f"{datetime.datetime.fromtimestamp(first_time):%H:%M:%S}, before the "
                     "night's last staged epoch ends: another source's clock?")


def _log_rate(log, source, received, first_time, last_time) -> None:
  measured = (received - 1) / (last_time - first_time)
  drift = (measured / source.rate - 1) * 1e6
  note = "" if abs(drift) < 1000 else (" (the drift shows as gaps or clock corrections)")
  log(f"rate: {measured:.3f} Hz measured by the timestamps over {last_time - first_time:.0f} s "
      f"vs {source.rate:g} nominal ({drift:+.0f} ppm){note}")


def _reconnect(source, live: LiveConfig, log, stop, error) -> Optional[str]:
  """Reopens a lost source; None when it is back, else why the night ends."""
  log(f"lost: {error}")
  pause = 1.0
  for attempt in range(1, live.reconnect_tries + 1):
    if stop.wait(pause):
      return "stopped (Ctrl-C or SIGTERM) while reconnecting"
    try:
      source.reopen()
    except (sources.SourceLost, sources.SourceError) as e:
      log(f"reconnect {attempt}/{live.reconnect_tries} failed: {e}")
      pause = min(30.0, pause * 2)
      continue
    log(f"reconnect {attempt}/{live.reconnect_tries}: {source.description} is back")
    return None
  return f"{source.description} lost ({live.reconnect_tries} reconnects failed)"
