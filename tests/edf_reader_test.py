"""Tests for eegmobile.edf_reader on files written at test time and on the real files.

PSGs and hypnograms are written with pyedflib's EdfWriter (`tests/edf_files.py`), an
implementation independent of ours; a few files pyedflib cannot write (annotation signal
first, sub-second start) are put together byte by byte.
"""

import datetime
import glob
import logging
import os
import subprocess
import sys

import numpy as np
import pyedflib
import pytest

from eegmobile import edf_reader
from eegmobile import edf_writer
from eegmobile import errors
from tests import edf_files

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")
EXCERPT = os.path.join(SHARED, "excerpt", "SC4001E0-PSG.first300s.edf")
STEP = 400 / 65535  # one digital step of edf_files' default physical range


def _put(path, offset, width, text):
  """Overwrites one header field (ASCII, space padded)."""
  raw = bytearray(path.read_bytes())
  raw[offset:offset + width] = text.encode("latin-1").ljust(width)
  path.write_bytes(bytes(raw))


def _pyedflib_refuses(path):
  with pytest.raises(OSError, match="not EDF"):
    pyedflib.EdfReader(str(path))


# ---------------------------------------------------------------------------------------
# Channels


@pytest.mark.parametrize("use_pyedflib", [True, False])
def test_reads_the_channel_in_microvolts(tmp_path, use_pyedflib):
  path = tmp_path / "SC4001E0-PSG.edf"
  written = edf_files.write_psg(path, seconds=60)
  channel = edf_reader.read_channel(str(path), use_pyedflib=use_pyedflib)
  assert channel.signal.dtype == np.float32 and channel.signal.shape == (6000,)
  assert (channel.fs, channel.original_fs, channel.duration_s) == (100.0, 100.0, 60.0)
  assert (channel.label, channel.unit) == ("EEG Fpz-Cz", "uV")
  np.testing.assert_allclose(channel.signal, written, atol=STEP)


@pytest.mark.parametrize("alias", ["EEG Fpz-Cz", "Fpz-Cz", "eeg fpz-cz", "EEG FPZ-CZ", " fpz - cz"])
def test_channel_aliases(tmp_path, alias):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  assert edf_reader.read_channel(str(path), alias).label == "EEG Fpz-Cz"


def test_an_exact_label_wins_and_equal_aliases_are_ambiguous(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10, channels=("EEG Fpz-Cz", "Fpz-Cz", "EEG Pz-Oz"))
  header = edf_reader.read_header(str(path))
  assert edf_reader.find_signal(header, "Fpz-Cz") == 1
  with pytest.raises(errors.ChannelError,
                     match="'FPZ-CZ' is ambiguous: it matches 'EEG Fpz-Cz', "
                     "'Fpz-Cz'"):
    edf_reader.find_signal(header, "FPZ-CZ")


def test_missing_channel_lists_what_the_file_has(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10, channels=("EEG Pz-Oz", "EOG horizontal"))
  with pytest.raises(errors.ChannelError,
                     match=r"a.edf: no channel 'EEG Fpz-Cz'; the file "
                     r"has 'EEG Pz-Oz', 'EOG horizontal'"):
    edf_reader.read_channel(str(path))


@pytest.mark.parametrize("unit, microvolts", [("V", 1e6), ("mV", 1e3), ("uV", 1.0), ("mcV", 1.0)])
def test_units_are_converted_to_microvolts(tmp_path, unit, microvolts):
  path = tmp_path / "a.edf"
  signal_uv = np.random.default_rng(0).normal(0, 20, 1000)
  edf_files.write_psg(path,
                      seconds=10,
                      unit=unit,
                      signal=signal_uv / microvolts,
                      physical_range=200 / microvolts)
  for use_pyedflib in (True, False):
    channel = edf_reader.read_channel(str(path), use_pyedflib=use_pyedflib)
    assert channel.unit == unit
    np.testing.assert_allclose(channel.signal, signal_uv, atol=STEP)


