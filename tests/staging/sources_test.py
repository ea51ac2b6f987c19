"""Tests for eegmobile.staging.sources: an LSL stream on loopback and BrainFlow's synthetic and
playback boards read as the live stager reads them."""

import builtins
import time

import numpy as np
import pytest

from eegmobile import errors
from eegmobile.staging import sources
from tests import lsl_outlet

pytest.importorskip("mne_lsl", reason="the stream extra (pip install 'eegmobile[stream]')")
pytest.importorskip("brainflow", reason="the stream extra (pip install 'eegmobile[stream]')")


def _read_all(source, until, timeout=20.0):
  """Reads until `until(samples)` holds or nothing arrives for a second."""
  parts, stamps = [], []
  deadline = time.monotonic() + timeout
  quiet_since = time.monotonic()
  while time.monotonic() < deadline:
    samples, times = source.read(timeout=0.2)
    if len(samples):
      parts.append(samples)
      stamps.append(times)
      quiet_since = time.monotonic()
      if until(sum(len(p) for p in parts)):
        break
    elif time.monotonic() - quiet_since > 1.0 and parts:
      break
  return np.concatenate(parts), np.concatenate(stamps)


def test_lsl_units_are_read_as_names_or_mne_lsls_powers_of_ten():
  assert sources.lsl_unit("0") == "V" and sources.lsl_unit("-6") == "uV"
  assert sources.lsl_unit("-3") == "mV" and sources.lsl_unit("microvolts") == "microvolts"
  assert sources.lsl_unit(None) is None and sources.lsl_unit(" ") is None


def test_board_names_are_brainflows():
  assert sources.board_id("synthetic") == -1
  assert sources.board_id("muse_s") == sources.board_id("MUSE_S_BOARD") == 39
  with pytest.raises(sources.SourceError, match="no BrainFlow board 'muse_z'; boards: .*muse_s"):
    sources.board_id("muse_z")


def test_a_spec_that_names_no_source_is_refused():
  with pytest.raises(sources.SourceError, match="a source is lsl:NAME or board:NAME"):
    sources.open_source("udp:1234", "Fpz-Cz")
  with pytest.raises(sources.SourceError, match="board parameters go with a board"):
    sources.open_source("lsl:x", "Fpz-Cz", {"serial_port": "/dev/ttyUSB0"})


def test_a_missing_optional_package_names_the_install_command(monkeypatch):
  real_import = builtins.__import__

  def no_mne_lsl(name, *args, **kwargs):
    if name.startswith(("mne_lsl", "brainflow")):
      raise ImportError(f"No module named {name!r}")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_mne_lsl)
  with pytest.raises(sources.MissingDependency,
                     match=r"--stream lsl:... needs mne-lsl: pip install 'eegmobile\[stream\]'"):
    sources.open_source("lsl:night", "Fpz-Cz")
  with pytest.raises(sources.MissingDependency, match=r"--board needs brainflow: pip install"):
    sources.open_source("board:synthetic", "Fpz-Cz")


def test_an_lsl_stream_is_read_with_its_samples_channels_and_clock():
  rng = np.random.default_rng(0)
  samples = rng.normal(0, 1e-5, size=(1000, 3))  # volts, as mne-lsl's player sends
  name = lsl_outlet.unique_name()
  with lsl_outlet.FastOutlet(name, samples, 250, ["EEG Fpz", "EEG Cz", "EOG"], unit="0", speed=5):
    began = time.time()
    source = sources.open_source(f"lsl:{name}", "Fpz-Cz")
    try:
      assert source.rate == 250 and source.unit == "V" and source.columns == [0, 1]
      assert source.channel_label == "EEG Fpz - EEG Cz"
      assert source.description.startswith(f"LSL stream {name!r} on ")
      got, times = _read_all(source, lambda n: n >= 1000)
    finally:
      source.close()
  # Every sample, in order (a late inlet still gets the outlet's buffer).
  np.testing.assert_array_equal(got, samples[:, :2])
  np.testing.assert_allclose(np.diff(times), 1 / 250, atol=1e-6)
  assert abs(times[0] - began) < 5  # on the Unix clock


