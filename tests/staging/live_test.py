"""Tests for eegmobile.staging.live: a live night's outputs equal offline staging's (with a
context stage, offline staging's at the same causal lag); gaps, NaN bursts, stalls, lost
sources, drift and restarts are visible on screen and on disk.

The sources here are in-process fakes that hand out a recording's samples as fast as they
are read; the real LSL and BrainFlow sources are tested in live_command_test.py.
"""

import dataclasses
import json
import os
import shutil
import threading
import time

import numpy as np
import pytest

from eegmobile import context
from eegmobile import edf_reader
from eegmobile import export_format
from eegmobile.staging import context_stage
from eegmobile.staging import live
from eegmobile.staging import outputs
from eegmobile.staging import runtimes
from eegmobile.staging import sources
from eegmobile.staging import stage_lib
from tests import edf_files
from tests.context_test import _causal_run
from tests.staging.stage_lib_test import CONFIG
from tests.staging.stream_test import _signal
from trainers import context_lib
from trainers import export_lib

ORIGIN = 1.8e9  # a Unix time: 2027-01-15


class FakeSource(sources.Source):
  """Hands out `samples` in pieces with their timestamps; then nothing (a stall).

  lose_at: piece index at which `read` raises SourceLost (once); reopen fails
  `failing_reopens` times first.
  """

  def __init__(self,
               samples,
               rate,
               times=None,
               *,
               labels=("EEG Fpz-Cz",),
               channel="Fpz-Cz",
               piece=500,
               lose_at=None,
               failing_reopens=0):
    self.description = "fake source"
    self.rate = float(rate)
    self.unit = "uV"
    self.labels = tuple(labels)
    self.notes = []
    self.columns = stage_lib.channel_columns(self.labels, channel, self.description, "it")
    samples = np.asarray(samples, np.float64)
    self._samples = samples[:, None] if samples.ndim == 1 else samples
    self._times = ORIGIN + np.arange(len(samples)) / rate if times is None else times
    self._piece, self._at, self._reads = piece, 0, 0
    self._lose_at, self._failing = lose_at, failing_reopens
    self.reopens, self.closed = 0, False

  def read(self, timeout):
    self._reads += 1
    if self._lose_at is not None and self._reads == self._lose_at:
      self._lose_at = None
      raise sources.SourceLost("fake source: connection reset")
    if self._at >= len(self._samples):
      time.sleep(min(timeout, 0.05))
      return np.zeros((0, len(self.columns))), np.zeros(0)
    part = slice(self._at, self._at + self._piece)
    self._at += self._piece
    return self._samples[part][:, self.columns], self._times[part]

  def reopen(self):
    self.reopens += 1
    if self._failing:
      self._failing -= 1
      raise sources.SourceLost("fake source: still gone")

  def close(self):
    self.closed = True


@pytest.fixture(scope="module", name="model")
def _model(export_dir):  # pylint: disable=redefined-outer-name
  return runtimes.load(f"{export_dir}/images_float16.tflite", runtime="litert", threads=1)


FAST = live.LiveConfig(stall_seconds=0.3, plot_every=3, reconnect_tries=3)


def _run(source, model, out, record="night", live_config=FAST, **kwargs):
  lines = []
  result = live.run(source,
                    model,
                    str(out),
                    record=record,
                    config=CONFIG,
                    live=live_config,
                    log=lines.append,
                    **kwargs)
  return result, lines


def _state(out, record="night"):
  return json.loads((out / f"{record}.stream.json").read_text())


def _stats(out, record="night"):
  return json.loads((out / f"{record}.sleep_stats.json").read_text())