def test_micro_sign_is_microvolts(tmp_path):
  path = tmp_path / "a.edf"
  written = edf_files.write_psg(path, seconds=10)
  _put(path, 256 + 2 * 16 + 2 * 80, 8, "\xb5V")  # Latin-1 micro sign, first signal
  _pyedflib_refuses(path)
  channel = edf_reader.read_channel(str(path))
  assert channel.unit == "µV"
  np.testing.assert_allclose(channel.signal, written, atol=STEP)


@pytest.mark.parametrize("unit", ["furlong", "", "nV"])
def test_other_units_are_refused(tmp_path, unit):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10, unit=unit)
  with pytest.raises(errors.ChannelError, match=f"a.edf: channel 'EEG Fpz-Cz' has unit '{unit}'"):
    edf_reader.read_channel(str(path))


@pytest.mark.parametrize("use_pyedflib", [True, False])
def test_flat_channel_is_refused(tmp_path, use_pyedflib):
  path = tmp_path / "flat.edf"
  edf_files.write_psg(path, seconds=10, signal=np.full(1000, 3.0))
  with pytest.raises(errors.ChannelError, match="flat.edf: channel 'EEG Fpz-Cz' is flat"):
    edf_reader.read_channel(str(path), use_pyedflib=use_pyedflib)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_samples_are_refused(monkeypatch, tmp_path, bad):
  # EDF stores integers, so no file holds a NaN; this guards the reader's output.
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  real = edf_reader._physical
  monkeypatch.setattr(edf_reader, "_physical",
                      lambda *args: np.where(np.arange(1000) == 5, bad, real(*args)))
  with pytest.raises(errors.ChannelError, match="a.edf: .* contains NaN or infinite samples"):
    edf_reader.read_channel(str(path))


