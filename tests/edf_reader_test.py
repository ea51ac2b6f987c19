"""Tests for eegmobile.edf_reader on files written at test time and on the real files."""

import glob
import os

import numpy as np
import pytest

from eegmobile import edf_reader
from eegmobile import errors
from tests import edf_files

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")
EXCERPT = os.path.join(SHARED, "excerpt", "SC4001E0-PSG.first300s.edf")


def test_reads_the_channel_in_microvolts(tmp_path):
  path = tmp_path / "SC4001E0-PSG.edf"
  written = edf_files.write_psg(path, seconds=60)
  channel = edf_reader.read_channel(str(path))
  assert channel.signal.dtype == np.float32 and channel.signal.shape == (6000,)
  assert (channel.fs, channel.original_fs, channel.duration_s) == (100.0, 100.0, 60.0)
  step = 400 / 65535  # one digital step of the written range
  np.testing.assert_allclose(channel.signal, written, atol=step)


@pytest.mark.parametrize("alias", ["EEG Fpz-Cz", "Fpz-Cz", "eeg fpz-cz", "EEG FPZ-CZ"])
def test_channel_aliases(tmp_path, alias):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  assert edf_reader.read_channel(str(path), alias).label == "EEG Fpz-Cz"


def test_missing_channel_lists_what_the_file_has(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10, channels=("EEG Pz-Oz", "EOG horizontal"))
  with pytest.raises(errors.ChannelError,
                     match=r"a.edf: no channel 'EEG Fpz-Cz'; the file "
                     r"has 'EEG Pz-Oz', 'EOG horizontal'"):
    edf_reader.read_channel(str(path))


def test_volts_are_converted_to_microvolts(tmp_path):
  path = tmp_path / "volts.edf"
  signal = np.random.default_rng(0).normal(0, 20e-6, 1000)
  edf_files.write_psg(path, seconds=10, unit="V", signal=signal, physical_range=2e-4)
  channel = edf_reader.read_channel(str(path))
  np.testing.assert_allclose(channel.signal, signal * 1e6, atol=0.01)


def test_unknown_unit_is_refused(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10, unit="furlong")
  with pytest.raises(errors.ChannelError, match="unit 'furlong'"):
    edf_reader.read_channel(str(path))


def test_flat_channel_is_refused(tmp_path):
  path = tmp_path / "flat.edf"
  edf_files.write_psg(path, seconds=10, signal=np.full(1000, 3.0))
  with pytest.raises(errors.ChannelError, match="flat"):
    edf_reader.read_channel(str(path))


def test_truncated_file_says_how_many_records_are_missing(tmp_path):
  path = tmp_path / "cut.edf"
  edf_files.write_psg(path, seconds=60)
  os.truncate(path, os.path.getsize(path) - 1000)
  with pytest.raises(errors.EdfFormatError,
                     match=r"cut.edf: truncated: the header promises "
                     r"60 data records of 400 bytes, the file holds 57"):
    edf_reader.read_channel(str(path))


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:100], "only 100 bytes"),
    (lambda b: b[:252] + b"abcd" + b[256:], "'ns' is not a number"),
    (lambda b: b[:184] + b"999     " + b[192:], "header size field says 999"),
])
def test_corrupt_headers_are_clear_errors(tmp_path, damage, message):
  path = tmp_path / "bad.edf"
  edf_files.write_psg(path, seconds=10)
  path.write_bytes(damage(path.read_bytes()))
  with pytest.raises(errors.EdfFormatError, match=message):
    edf_reader.read_channel(str(path))


def test_nan_samples_are_refused(monkeypatch, tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  real = edf_reader._physical
  monkeypatch.setattr(edf_reader, "_physical",
                      lambda h, i: np.where(np.arange(1000) == 5, np.nan, real(h, i)))
  with pytest.raises(errors.ChannelError, match="NaN"):
    edf_reader.read_channel(str(path))


@pytest.mark.parametrize("rate", [200, 256])
def test_other_rates_are_resampled_with_tensorflow_io(tmp_path, rate):
  path = tmp_path / "fast.edf"
  t = np.arange(20 * rate) / rate
  edf_files.write_psg(path, seconds=20, fs=rate, signal=50 * np.sin(2 * np.pi * 10 * t))
  import tensorflow_io  # the compiled resampling op must load beside this TensorFlow
  channel = edf_reader.read_channel(str(path))
  assert channel.original_fs == rate and channel.fs == 100.0
  assert len(channel.signal) == 2000
  middle = channel.signal[200:1800]
  spectrum = np.abs(np.fft.rfft(middle))
  assert np.fft.rfftfreq(len(middle), 1 / 100)[np.argmax(spectrum)] == pytest.approx(10, abs=0.1)
  assert np.sqrt(2) * middle.std() == pytest.approx(50, rel=0.05)
  del tensorflow_io


def test_tensorflow_io_resample_op_really_runs():
  import tensorflow as tf
  import tensorflow_io as tfio
  out = tfio.audio.resample(tf.ones([400, 1]), rate_in=200, rate_out=100)
  assert out.shape == (200, 1)


def test_own_parser_is_used_when_pyedflib_refuses(monkeypatch, tmp_path):
  path = tmp_path / "a.edf"
  written = edf_files.write_psg(path, seconds=10)
  import pyedflib

  def refuse(*args, **kwargs):
    raise OSError("the file is not EDF(+) or BDF(+) compliant")

  monkeypatch.setattr(pyedflib, "EdfReader", refuse)
  channel = edf_reader.read_channel(str(path))
  np.testing.assert_allclose(channel.signal, written, atol=400 / 65535)


def test_real_excerpt_both_paths_agree():
  if not os.path.exists(EXCERPT):
    pytest.skip("../shared/sleep-edf not present")
  header = edf_reader.read_header(EXCERPT)
  assert [s.label for s in header.signals] == [
      "EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "Resp oro-nasal", "EMG submental", "Temp rectal",
      "Event marker"
  ]
  assert (header.num_records, header.record_duration) == (10, 30.0)
  channel = edf_reader.read_channel(EXCERPT)
  assert channel.signal.shape == (30000,) and channel.unit == "uV"
  s = header.signals[0]
  own = ((edf_reader._read_digital(header, 0) - s.digital_min) * (s.physical_max - s.physical_min) /
         (s.digital_max - s.digital_min) + s.physical_min)
  np.testing.assert_allclose(channel.signal, own, atol=1e-4)


def test_real_hypnograms_pyedflib_and_own_parser_agree():
  paths = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if len(paths) != 39:
    pytest.skip("../shared/sleep-edf not present")
  for path in paths:
    ours = edf_reader._own_annotations(path)
    assert edf_reader.read_annotations(path) == ours, path
    assert ours[-1].description == "Sleep stage ?" and ours[-1].onset + ours[-1].duration == 86400


def test_hypnogram_written_by_pyedflib_reads_back(tmp_path):
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_files.write_hypnogram(path, [(0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1")])
  texts = [(a.onset, a.duration, a.description) for a in edf_reader.read_annotations(str(path))]
  assert texts == [(0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1")]
  assert edf_reader._own_annotations(str(path)) == edf_reader.read_annotations(str(path))


def test_psg_is_not_a_hypnogram(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  with pytest.raises(errors.EdfFormatError, match="no 'EDF Annotations' signal"):
    edf_reader._own_annotations(str(path))
