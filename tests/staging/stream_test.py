"""Tests for eegmobile.staging.stream: live staging equals offline staging of the same samples,
whatever the pieces; gaps, NaN bursts and clock corrections are visible, never shifted."""

import math

import numpy as np
import pytest
import scipy.signal

from eegmobile import edf_reader
from eegmobile.staging import runtimes
from eegmobile.staging import stage_lib
from eegmobile.staging import stream
from tests import edf_files
from tests.staging.stage_lib_test import CONFIG


@pytest.mark.parametrize("rate", [100, 128, 200, 250, 256, 512])
@pytest.mark.parametrize("piece", [1, 37, 3000])
def test_the_stream_resampler_gives_resample_polys_samples_bit_for_bit(rate, piece):
  x = np.cumsum(np.random.default_rng(rate).normal(size=9000 if piece > 1 else 1500))
  expected = edf_reader.resample(x, rate, 100.0).astype(np.float64)
  resampler = stream.StreamResampler(rate, 100.0)
  got = np.concatenate([resampler.push(x[i:i + piece]) for i in range(0, len(x), piece)] +
                       [resampler.finish()])
  np.testing.assert_array_equal(got.astype(np.float32), expected)
  assert resampler.emitted == math.floor(len(x) * 100 / rate + 1e-9)


def test_the_stream_resampler_emits_a_sample_once_its_filter_has_its_inputs():
  resampler = stream.StreamResampler(256, 100)
  first = resampler.push(np.ones(256))  # one second in
  assert 0 < len(first) < 100  # the last ~lookahead of the second waits for what follows
  assert 100 - len(first) <= resampler.lookahead * 100 / 256 + 1


@pytest.fixture(scope="module", name="model")
def _model(export_dir):  # pylint: disable=redefined-outer-name
  return runtimes.load(f"{export_dir}/images_float16.tflite", runtime="litert", threads=1)


def _offline(path, model, channel="EEG Fpz-Cz"):
  config = stage_lib.StageConfig(channel=channel, batch_size=4)
  spec = stage_lib.check_preprocessing(model, config)
  night = stage_lib.read_night(str(path), config, fs=spec.fs)
  return stage_lib.score_night(night, model, spec, config)


def _live(model, samples, piece, rate, timestamps=None, **kwargs):
  stager = stream.StreamingStager(model, rate=rate, config=CONFIG, **kwargs)
  epochs = []
  for i in range(0, len(samples), piece):
    times = None if timestamps is None else timestamps[i:i + piece]
    epochs += stager.push(samples[i:i + piece], times)
  return epochs + stager.finish()