def _thirty_second_records(path, signal):
  """A Sleep-EDF-like PSG (30 s data records, EEG at 100 Hz plus a 1 Hz signal)."""
  eeg = edf_reader.SignalHeader("EEG Fpz-Cz", "", "uV", -200, 200, -32768, 32767, "", 3000)
  temp = edf_reader.SignalHeader("Temp rectal", "", "DegC", 30, 40, -32768, 32767, "", 30)
  edf_writer.write_edf(
      str(path),
      [edf_writer.Signal(eeg, signal),
       edf_writer.Signal(temp, np.full(len(signal) // 100, 36.6))])


@pytest.mark.parametrize("records", ["1 s", "30 s"])
@pytest.mark.parametrize("use_pyedflib", [True, False])
@pytest.mark.parametrize("start_s, stop_s", [(0, 120), (30, 90), (45.5, 61.25), (90, 120),
                                             (60, 60)])
def test_a_span_is_the_slice_of_the_whole_channel(tmp_path, records, use_pyedflib, start_s, stop_s):
  path = tmp_path / "SC4001E0-PSG.edf"
  signal = np.random.default_rng(3).normal(0, 30, 12000)
  if records == "1 s":
    edf_files.write_psg(path, seconds=120, signal=signal)
  else:
    _thirty_second_records(path, signal)
  whole = edf_reader.read_channel(str(path), use_pyedflib=use_pyedflib)
  part = edf_reader.read_channel(str(path),
                                 use_pyedflib=use_pyedflib,
                                 start_s=start_s,
                                 stop_s=stop_s)
  assert (part.start_s, part.duration_s, part.fs) == (start_s, 120.0, 100.0)
  np.testing.assert_array_equal(part.signal, whole.signal[int(start_s * 100):int(stop_s * 100)])


def test_a_span_of_a_resampled_channel_is_cut_after_resampling(tmp_path):
  path = tmp_path / "fast.edf"
  edf_files.write_psg(path, seconds=20, fs=200, signal=np.random.default_rng(4).normal(0, 30, 4000))
  whole = edf_reader.read_channel(str(path))
  part = edf_reader.read_channel(str(path), start_s=5, stop_s=15)
  assert part.start_s == 5 and len(part.signal) == 1000
  np.testing.assert_array_equal(part.signal, whole.signal[500:1500])


@pytest.mark.parametrize("start_s, stop_s", [(-30, 30), (30, 0), (0, 150)])
def test_a_span_outside_the_recording_is_refused(tmp_path, start_s, stop_s):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=120)
  with pytest.raises(ValueError, match=r"a.edf: span .* is not inside the recording's 120 s"):
    edf_reader.read_channel(str(path), start_s=start_s, stop_s=stop_s)


def test_only_the_span_read_is_checked(tmp_path):
  """Flat for its first minute (an electrode still off): refused only if that is all read."""
  path = tmp_path / "late.edf"
  signal = np.concatenate([np.zeros(6000), np.random.default_rng(5).normal(0, 30, 6000)])
  edf_files.write_psg(path, seconds=120, signal=signal)
  with pytest.raises(errors.ChannelError, match="late.edf: channel 'EEG Fpz-Cz' is flat"):
    edf_reader.read_channel(str(path), start_s=0, stop_s=60)
  assert edf_reader.read_channel(str(path), start_s=30, stop_s=120).signal.std() > 10


# ---------------------------------------------------------------------------------------
# Broken files


@pytest.mark.parametrize("use_pyedflib", [True, False])
def test_truncated_file_says_how_many_records_are_missing(tmp_path, use_pyedflib):
  path = tmp_path / "cut.edf"
  edf_files.write_psg(path, seconds=60)  # 60 records of 1 s, 2 x 100 samples
  os.truncate(path, os.path.getsize(path) - 1000)
  with pytest.raises(errors.EdfFormatError,
                     match=r"cut.edf: truncated: the header promises "
                     r"60 data records of 400 bytes, the file holds 57"):
    edf_reader.read_channel(str(path), use_pyedflib=use_pyedflib)


def test_truncated_hypnogram_is_reported(tmp_path):
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_files.write_hypnogram(path, [(0, 60, "Sleep stage W")])
  os.truncate(path, os.path.getsize(path) - 10)
  with pytest.raises(errors.EdfFormatError, match="promises 1 data records .* holds 0"):
    edf_reader.read_annotations(str(path))


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:100], "only 100 bytes; an EDF header needs at least 256"),
    (lambda b: b"", "only 0 bytes"),
    (lambda b: b[:252] + b"abcd" + b[256:], "'number of signals' is not a number: 'abcd'"),
    (lambda b: b[:252] + b"0   " + b[256:], "declares 0 signals"),
    (lambda b: b[:600], "truncated header: 2 signals need 768 header bytes, the file has 600"),
    (lambda b: b[:184] + b"999     " + b[192:], "header size field says 999 bytes, but 2 signals "
     "make 768"),
    (lambda b: b[:236] + b"many    " + b[244:], "'number of data records' is not a number"),
    (lambda b: b[:236] + b"-5      " + b[244:], "declares -5 data records"),
    (lambda b: b[:244] + b"nan     " + b[252:], "'duration of a data record' is not a number"),
    (lambda b: b[:244] + b"-1      " + b[252:], "negative data record duration"),
    (lambda b: b[:0] + b"1       " + b[8:], "version field is '1', neither '0'"),
    (lambda b: b[:256 + 32 + 160 + 16] + b"1e3x    " + b[256 + 32 + 160 + 24:],
     "'physical min' of signal 'EEG Fpz-Cz' is not a number: '1e3x'"),
    (lambda b: b[:688] + b"0       " + b[696:],
     "signal 'EEG Fpz-Cz' has 0 samples per data record"),
])
def test_corrupt_headers_are_clear_errors(tmp_path, damage, message):
  path = tmp_path / "bad.edf"
  edf_files.write_psg(path, seconds=10)
  path.write_bytes(damage(path.read_bytes()))
  with pytest.raises(errors.EdfFormatError, match=message) as e:
    edf_reader.read_channel(str(path))
  assert str(e.value).startswith(f"{path}: ")