def test_a_live_nights_outputs_equal_offline_stagings(model, tmp_path):
  rate, seconds = 256, 125
  path = tmp_path / "night.edf"
  edf_files.write_psg(path, seconds=seconds, fs=rate, signal=_signal(rate, seconds))
  offline = stage_lib.stage_night(str(path), model, str(tmp_path / "offline"),
                                  stage_lib.StageConfig(batch_size=4))
  samples = edf_reader.read_channel(str(path), target_fs=rate, dtype=np.float64).signal
  start = edf_reader.start_datetime(edf_reader.read_header(str(path)))
  times = start.timestamp() + np.arange(len(samples)) / rate  # the EDF's start, local time
  out = tmp_path / "live"
  source = FakeSource(samples, rate, times, piece=37)
  result, lines = _run(source, model, out, record="night")
  assert source.closed and result["ended"].startswith("no samples")
  assert result["night_epochs"] == offline["epochs"] == 4 and result["scored"] == 4
  assert (out / "night.stages.tsv").read_bytes() == (tmp_path / "offline" /
                                                     "night.stages.tsv").read_bytes()
  assert (out / "night.hypnogram.edf").read_bytes() == (tmp_path / "offline" /
                                                        "night.hypnogram.edf").read_bytes()
  live_stats = _stats(out)
  offline_stats = json.loads((tmp_path / "offline" / "night.sleep_stats.json").read_text())
  for key in set(offline_stats) - {"trailing_partial_epoch"}:
    assert live_stats[key] == offline_stats[key], key
  assert live_stats["live"]["finished"] and live_stats["live"]["unscored_epochs"] == []
  assert "montage" not in offline_stats and live_stats["montage"] is None
  assert (out / "night.hypnogram.png").stat().st_size > 10_000
  epoch_lines = [line for line in lines if line.startswith("epoch")]
  assert len(epoch_lines) == 4 and all(" ms)" in line for line in epoch_lines)
  assert len(result["latencies"]) == 4


def test_a_gap_is_unscored_on_the_nights_clock_on_screen_and_on_disk(model, tmp_path):
  rate = 100
  samples = _signal(rate, 240)
  times = ORIGIN + np.arange(len(samples)) / rate
  keep = (times < ORIGIN + 70) | (times >= ORIGIN + 130)
  result, lines = _run(FakeSource(samples[keep], rate, times[keep]), model, tmp_path)
  assert result["night_epochs"] == 8 and result["unscored"] == {"gap": 3}
  assert [line.split()[1] for line in lines if "unscored (gap)" in line] == ["2", "3", "4"]
  tsv = (tmp_path / "night.stages.tsv").read_text().splitlines()[1:]
  assert [float(row.split("\t")[0]) for row in tsv] == [0, 30, 150, 180, 210]
  stats = _stats(tmp_path)
  assert [e["onset"] for e in stats["live"]["unscored_epochs"]] == [60, 90, 120]
  labelled = edf_reader.read_annotations(str(tmp_path / "night.hypnogram.edf"))
  assert any(
      a.description == "Sleep stage ?" and a.onset == 60 and a.duration == 90 for a in labelled)


def test_a_nan_burst_is_named(model, tmp_path):
  samples = _signal(100, 125)
  samples[4000:4100] = np.nan
  result, lines = _run(FakeSource(samples, 100), model, tmp_path)
  assert result["unscored"] == {"NaN samples": 1}
  assert any(line.split()[1] == "1" and "unscored (NaN samples)" in line for line in lines)
  assert _stats(tmp_path)["live"]["unscored_epochs"] == [{"onset": 30.0, "reason": "NaN samples"}]


def test_a_stall_ends_the_night_or_waits_as_asked(model, tmp_path):
  samples = _signal(100, 65)
  result, _ = _run(FakeSource(samples, 100), model, tmp_path / "end")
  assert result["ended"].startswith("no samples for") and "--on_stall end" in result["ended"]
  assert _state(tmp_path / "end")["finished"]
  stop = threading.Event()
  threading.Timer(1.5, stop.set).start()
  waiting = live.LiveConfig(stall_seconds=0.3, on_stall="wait")
  result, lines = _run(FakeSource(samples, 100),
                       model,
                       tmp_path / "wait",
                       live_config=waiting,
                       stop=stop)
  assert result["ended"].startswith("stopped")
  assert sum("waiting (--on_stall wait)" in line for line in lines) >= 2
  assert result["night_epochs"] == 2 and _state(tmp_path / "wait")["finished"]


def test_a_lost_source_is_reopened_and_logged(model, tmp_path):
  source = FakeSource(_signal(100, 95), 100, lose_at=3, failing_reopens=1)
  result, lines = _run(source, model, tmp_path)
  assert source.reopens == 2
  assert any(line.startswith("lost: fake source: connection reset") for line in lines)
  assert any(line.startswith("reconnect 1/3 failed: fake source: still gone") for line in lines)
  assert any(line.startswith("reconnect 2/3: fake source is back") for line in lines)
  assert result["night_epochs"] == 3 and result["scored"] == 3