def _signal(rate, seconds, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  return np.clip(
      np.cumsum(rng.normal(size=len(t))) * 40 / np.sqrt(rate) + 30 * np.sin(2 * np.pi * 2 * t) +
      10 * rng.normal(size=len(t)), -190, 190)


@pytest.mark.parametrize("rate", [100, 256])
@pytest.mark.parametrize("piece", [1, 37, 3000])
def test_live_stages_equal_offline_stages_whatever_the_pieces(model, tmp_path, rate, piece):
  seconds = 95 if piece == 1 else 125  # the trailing partial epoch is left out, as offline
  path = tmp_path / "night.edf"
  edf_files.write_psg(path, seconds=seconds, fs=rate, signal=_signal(rate, seconds))
  expected = _offline(path, model)
  # What a device streaming the recording sends: its physical samples, float64.
  samples = edf_reader.read_channel(str(path), target_fs=rate, dtype=np.float64).signal
  epochs = _live(model, samples, piece, rate)
  assert [e.index for e in epochs] == list(range(len(expected)))
  assert all(e.scored for e in epochs)
  np.testing.assert_array_equal(np.stack([e.probabilities for e in epochs]), expected)
  assert [e.stage for e in epochs] == np.argmax(expected, axis=1).tolist()
  assert [e.onset for e in epochs] == [30.0 * i for i in range(len(expected))]


def test_a_derived_pair_streamed_as_two_columns_equals_offline(model, tmp_path):
  rate, seconds = 250, 95
  path = tmp_path / "night.edf"
  edf_files.write_psg(path,
                      seconds=seconds,
                      fs=rate,
                      channels=("EEG Fpz", "EEG Cz"),
                      signal=_signal(rate, seconds))
  expected = _offline(path, model, channel="Fpz-Cz")
  pair = np.stack([
      edf_reader.read_channel(str(path), label, target_fs=rate, dtype=np.float64).signal
      for label in ("EEG Fpz", "EEG Cz")
  ],
                  axis=1)
  epochs = _live(model, pair, 500, rate)
  np.testing.assert_array_equal(np.stack([e.probabilities for e in epochs]), expected)


def test_units_are_scaled_to_microvolts(model):
  samples = _signal(100, 65)
  in_volts = _live(model, samples * 1e-6, 700, 100, unit="V")
  in_microvolts = _live(model, samples, 700, 100, unit="uV")
  np.testing.assert_allclose(np.stack([e.probabilities for e in in_volts]),
                             np.stack([e.probabilities for e in in_microvolts]),
                             atol=1e-3)
  with pytest.raises(Exception, match="expected uV"):
    stream.StreamingStager(model, rate=100, unit="degC", config=CONFIG)
  with pytest.raises(ValueError, match="at least 50 Hz"):
    stream.StreamingStager(model, rate=32, config=CONFIG)


def test_a_gap_leaves_its_epochs_unscored_on_the_recordings_clock(model):
  rate = 256
  samples = _signal(rate, 240)
  times = np.arange(len(samples)) / rate + 1000.0
  keep = (times < 1000 + 70) | (times >= 1000 + 130)  # 60 s missing: samples 70..130 s
  epochs = _live(model, samples[keep], 1000, rate, timestamps=times[keep])
  assert [e.index for e in epochs] == list(range(8))  # not shifted: 240 s, 8 epochs
  unscored = [e.index for e in epochs if not e.scored]
  assert unscored == [2, 3, 4] and {e.reason for e in epochs if not e.scored} == {"gap"}
  # Epochs away from the gap are staged exactly as the samples alone would be.
  whole = _live(model, samples, 1000, rate, timestamps=times)
  for e in (0, 5, 6, 7):
    np.testing.assert_array_equal(epochs[e].probabilities, whole[e].probabilities)


def test_a_nan_burst_leaves_the_epochs_it_reaches_unscored(model):
  samples = _signal(100, 150)
  samples[4000:4050] = np.nan  # half a second inside epoch 1
  epochs = _live(model, samples, 250, 100)
  assert [(e.index, e.reason) for e in epochs if not e.scored] == [(1, "NaN samples")]
  assert len(epochs) == 5 and sum(e.scored for e in epochs) == 4


def test_samples_ahead_of_the_clock_are_a_visible_correction(model):
  rate = 100
  samples = _signal(rate, 150)
  times = np.arange(len(samples)) / rate
  times[9000:] -= 2.0  # the clock steps back 2 s in epoch 3: 200 samples too many
  epochs = _live(model, samples, 500, rate, timestamps=times)
  assert [(e.index, e.reason) for e in epochs if not e.scored] == [(3, "clock correction")]
  assert [e.index for e in epochs] == [0, 1, 2, 3]  # the extra 2 s never shift the grid


def test_memory_stays_bounded_however_long_the_night(model):
  stager = stream.StreamingStager(model, rate=256, config=CONFIG)
  chunk = _signal(256, 30)
  for _ in range(20):
    stager.push(chunk)
  resampler = stager._resamplers[0]  # pylint: disable=protected-access
  assert len(resampler._buffer) < 2 * resampler.lookahead + 2 * resampler.down + 256 * 30  # pylint: disable=protected-access
  assert stager.next_epoch == 19


def test_the_resampler_filter_is_resample_polys():
  """A guard: if scipy changes resample_poly's filter, the streaming twin must follow."""
  x = np.zeros(2000)
  x[1000] = 1.0
  expected = scipy.signal.resample_poly(x, 2, 5)[:800]
  r = stream.StreamResampler(250, 100)
  got = np.concatenate([r.push(x), r.finish()])
  np.testing.assert_array_equal(got, expected)