def test_missing_file_and_directory_are_format_errors(tmp_path):
  with pytest.raises(errors.EdfFormatError, match="nothing.edf: cannot be read"):
    edf_reader.read_header(str(tmp_path / "nothing.edf"))
  with pytest.raises(errors.EdfFormatError, match="cannot be read"):
    edf_reader.read_annotations(str(tmp_path))


def test_empty_physical_range_is_a_format_error(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  _put(path, 256 + 2 * (16 + 80 + 8), 8, "200")  # physical minimum of signal 0 = maximum
  with pytest.raises(errors.EdfFormatError, match="'EEG Fpz-Cz' has an empty range"):
    edf_reader.read_channel(str(path))


def test_unknown_number_of_records_is_derived_from_the_file_size(tmp_path):
  path = tmp_path / "a.edf"
  written = edf_files.write_psg(path, seconds=20)
  _put(path, 236, 8, "-1")
  assert edf_reader.read_header(str(path)).num_records == 20
  channel = edf_reader.read_channel(str(path))
  assert channel.duration_s == 20
  np.testing.assert_allclose(channel.signal, written, atol=STEP)


def test_discontinuous_recordings_are_refused(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  _put(path, 192, 44, "EDF+D")
  with pytest.raises(errors.EdfFormatError, match="discontinuous EDF\\+D"):
    edf_reader.read_channel(str(path))


def test_psg_is_not_a_hypnogram(tmp_path):
  path = tmp_path / "a.edf"
  edf_files.write_psg(path, seconds=10)
  with pytest.raises(errors.EdfFormatError,
                     match="a.edf: no 'EDF Annotations' signal: not an EDF\\+ hypnogram "
                     "\\(signals: 'EEG Fpz-Cz', 'EEG Pz-Oz'\\)"):
    edf_reader.read_annotations(str(path))


# ---------------------------------------------------------------------------------------
# Files pyedflib refuses (no monkeypatching: EDFlib really raises on them)

# Header flaws EDFlib refuses: name -> (offset, width, text), None where set per file.
REFUSED_HEADERS = {
    "start time with colons": (176, 8, "16:13:00"),
    "EDF+ recording date other than the header's": (88, 80, "Startdate 02-FEB-2002 X X X"),
    "right-justified number of records": None,
}
# The EDF+ fields are checked in EDF+ files only; edf_files writes PSGs as plain EDF.
REFUSED_PSG_HEADERS = ["right-justified number of records", "start time with colons"]


def _refuse(path, flaw):
  if flaw == "right-justified number of records":
    records = path.read_bytes()[236:244].decode().strip()
    _put(path, 236, 8, records.rjust(8))
  else:
    _put(path, *REFUSED_HEADERS[flaw])
  _pyedflib_refuses(path)


@pytest.mark.parametrize("flaw", sorted(REFUSED_HEADERS))
def test_hypnogram_pyedflib_refuses_is_read_by_our_parser(tmp_path, caplog, flaw):
  written = [(0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1"), (90, 90, "Sleep stage 2"),
             (180, 30, "Movement time"), (210, 86190, "Sleep stage ?")]
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_files.write_hypnogram(path, written)
  intact = edf_reader.read_annotations(str(path))
  assert [(a.onset, a.duration, a.description) for a in intact] == written
  _refuse(path, flaw)
  with caplog.at_level(logging.WARNING):
    assert edf_reader.read_annotations(str(path)) == intact
  assert f"{path}: pyedflib refused the file" in caplog.text
  assert "not EDF(+) or BDF(+) compliant" in caplog.text


@pytest.mark.parametrize("flaw", REFUSED_PSG_HEADERS)
def test_psg_pyedflib_refuses_is_read_by_our_parser(tmp_path, caplog, flaw):
  path = tmp_path / "SC4001E0-PSG.edf"
  edf_files.write_psg(path, seconds=30)
  intact = edf_reader.read_channel(str(path), use_pyedflib=True).signal
  _refuse(path, flaw)
  with caplog.at_level(logging.WARNING):
    channel = edf_reader.read_channel(str(path), use_pyedflib=True)
  assert f"{path}: pyedflib refused the file" in caplog.text
  np.testing.assert_allclose(channel.signal, intact, atol=1e-4)
  # The default reader is our parser: the same samples, and no detour through pyedflib.
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    default = edf_reader.read_channel(str(path))
  assert "pyedflib" not in caplog.text
  np.testing.assert_array_equal(default.signal, channel.signal)


def test_annotations_of_a_file_that_does_not_say_edf_plus_are_read_by_our_parser(tmp_path):
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_files.write_hypnogram(path, [(0, 60, "Sleep stage W")])
  _put(path, 192, 44, "")
  assert edf_reader.read_annotations(str(path)) == [edf_reader.Annotation(0, 60, "Sleep stage W")]


def test_annotation_signal_before_the_eeg_keeps_signal_numbers_apart(tmp_path):
  """pyedflib leaves EDF+ annotation signals out of its numbering; we map to it."""
  path = tmp_path / "a.edf"
  specs = [
      edf_reader.SignalHeader("EDF Annotations", "", "", -1, 1, -32768, 32767, "", 10),
      edf_reader.SignalHeader("EEG Fpz-Cz", "", "uV", -100, 100, -32768, 32767, "", 100),
  ]
  digital = np.random.default_rng(0).integers(-30000, 30000, (3, 100)).astype("<i2")
  records = b"".join(
      f"+{i}\x14\x14\x00".encode().ljust(20, b"\x00") + digital[i].tobytes() for i in range(3))
  path.write_bytes(
      edf_writer.header_bytes(specs,
                              num_records=3,
                              record_duration=1,
                              patient="X X X X",
                              recording="Startdate X X X X",
                              startdate="01.01.85",
                              starttime="00.00.00",
                              reserved="EDF+C") + records)
  expected = (digital.ravel() + 32768) * 200 / 65535 - 100
  for use_pyedflib in (True, False):
    channel = edf_reader.read_channel(str(path), "Fpz-Cz", use_pyedflib=use_pyedflib)
    np.testing.assert_allclose(channel.signal, expected, atol=1e-4)


# ---------------------------------------------------------------------------------------
# Annotations


def test_hypnogram_written_by_pyedflib_reads_back_with_both_parsers(tmp_path):
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_files.write_hypnogram(path, [(60, 30, "Sleep stage 1"), (0, 60, "Sleep stage W")])
  texts = [(a.onset, a.duration, a.description) for a in edf_reader.read_annotations(str(path))]
  assert texts == [(0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1")]  # sorted by onset
  assert edf_reader.read_annotations(str(path),
                                     use_pyedflib=False) == edf_reader.read_annotations(str(path))


def test_parse_tals():
  records = [
      b"+0\x14\x14\x00+0\x1530\x14Sleep stage W\x14\x00+30\x14Lights off\x14Note\x14\x00\x00\x00",
      b"+60\x14\x14Recording paused\x14\x00+60.5\x150.25\x14Sleep stage 1\x14\x00",
  ]
  assert edf_reader.parse_tals(records) == [
      edf_reader.Annotation(0, 30, "Sleep stage W"),
      edf_reader.Annotation(30, -1, "Lights off"),
      edf_reader.Annotation(30, -1, "Note"),
      edf_reader.Annotation(60, -1, "Recording paused"),
      edf_reader.Annotation(60.5, 0.25, "Sleep stage 1"),
  ]


@pytest.mark.parametrize("tal", [b"+x\x14a\x14\x00", b"+1\x152\x153\x14a\x14\x00", b"+1\x00"])
def test_malformed_tals_are_format_errors(tal):
  with pytest.raises(errors.EdfFormatError, match="h.edf: malformed annotation"):
    edf_reader.parse_tals([b"+0\x14\x14\x00" + tal], "h.edf")


def test_onsets_are_relative_to_a_sub_second_start_like_edflib(tmp_path):
  path = tmp_path / "h.edf"
  tals = b"+0.5\x14\x14\x00+30.5\x1530\x14Sleep stage W\x14\x00".ljust(60, b"\x00")
  spec = edf_reader.SignalHeader("EDF Annotations", "", "", 0, 1, -32768, 32767, "", 30)
  path.write_bytes(
      edf_writer.header_bytes([spec],
                              num_records=1,
                              record_duration=0,
                              patient="X X X X",
                              recording="Startdate X X X X",
                              startdate="01.01.85",
                              starttime="00.00.00",
                              reserved="EDF+C") + tals)
  expected = [edf_reader.Annotation(30, 30, "Sleep stage W")]
  assert edf_reader.read_annotations(str(path)) == expected  # pyedflib
  assert edf_reader.read_annotations(str(path), use_pyedflib=False) == expected


# ---------------------------------------------------------------------------------------
# Start date and time


@pytest.mark.parametrize("date, time, expected", [
    ("24.04.89", "16.13.00", datetime.datetime(1989, 4, 24, 16, 13)),
    ("01.01.85", "00.00.00", datetime.datetime(1985, 1, 1)),
    ("31.12.99", "23.59.59", datetime.datetime(1999, 12, 31, 23, 59, 59)),
    ("29.02.00", "12.00.00", datetime.datetime(2000, 2, 29, 12)),
    ("15.06.84", "08.30.05", datetime.datetime(2084, 6, 15, 8, 30, 5)),
    ("24.04.89", "16:13:00", datetime.datetime(1989, 4, 24, 16, 13)),
])
def test_start_datetime_follows_edfs_clipping_rule(tmp_path, date, time, expected):
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_writer.write_hypnogram(str(path), [edf_reader.Annotation(0, 30, "Sleep stage W")])
  _put(path, 168, 8, date)
  _put(path, 176, 8, time)
  assert edf_reader.start_datetime(edf_reader.read_header(str(path))) == expected


@pytest.mark.parametrize("date, time, message", [
    ("1989-04-", "16.13.00", "start date '1989-04-' is not dd.mm.yy"),
    ("24.4.89", "16.13.00", "start date '24.4.89' is not dd.mm.yy"),
    ("24.04.89", "4.13.00 ", "start time '4.13.00' is not hh.mm.ss"),
    ("32.01.89", "16.13.00", "start '32.01.89' '16.13.00' is not a real date and time"),
    ("29.02.89", "16.13.00", "start '29.02.89' '16.13.00' is not a real date and time"),
    ("24.04.89", "16.61.00", "start '24.04.89' '16.61.00' is not a real date and time"),
])
def test_malformed_start_is_a_format_error_naming_the_file(tmp_path, date, time, message):
  path = tmp_path / "SC4001EC-Hypnogram.edf"
  edf_writer.write_hypnogram(str(path), [edf_reader.Annotation(0, 30, "Sleep stage W")])
  _put(path, 168, 8, date)
  _put(path, 176, 8, time)
  with pytest.raises(errors.EdfFormatError) as raised:
    edf_reader.start_datetime(edf_reader.read_header(str(path)))
  assert str(raised.value).startswith(str(path) + ": ") and message in str(raised.value)


# ---------------------------------------------------------------------------------------
# Resampling


@pytest.mark.parametrize("rate", [200, 256])
def test_other_rates_are_resampled_in_place(tmp_path, rate):
  path = tmp_path / "fast.edf"
  t = np.arange(20 * rate) / rate
  edf_files.write_psg(path, seconds=20, fs=rate, signal=50 * np.sin(2 * np.pi * 10 * t + 0.3))
  channel = edf_reader.read_channel(str(path))
  assert channel.original_fs == rate and channel.fs == 100.0 and len(channel.signal) == 2000
  middle = channel.signal[100:1900]
  spectrum = np.abs(np.fft.rfft(middle))
  assert np.fft.rfftfreq(len(middle), 1 / 100)[np.argmax(spectrum)] == pytest.approx(10, abs=0.1)
  assert np.sqrt(2) * middle.std() == pytest.approx(50, rel=0.01)
  # In time too: sample k is the sine at k / 100 s (no filter delay).
  ideal = 50 * np.sin(2 * np.pi * 10 * np.arange(2000) / 100 + 0.3)
  np.testing.assert_allclose(middle, ideal[100:1900], atol=50 * 0.01)


@pytest.mark.parametrize("rate_in", [50, 128, 200, 250, 256, 500, 512])
def test_resampling_keeps_events_in_place(rate_in):
  t = np.arange(30 * rate_in) / rate_in
  bump = np.exp(-0.5 * ((t - 12.34) / 0.1)**2)
  out = edf_reader.resample(bump, rate_in, 100)
  assert len(out) == 3000 and out.dtype == np.float32
  centroid = np.sum(np.arange(len(out)) / 100 * out) / np.sum(out)
  assert centroid == pytest.approx(12.34, abs=1e-3)
  assert out.max() == pytest.approx(1.0, abs=0.01)


def test_output_length_is_floor_of_the_rate_ratio():
  for rate_in, rate_out in ((256, 100), (200, 100), (50, 100), (99.5, 100)):
    for n in (257, 1000, 5121):
      out = edf_reader.resample(np.random.default_rng(n).normal(size=n), rate_in, rate_out)
      assert len(out) == int(n * rate_out // rate_in), (rate_in, n)


def test_non_integer_rates_are_resampled_in_place(tmp_path):
  path = tmp_path / "odd.edf"
  spec = edf_reader.SignalHeader("EEG Fpz-Cz", "", "uV", -100, 100, -32768, 32767, "", 199)
  t = np.arange(199 * 30) / 99.5  # 30 records of 2 s at 99.5 Hz
  edf_writer.write_edf(str(path), [edf_writer.Signal(spec, 50 * np.sin(2 * np.pi * 5 * t))],
                       record_duration=2)
  channel = edf_reader.read_channel(str(path))
  assert channel.original_fs == 99.5 and len(channel.signal) == 6000
  ideal = 50 * np.sin(2 * np.pi * 5 * np.arange(6000) / 100)
  np.testing.assert_allclose(channel.signal[100:-100], ideal[100:-100], atol=0.5)


@pytest.mark.parametrize("rate, imported", [(100, "False"), (200, "True")])
def test_scipy_signal_is_imported_only_to_resample(tmp_path, rate, imported):
  path = tmp_path / "psg.edf"
  edf_files.write_psg(path, seconds=30, fs=rate)
  code = ("import sys; from eegmobile import edf_reader; "
          f"edf_reader.read_channel({str(path)!r}); print('scipy.signal' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == imported


# ---------------------------------------------------------------------------------------
# The real Sleep-EDF files


def test_real_excerpt_both_readers_agree():
  if not os.path.exists(EXCERPT):
    pytest.skip("../shared/sleep-edf not present")
  header = edf_reader.read_header(EXCERPT)
  assert [s.label for s in header.signals] == [
      "EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "Resp oro-nasal", "EMG submental", "Temp rectal",
      "Event marker"
  ]
  assert [s.samples_per_record for s in header.signals] == [3000] * 3 + [30] * 4
  assert (header.num_records, header.record_duration, header.duration_s) == (10, 30.0, 300.0)
  ours = edf_reader.read_channel(EXCERPT, use_pyedflib=False)
  theirs = edf_reader.read_channel(EXCERPT, use_pyedflib=True)
  assert theirs.signal.shape == (30000,) and (theirs.fs, theirs.unit) == (100.0, "uV")
  np.testing.assert_array_equal(ours.signal, theirs.signal)
  assert np.ptp(theirs.signal) > 10  # real EEG, in microvolts


def test_real_hypnograms_pyedflib_and_our_parser_agree():
  paths = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if len(paths) != 39:
    pytest.skip("../shared/sleep-edf not present")
  for path in paths:
    with pyedflib.EdfReader(path):  # pyedflib 0.1.42 accepts every one of them
      pass
    ours = edf_reader.read_annotations(path, use_pyedflib=False)
    assert edf_reader.read_annotations(path) == ours, path
    assert len(ours) > 50 and ours[-1].description == "Sleep stage ?", path
    assert ours[-1].onset + ours[-1].duration == 86400, path


def test_real_psg_and_its_hypnogram_start_together():
  hypnogram = os.path.join(SHARED, "sleep-cassette", "SC4001EC-Hypnogram.edf")
  if not (os.path.exists(EXCERPT) and os.path.exists(hypnogram)):
    pytest.skip("../shared/sleep-edf not present")
  starts = [edf_reader.start_datetime(edf_reader.read_header(p)) for p in (EXCERPT, hypnogram)]
  assert starts == [datetime.datetime(1989, 4, 24, 16, 13)] * 2


def _write_bdf(path, signal, *, plus=False, fs=100):
  header = {
      "label": "EEG Fpz-Cz",
      "dimension": "uV",
      "sample_frequency": fs,
      "physical_min": -500.0,
      "physical_max": 500.0,
      "digital_min": -8388608,
      "digital_max": 8388607,
      "transducer": "",
      "prefilter": ""
  }
  kind = pyedflib.FILETYPE_BDFPLUS if plus else pyedflib.FILETYPE_BDF
  with pyedflib.EdfWriter(str(path), 1, file_type=kind) as w:
    w.setStartdatetime(edf_files.START)
    w.setSignalHeaders([header])
    w.writeSamples([np.asarray(signal, float)])


@pytest.mark.parametrize("plus", [False, True])
def test_bdf_24_bit_samples_read_like_pyedflib(tmp_path, plus):
  rng = np.random.default_rng(3)
  signal = np.clip(rng.normal(0, 100, 6000), -499, 499)  # finer than EDF's 16 bits
  _write_bdf(tmp_path / "n.bdf", signal, plus=plus)
  header = edf_reader.read_header(str(tmp_path / "n.bdf"))
  assert header.is_bdf and header.bytes_per_sample == 3 and header.num_records == 60
  with pyedflib.EdfReader(str(tmp_path / "n.bdf")) as r:
    expected = r.readSignal(0)
    digital = r.readSignal(0, digital=True)
  np.testing.assert_array_equal(edf_reader.read_digital(header, 0), digital)
  assert digital.min() < -32768 and digital.max() > 32767  # really 24-bit
  channel = edf_reader.read_channel(str(tmp_path / "n.bdf"))
  np.testing.assert_allclose(channel.signal, expected, atol=1e-3)
  np.testing.assert_allclose(channel.signal, signal, atol=1e-3)


def test_discontinuous_bdf_is_refused_naming_the_file(tmp_path):
  _write_bdf(tmp_path / "n.bdf", np.zeros(3000) + np.arange(3000) % 7, plus=True)
  with open(tmp_path / "n.bdf", "r+b") as f:
    f.seek(192)
    f.write(b"BDF+D".ljust(44))
  with pytest.raises(errors.EdfFormatError, match=r"n\.bdf.*discontinuous EDF\+D"):
    edf_reader.read_channel(str(tmp_path / "n.bdf"))