def test_a_source_that_stays_lost_ends_the_night_with_its_outputs_finished(model, tmp_path):
  source = FakeSource(_signal(100, 95), 100, piece=3000, lose_at=3, failing_reopens=99)
  config = live.LiveConfig(stall_seconds=5, reconnect_tries=2)
  result, lines = _run(source, model, tmp_path, live_config=config)
  assert result["ended"] == "fake source lost (2 reconnects failed)"
  assert sum(line.startswith("reconnect") and "failed" in line for line in lines) == 2
  assert result["night_epochs"] == 2 and _state(tmp_path)["finished"]
  assert (tmp_path / "night.hypnogram.png").exists()


def test_a_fast_device_clock_shows_as_clock_corrections_and_its_rate_is_logged(model, tmp_path):
  rate = 100
  samples = _signal(rate, 600)
  times = ORIGIN + np.arange(len(samples)) / (rate * 1.004)  # 0.4% more samples than nominal
  result, lines = _run(FakeSource(samples, rate, times), model, tmp_path)
  assert result["unscored"].get("clock correction", 0) >= 2
  assert set(result["unscored"]) == {"clock correction"}
  (rate_line,) = [line for line in lines if line.startswith("rate:")]
  assert "100.400 Hz measured" in rate_line and "+4000 ppm" in rate_line
  # The epochs stay on the night's clock: as many as the timestamps span, not the samples.
  assert result["night_epochs"] == int((times[-1] - ORIGIN) // 30)


def test_a_headband_pair_stages_and_says_the_montage_is_not_established(model, tmp_path):
  rng = np.random.default_rng(3)
  signal = _signal(256, 65)
  columns = np.stack([
      rng.normal(0, 5, len(signal)), signal,
      rng.normal(0, 5, len(signal)),
      rng.normal(0, 5, len(signal))
  ],
                     axis=1)
  source = FakeSource(columns, 256, labels=("TP9", "AF7", "AF8", "TP10"), channel="AF7-TP9")
  assert source.columns == [1, 0] and source.channel_label == "AF7 - TP9"
  result, lines = _run(source, model, tmp_path)
  assert result["scored"] == 2
  note = "the model was trained on EEG Fpz-Cz (Sleep-EDF); its accuracy on AF7 - TP9 is not"
  assert any(line.startswith(f"note: {note}") for line in lines)
  assert _stats(tmp_path)["montage"]["note"].startswith(note)


def test_a_night_continues_where_it_stopped_and_keeps_its_epochs(model, tmp_path):
  samples = _signal(100, 300)
  times = ORIGIN + np.arange(len(samples)) / 100
  first, _ = _run(FakeSource(samples[:9000], 100, times[:9000]), model, tmp_path)
  assert first["night_epochs"] == 3 and not first["continued"]
  before = _state(tmp_path)["epochs"]
  # The recorder comes back 45 s later: epoch 4 is partly missed, epochs 5.. are whole.
  later = times >= ORIGIN + 135
  second, lines = _run(FakeSource(samples[later], 100, times[later]), model, tmp_path)
  assert second["continued"]
  assert any("continuing the night from epoch 3" in line for line in lines)
  after = _state(tmp_path)["epochs"]
  assert after[:3] == before
  assert [e["reason"] for e in after[3:5]] == ["gap", "gap"]
  assert all(e["p"] is not None for e in after[5:]) and len(after) == 10
  tsv = (tmp_path / "night.stages.tsv").read_text().splitlines()[1:]
  assert [float(row.split("\t")[0]) for row in tsv
         ] == [0, 30, 60] + [30.0 * i for i in range(5, 10)]


def test_a_night_is_not_continued_with_another_setup_or_a_day_later(model, tmp_path, export_dir):  # pylint: disable=redefined-outer-name
  samples = _signal(100, 65)
  _run(FakeSource(samples, 100), model, tmp_path)
  other = FakeSource(samples, 100, labels=("EEG Pz-Oz",), channel="Pz-Oz")
  with pytest.raises(live.StateError, match=r"another setup: channel 'EEG Fpz-Cz' \(state\)"):
    _run(other, model, tmp_path)
  assert other.closed
  other_model = runtimes.load(f"{export_dir}/images_int8.tflite", runtime="litert")
  with pytest.raises(live.StateError, match="model"):
    _run(FakeSource(samples, 100), other_model, tmp_path)
  next_day = FakeSource(samples, 100, ORIGIN + 86400 + np.arange(len(samples)) / 100)
  with pytest.raises(live.StateError, match="another night"):
    _run(next_day, model, tmp_path)
  (tmp_path / "broken.stream.json").write_text("{not json")
  with pytest.raises(live.StateError, match="broken.stream.json: not a live night's state"):
    _run(FakeSource(samples, 100), model, tmp_path, record="broken")


def test_duration_stops_the_run_and_the_outputs_are_finished(model, tmp_path):
  result, _ = _run(FakeSource(_signal(100, 200), 100),
                   model,
                   tmp_path,
                   live_config=live.LiveConfig(duration=95, stall_seconds=5))
  assert result["ended"] == "--duration 95 s staged" and result["night_epochs"] == 3
  assert _state(tmp_path)["finished"]


def test_live_config_refuses_what_it_cannot_do():
  with pytest.raises(ValueError, match="on_stall must be end or wait"):
    live.LiveConfig(on_stall="retry")
  with pytest.raises(ValueError, match="stall_seconds must be positive"):
    live.LiveConfig(stall_seconds=0)


# ------------------------------------------------------------------ with a context stage

LAG = 2


@pytest.fixture(scope="module")
def smoother_export(export_dir, tmp_path_factory):  # pylint: disable=redefined-outer-name
  """The test export with a context stage (a smoother with sticky transitions, lag LAG)
  written into it as trainers.export writes one (`export_lib.write_context`)."""
  directory = tmp_path_factory.mktemp("context")
  out = str(directory / "export")
  shutil.copytree(export_dir, out)
  transitions = np.full((5, 5), 0.02) + np.eye(5) * 0.9
  smoother = context.Smoother(transitions / transitions.sum(axis=1, keepdims=True),
                              np.array([0.2, 0.1, 0.4, 0.1, 0.2]))
  fitted = context_lib.save(str(directory / "fitted"),
                            context_lib.ContextConfig(stage="smoother", lag=LAG), {
                                "smoother": smoother,
                                "training_subjects": ["SC00"],
                                "seconds": {}
                            })
  assert fitted["stage"] == "smoother"
  record_path = os.path.join(out, export_format.EXPORT_FILE)
  with open(record_path) as f:
    record = json.load(f)
  record[export_format.CONTEXT_KEY] = export_lib.write_context(str(directory / "fitted"), out)
  with open(record_path, "w") as f:
    json.dump(record, f)
  return out


def _context_model(smoother_export):  # pylint: disable=redefined-outer-name
  return runtimes.load(f"{smoother_export}/images_float16.tflite", runtime="litert", threads=1)


def _run_with_tsvs(source, model, out, stage, record="night"):
  """A live night; also the TSV's rows as they were when each epoch's line was printed."""
  lines, snapshots = [], []
  tsv = out / f"{record}.stages.tsv"

  def log(line):
    lines.append(line)
    if line.startswith("epoch"):
      snapshots.append(tsv.read_text().splitlines()[1:] if tsv.exists() else [])

  result = live.run(source,
                    model,
                    str(out),
                    record=record,
                    config=CONFIG,
                    live=FAST,
                    log=log,
                    context=stage)
  return result, lines, snapshots


def test_a_live_night_with_a_smoother_stages_as_offline_staging_at_the_same_lag(
    smoother_export, tmp_path):  # pylint: disable=redefined-outer-name
  model = _context_model(smoother_export)
  rate, seconds = 256, 255  # the last epoch ends 15 s before the samples: pushed, not finished
  path = tmp_path / "night.edf"
  edf_files.write_psg(path, seconds=seconds, fs=rate, signal=_signal(rate, seconds, seed=2))
  stage = context_stage.load(smoother_export, "smoother", LAG)  # --context smoother --context_lag
  offline = stage_lib.stage_night(str(path),
                                  model,
                                  str(tmp_path / "offline"),
                                  stage_lib.StageConfig(batch_size=4),
                                  context=stage)
  samples = edf_reader.read_channel(str(path), target_fs=rate, dtype=np.float64).signal
  start = edf_reader.start_datetime(edf_reader.read_header(str(path)))
  times = start.timestamp() + np.arange(len(samples)) / rate
  out = tmp_path / "live"
  # The export's own stage and lag (--context auto, no --context_lag): the smoother at LAG.
  result, lines, snapshots = _run_with_tsvs(FakeSource(samples, rate, times, piece=37), model, out,
                                            context_stage.live_stage(smoother_export))
  assert result["night_epochs"] == offline["epochs"] == 8 and result["decided"] == 8
  assert result["context"] == offline["context"] == stage.describe()
  for name in ("stages.tsv", "hypnogram.edf"):
    assert (out / f"night.{name}").read_bytes() == (tmp_path / "offline" /
                                                    f"night.{name}").read_bytes(), name
  rows = (out / "night.stages.tsv").read_text().splitlines()
  assert rows[0].split("\t") == list(outputs.TSV_COLUMNS + outputs.PER_EPOCH_COLUMNS)
  live_stats = _stats(out)
  offline_stats = json.loads((tmp_path / "offline" / "night.sleep_stats.json").read_text())
  assert offline_stats["context"]["lag"] == LAG
  for key in set(offline_stats) - {"trailing_partial_epoch"}:
    assert live_stats[key] == offline_stats[key], key
  assert live_stats["live"]["awaiting_context"] == 0
  # Epoch t's row is written when epoch t + LAG has come, and never changes after.
  assert [len(s) for s in snapshots] == [max(0, t + 1 - LAG) for t in range(8)]
  assert all(s == rows[1:len(s) + 1] for s in snapshots)
  assert sum(line.startswith("context ") for line in lines) == 8
  assert any(line.startswith("context: smoother, live (causal, lag 2)") for line in lines)


def test_a_context_stage_never_reads_epochs_after_its_lag(smoother_export, tmp_path):  # pylint: disable=redefined-outer-name
  model = _context_model(smoother_export)
  night = _signal(100, 305)  # 10 epochs at the model's rate: no resampling across epochs
  changed = night.copy()
  changed[6 * 3000:] = _signal(100, 305, seed=7)[6 * 3000:]  # epochs 6.. differ
  tsvs = []
  for name, samples in (("night", night), ("changed", changed)):
    stage = context_stage.live_stage(smoother_export, "smoother", LAG)
    _run_with_tsvs(FakeSource(samples, 100), model, tmp_path / name, stage)
    tsvs.append((tmp_path / name / "night.stages.tsv").read_text().splitlines())
  # Epochs up to 5 - LAG read epochs up to 5 only: the same rows (header, then epoch t).
  assert tsvs[0][:1 + 6 - LAG] == tsvs[1][:1 + 6 - LAG]
  assert tsvs[0][1 + 6:] != tsvs[1][1 + 6:]


def test_a_night_with_a_context_stage_continues_with_it(smoother_export, tmp_path):  # pylint: disable=redefined-outer-name
  model = _context_model(smoother_export)
  samples = _signal(100, 300)
  times = ORIGIN + np.arange(len(samples)) / 100

  def stage():
    return context_stage.live_stage(smoother_export, "smoother", LAG)

  first, _, _ = _run_with_tsvs(FakeSource(samples[:15000], 100, times[:15000]), model, tmp_path,
                               stage())
  assert first["night_epochs"] == 5 and first["decided"] == 5  # the last LAG at the end
  before = _state(tmp_path)["epochs"]
  with pytest.raises(live.StateError, match="context"):  # not without it, nor another lag
    _run(FakeSource(samples, 100, times), model, tmp_path)
  with pytest.raises(live.StateError, match="context"):
    live.run(FakeSource(samples, 100, times),
             model,
             str(tmp_path),
             record="night",
             config=CONFIG,
             live=FAST,
             log=lambda _: None,
             context=context_stage.live_stage(smoother_export, "smoother", LAG + 1))
  later = times >= ORIGIN + 195  # epochs 5 and 6 missed or partly missed: a gap
  second, _, _ = _run_with_tsvs(FakeSource(samples[later], 100, times[later]), model, tmp_path,
                                stage())
  assert second["continued"] and second["night_epochs"] == 10 and second["decided"] == 8
  after = _state(tmp_path)["epochs"]
  assert after[:5] == before
  assert [e["reason"] for e in after[5:7]] == ["gap", "gap"] and "s" not in after[5]
  # The smoother went on from the first run's epochs, through the gap (2 steps more).
  scored = [i for i, e in enumerate(after) if e["p"] is not None]
  expected = context.as_probabilities(
      context_stage.live_smoother(smoother_export, LAG).smoother.causal_posteriors(
          np.array([after[i]["p"] for i in scored], np.float32), LAG, scored))
  np.testing.assert_array_equal(np.array([after[i]["s"] for i in scored[5:]], np.float32),
                                expected[5:])
  tsv = (tmp_path / "night.stages.tsv").read_text().splitlines()
  assert tsv[0].split("\t") == list(outputs.TSV_COLUMNS + outputs.PER_EPOCH_COLUMNS)
  assert [float(row.split("\t")[0]) for row in tsv[1:]] == [30.0 * i for i in scored]


def _with_features(model):
  """The model with stand-in per-epoch features (a function of its probabilities), given
  as a model loaded with features gives them (probabilities, then features)."""

  def both(batch):
    p = model.predict(batch)
    return np.concatenate([p, np.log(p + 1e-3), p[:, ::-1]], axis=1)

  return dataclasses.replace(model, predict_features=both, feature_size=10)


def test_a_live_night_with_a_causal_head_stages_as_offline_staging_and_continues(
    smoother_export, tmp_path):  # pylint: disable=redefined-outer-name
  window, lag = 5, 1
  model = _with_features(_context_model(smoother_export))
  run = _causal_run(window)  # a stand-in head: what matters is which epochs it reads
  path = tmp_path / "night.edf"
  edf_files.write_psg(path, seconds=305, fs=100, signal=_signal(100, 305, seed=3))
  whole = context.ContextStage(
      "head",
      lag=lag,
      head=lambda f: run(np.concatenate([f, np.zeros((lag, f.shape[1]), f.dtype)]))[lag:],
      head_lag=lag)  # as context_stage.load's causal head
  stage_lib.stage_night(str(path),
                        model,
                        str(tmp_path / "offline"),
                        stage_lib.StageConfig(batch_size=4),
                        context=whole)
  samples = edf_reader.read_channel(str(path), dtype=np.float64).signal
  out = tmp_path / "live"
  result, _, snapshots = _run_with_tsvs(FakeSource(samples, 100), model, out,
                                        context.CausalHead(run, window, lag))
  assert result["context"] == whole.describe() and result["decided"] == 10
  assert (out / "night.stages.tsv").read_bytes() == (tmp_path / "offline" /
                                                     "night.stages.tsv").read_bytes()
  assert [len(s) for s in snapshots] == [max(0, t + 1 - lag) for t in range(10)]
  # Stopped after 5 epochs and continued after a gap (epochs 5 and 6): the head goes on
  # from the first run's last epochs' features (kept in the state), zeros for the gap.
  times = ORIGIN + np.arange(len(samples)) / 100
  again = tmp_path / "again"
  _run_with_tsvs(FakeSource(samples[:15000], 100, times[:15000]), model, again,
                 context.CausalHead(run, window, lag))
  first = _state(again)["context_inputs"]
  assert len(first) == 5 and all(f is not None for f in first)
  later = times >= ORIGIN + 195
  _run_with_tsvs(FakeSource(samples[later], 100, times[later]), model, again,
                 context.CausalHead(run, window, lag))
  state = _state(again)
  inputs = state["context_inputs"]  # epochs 4..9
  assert len(inputs) == window + lag and inputs[0] == first[-1] and inputs[1:3] == [None, None]
  grid = np.array([np.zeros(10) if f is None else f for f in inputs], np.float32)
  # Epoch 7's output reads epochs 4..8, epoch 9's epochs 6..9 and a zero row: all in grid.
  expected = context.as_probabilities(whole.head(grid))[3:]
  np.testing.assert_array_equal(np.array([e["s"] for e in state["epochs"][7:]], np.float32),
                                expected)
  assert all("s" not in e for e in state["epochs"][5:7])
