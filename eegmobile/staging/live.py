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

With a context stage (`context_stage.live_stage`: the export's smoother or causal sequence
head, lag k) each epoch's context probabilities come once k epochs after it have come (the
last k at the end of the night), causally: nothing after epoch t + k is read. The outputs
then follow the context stage, as offline staging's with the same stage and --context_lag:
the TSV has the epochs decided so far, its second column group the per-epoch model's own
(`outputs`). An epoch's context probabilities, once written, are never revised; the
smoother steps through unscored epochs with its transition matrix, the head reads them as
zero features (as in training). The state keeps them ("s" of each epoch) and what rebuilds
the stage when the night continues (the smoother replays the epochs' probabilities; the
head keeps its last window + k epochs' features, "context_inputs").
"""

import contextlib
import dataclasses
import datetime
import json
import os
import signal
import threading
import time
from typing import Callable, Iterator, Optional, Union

import numpy as np

from eegmobile import context as context_lib
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
# A context stage fed one epoch at a time (`context_stage.live_stage`).
LiveContext = Union[context_lib.CausalSmoother, context_lib.CausalHead]


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
  # A state without "context" (none, or written before context stages) had none.
  differ = [
      f"{k} {state.get(k)!r} (state) vs {fresh.get(k)!r} (now)" for k in ("model", "channel",
                                                                          "rate", "context")
      if state.get(k) != fresh.get(k)
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


def _format_context(index: int, probabilities: np.ndarray, start: datetime.datetime) -> str:
  clock = (start + datetime.timedelta(seconds=index * EPOCH_SECONDS)).strftime("%H:%M:%S")
  p = "  ".join(f"{s} {v:.2f}" for s, v in zip(stages.STAGES, probabilities))
  return f"context {index:5d}  {clock}  {stages.STAGES[int(np.argmax(probabilities))]:<4} {p}"


class _Context:
  """The context stage run causally over the night's epochs, in order (module docstring).

  `add` and `finish` return the epochs it decides: (index, float32 [5] probabilities as
  offline staging writes them, `context.as_probabilities`).
  """

  def __init__(self, stage: LiveContext, feature_size: int):
    self.stage = stage
    self.kind = "head" if isinstance(stage, context_lib.CausalHead) else "smoother"
    self._zeros = np.zeros(feature_size, np.float32)  # the head's input for an unscored epoch
    self._pending: list[tuple[int, bool]] = []  # (index, scored) fed, not yet decided
    self._last_scored: Optional[int] = None
    # The head's inputs of the last window + lag epochs (None: unscored), for a restart.
    self.inputs: list[Optional[np.ndarray]] = []

  def describe(self) -> dict:
    return context_lib.describe(self.kind, self.stage.lag)

  def add(self, index: int, probabilities: Optional[np.ndarray],
          features: Optional[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """Feeds epoch `index` (the one after the last fed; probabilities None: unscored)."""
    scored = probabilities is not None
    if self.kind == "smoother":
      if not scored:
        return []  # stepped through with the transition matrix at the next scored epoch
      steps = 1 if self._last_scored is None else index - self._last_scored
      self._last_scored = index
      self._pending.append((index, True))
      return self._decided(self.stage.update(probabilities, steps=steps))
    if scored and features is None:
      raise ValueError("the sequence head needs the per-epoch features: load the model "
                       "with features (runtimes.load(..., features=True))")
    self._pending.append((index, scored))
    self.inputs = (self.inputs +
                   [features if scored else None])[-(self.stage.window + self.stage.lag):]
    return self._decided(self.stage.update(features if scored else self._zeros))

  def finish(self) -> list[tuple[int, np.ndarray]]:
    """The end of the night: the epochs still pending, from the epochs there are."""
    decided = self._decided(self.stage.finish())
    self._pending, self._last_scored = [], None
    return decided

  def resume(self, epochs: list[dict], inputs: list) -> list[tuple[int, np.ndarray]]:
    """Rebuilds the stage from a state's epochs (and the head's stored inputs)."""
    decided = []
    if self.kind == "smoother":
      for i, e in enumerate(epochs):
        decided += self.add(i, None if e["p"] is None else np.array(e["p"], np.float32), None)
      return decided
    first = len(epochs) - len(inputs)
    for i, features in enumerate(inputs, first):
      p = epochs[i]["p"]
      decided += self.add(i, None if p is None else np.array(p, np.float32),
                          None if features is None else np.array(features, np.float32))
    return decided

  def _decided(self, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    decided = []
    for row in rows:
      index, scored = self._pending.pop(0)
      if scored:  # the head's output for an unscored epoch is dropped
        decided.append((index, context_lib.as_probabilities(row[None])[0]))
    return decided


class _Night:
  """The night's epochs and its files."""

  def __init__(self,
               output_dir: str,
               record: str,
               state: dict,
               plot_every: int,
               log: Callable[[str], None],
               context: Optional[_Context] = None):
    self.output_dir, self.record, self.state = output_dir, record, state
    self.plot_every, self.log, self.context = plot_every, log, context
    self.start = datetime.datetime.fromtimestamp(state["clock_origin"])
    self._since_plot = 0
    self.latencies: list[float] = []
    if context is not None:  # a continued night: the stage as the last run left it
      self._keep(context.resume(state["epochs"], state.get("context_inputs", [])))

  def _keep(self, decided: list[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
    """Puts the context stage's decisions into the state; an epoch's first one stays."""
    kept = []
    for index, probabilities in decided:
      entry = self.state["epochs"][index]
      if "s" not in entry:
        entry["s"] = [float(v) for v in probabilities]  # exact, as "p"
        kept.append((index, probabilities))
    return kept

  @property
  def next_epoch(self) -> int:
    return len(self.state["epochs"])

  def add(self, epochs: list[stream.StagedEpoch], final: bool = False) -> None:
    if not epochs and not final:
      return
    decided = []
    for e in epochs:
      assert e.index == self.next_epoch, (e.index, self.next_epoch)
      self.state["epochs"].append({
          # float32 -> float -> JSON -> float32 is exact: the outputs are rewritten from it.
          "p": None if e.probabilities is None else [float(v) for v in e.probabilities],
          "reason": e.reason
      })
      if self.context is not None:
        decided += self._keep(self.context.add(e.index, e.probabilities, e.features))
    if self.context is not None and final:
      decided += self._keep(self.context.finish())
    self._since_plot += len(epochs)
    plot = final or self._since_plot >= self.plot_every
    self.write(plot=plot)
    now = time.monotonic()
    for e in epochs:
      latency = now - e.completed_at
      if e.scored:
        self.latencies.append(latency)
      self.log(_format_epoch(e, self.start, latency))
    for index, probabilities in decided:
      self.log(_format_context(index, probabilities, self.start))
    if plot:
      self._since_plot = 0

  def write(self, plot: bool) -> None:
    """The outputs, then the state (so a state never runs ahead of the outputs)."""
    epochs = self.state["epochs"]
    per_epoch = more = None
    if self.context is None:
      scored = [(i, e["p"]) for i, e in enumerate(epochs) if e["p"] is not None]
    else:  # the epochs the context stage has decided, its probabilities and the model's
      scored = [(i, e["s"]) for i, e in enumerate(epochs) if "s" in e]
      per_epoch = np.array([epochs[i]["p"] for i, _ in scored], np.float32)
      more = self.context.describe()
      if self.context.kind == "head":
        self.state["context_inputs"] = [
            None if f is None else [float(v) for v in f] for f in self.context.inputs
        ]
    base = os.path.join(self.output_dir, self.record)
    if scored:
      onsets = np.array([i * EPOCH_SECONDS for i, _ in scored])
      probabilities = np.array([p for _, p in scored], np.float32)
      outputs.write_tsv(f"{base}.stages.tsv",
                        onsets,
                        probabilities,
                        per_epoch_probabilities=per_epoch)
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
      } for i, e in enumerate(epochs) if e["p"] is None]
      night = {
          "source": self.state["source"],
          "channel": self.state["channel"],
          "finished": self.state["finished"],
          "unscored_epochs": unscored
      }
      context = {}
      if more is not None:  # as offline staging's, and the scored epochs not yet decided
        context = {"context": more}
        night["awaiting_context"] = sum(e["p"] is not None and "s" not in e for e in epochs)
      outputs.write_statistics(
          f"{base}.sleep_stats.json", {
              **statistics, "trailing_partial_epoch": None,
              "live": night,
              "montage": self.state["montage"],
              **context
          })
      if plot:
        outputs.plot_night(f"{base}.hypnogram.png",
                           onsets,
                           probabilities,
                           start=self.start,
                           title=self.record if more is None else
                           f"{self.record}: after the context stage ({more['kind']}, "
                           f"{more['mode']})")
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
        stop: Optional[threading.Event] = None,
        context: Optional[LiveContext] = None) -> dict:
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
    context: the context stage to apply causally (`context_stage.live_stage`; a fresh one),
      or None. A sequence head needs a model loaded with features.

  Returns:
    {"record", "epochs" (this run's), "scored", "unscored" ({reason: count}), "ended" (why),
     "night_epochs" (the whole night's), "latencies" (seconds, scored epochs), "state"
     (its path), "continued" (bool); with a context stage "context"
     (`context.describe`) and "decided" (epochs it has decided)}.

  Raises:
    StateError: an output that cannot be continued (or continued with another context
      stage).
    ValueError: a sequence head with a model loaded without features.
  """
  live_context = None
  if context is not None:
    live_context = _Context(context, model.feature_size)
    if live_context.kind == "head" and model.predict_features is None:
      source.close()
      raise ValueError(f"{model.path}: the sequence head needs the per-epoch features: load "
                       "the model with features (runtimes.load(..., features=True))")
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
  if live_context is not None:
    fresh["context"] = live_context.describe()
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
  if live_context is not None:
    lag = live_context.stage.lag
    log(f"context: {live_context.kind}, {fresh['context']['mode']}: each epoch's context "
        f"stage comes {lag} epoch(s) after it")
  stop = stop or threading.Event()
  with _signals_set(stop):
    result = _loop(source, model, output_dir, record, config, live, log, stop, state, fresh,
                   live_context)
  if live_context is not None:
    result["context"] = fresh["context"]
  return {**result, "continued": state is not None}


def _loop(source, model, output_dir, record, config, live, log, stop, state, fresh,
          live_context) -> dict:
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
        state, night, stager = _open_night(source, model, output_dir, record, config, live, log,
                                           state, fresh, live_context, times[0])
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
  return _summary(night, ended, this_run, live_context, log, output_dir, record)


def _open_night(source, model, output_dir, record, config, live, log, state, fresh, live_context,
                first_time: float):
  """(state, night, stager) once the first samples arrived: a new night, or the one in the
  state file continued (checked to be the same night and clock)."""
  if state is None:
    state = {**fresh, "clock_origin": float(first_time), "epochs": []}
    log(f"{source.description}: {source.channel_label} at {source.rate:g} Hz -> "
        f"{output_dir}/{record}.* (a new night, from "
        f"{datetime.datetime.fromtimestamp(first_time):%Y-%m-%d %H:%M:%S})")
  else:
    _check_same_night(state, first_time, live, output_dir, record)
    log(f"{source.description}: {source.channel_label} at {source.rate:g} Hz -> "
        f"{output_dir}/{record}.* (continuing the night from epoch "
        f"{len(state['epochs'])}; the time in between is unscored)")
  night = _Night(output_dir, record, state, live.plot_every, log, live_context)
  stager = stream.StreamingStager(model,
                                  rate=source.rate,
                                  unit=source.unit,
                                  config=config,
                                  gap_seconds=live.gap_seconds,
                                  first_epoch=night.next_epoch,
                                  clock_origin=state["clock_origin"])
  return state, night, stager


def _summary(night, ended, this_run, live_context, log, output_dir, record) -> dict:
  """Logs how the night ended and returns `run`'s result."""
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
  decided = {"decided": sum("s" in e for e in epochs)} if live_context is not None else {}
  return {
      **decided,
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