def test_an_lsl_stream_that_is_not_there_or_lacks_the_channel_is_named():
  with pytest.raises(sources.SourceError, match="no LSL stream named 'nobody-streams-this'"):
    sources.LslSource("nobody-streams-this", "Fpz-Cz", resolve_timeout=0.5)
  name = lsl_outlet.unique_name()
  with lsl_outlet.FastOutlet(name, np.zeros((100, 2)), 100, ["C3", "C4"]):
    with pytest.raises(errors.ChannelError,
                       match=f"LSL stream '{name}' .*no channel 'Fpz-Cz'; it has 'C3', 'C4'"):
      sources.open_source(f"lsl:{name}", "Fpz-Cz")


def test_a_vanished_lsl_stream_is_lost_then_found_again():
  name = lsl_outlet.unique_name()
  samples = np.arange(400, dtype=np.float64)
  outlet = lsl_outlet.FastOutlet(name, samples, 100, ["Fpz-Cz"], speed=20).start()
  source = sources.LslSource(name, "Fpz-Cz", resolve_timeout=2, lost_after=0.5)
  try:
    _read_all(source, lambda n: n >= 400)
    outlet.close()
    with pytest.raises(sources.SourceLost,
                       match="connection has been lost|no longer on the network"):
      for _ in range(50):
        source.read(timeout=0.2)
    with pytest.raises(sources.SourceLost, match="not found"):
      source.reopen()
    with lsl_outlet.FastOutlet(name, samples, 100, ["Fpz-Cz"], speed=20):
      source.reopen()
      got, _ = _read_all(source, lambda n: n >= 400)
      np.testing.assert_array_equal(got[:, 0], samples)
  finally:
    source.close()
    outlet.close()


def test_the_synthetic_board_streams_its_channels_in_real_time():
  source = sources.open_source("board:synthetic", "Cz")
  try:
    assert source.rate == 250 and source.unit == "uV" and source.labels[:3] == ("Fz", "C3", "Cz")
    got, times = _read_all(source, lambda n: n >= 250)
  finally:
    source.close()
  assert got.shape[1] == 1 and np.all(np.isfinite(got)) and np.std(got) > 0
  assert abs(times[0] - time.time()) < 10


def write_playback(path, eeg_microvolts, rate=250):
  """A BrainFlow file as the synthetic board records it: its 32 rows, EEG in rows 1..16,
  Unix timestamps in row 30. Returns the EEG as BrainFlow reads it back."""
  from brainflow.data_filter import DataFilter  # pylint: disable=g-import-not-at-top
  n = len(eeg_microvolts)
  data = np.zeros((32, n))
  data[0] = np.arange(n) % 256
  data[1:17] = np.asarray(eeg_microvolts, np.float64)[None, :]
  data[30] = 1.7e9 + np.arange(n) / rate
  DataFilter.write_file(data, str(path), "w")
  return DataFilter.read_file(str(path))[1]


def test_a_playback_file_is_read_sample_for_sample_then_ends(tmp_path):
  eeg = np.random.default_rng(1).normal(0, 30, 500)
  expected = write_playback(tmp_path / "night.csv", eeg)
  source = sources.open_source(f"board:playback:{tmp_path / 'night.csv'}", "Cz")
  try:
    assert source.description.startswith("BrainFlow board playback of ")
    got, _ = _read_all(source, lambda n: n >= 500)
    assert len(source.read(timeout=0.5)[0]) == 0  # then nothing: the file ends
  finally:
    source.close()
  np.testing.assert_array_equal(got[:, 0], expected)
  with pytest.raises(sources.SourceError, match="no such file"):
    sources.open_source(f"board:playback:{tmp_path / 'missing.csv'}", "Cz")
  with pytest.raises(sources.SourceError, match="no BrainFlow input parameter 'colour'"):
    sources.open_source("board:synthetic", "Cz", {"colour": "blue"})
