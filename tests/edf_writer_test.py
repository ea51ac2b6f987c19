"""Tests for eegmobile.edf_writer: pyedflib (an independent implementation) reads our files
back; our layout and hypnograms equal the real Sleep-EDF files (from ../shared)."""

import dataclasses
import glob
import os

import numpy as np
import pyedflib
import pytest

from eegmobile import edf_reader
from eegmobile import edf_writer
from eegmobile import storage

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")
EXCERPT = os.path.join(SHARED, "excerpt", "SC4001E0-PSG.first300s.edf")
REAL_HYPNOGRAMS = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
LAYOUT = edf_writer.SLEEP_EDF_SC_LAYOUT


def _step(header):
  return (header.physical_max - header.physical_min) / (header.digital_max - header.digital_min)


def _night(seconds, seed=0):
  """Uniform samples over each layout signal's physical range."""
  rng = np.random.default_rng(seed)
  return [
      edf_writer.Signal(
          h, rng.uniform(h.physical_min, h.physical_max, int(seconds / 30 * h.samples_per_record)))
      for h in LAYOUT
  ]


def _header_kwargs(header):
  return dict(patient=header.patient,
              recording=header.recording,
              startdate=header.startdate,
              starttime=header.starttime)


def test_pyedflib_reads_back_labels_rates_fields_and_values(tmp_path):
  path = str(tmp_path / "SC4001E0-PSG.edf")
  signals = _night(90)
  edf_writer.write_edf(path,
                       signals,
                       patient="X F X Female_33yr",
                       recording="Startdate 24-APR-1989 X X X",
                       startdate="24.04.89",
                       starttime="16.13.00")
  with pyedflib.EdfReader(path) as reader:
    assert reader.getSignalLabels() == [h.label for h in LAYOUT]
    assert list(reader.getSampleFrequencies()) == [100] * 3 + [1] * 4
    assert reader.getFileDuration() == 90
    assert str(reader.getStartdatetime()) == "1989-04-24 16:13:00"
    for i, h in enumerate(LAYOUT):
      assert reader.getTransducer(i) == h.transducer
      assert reader.getPhysicalDimension(i) == h.physical_dim
      assert reader.getPrefilter(i) == h.prefilter
      assert (reader.getPhysicalMinimum(i), reader.getPhysicalMaximum(i)) == (h.physical_min,
                                                                              h.physical_max)
      np.testing.assert_allclose(reader.readSignal(i), signals[i].data, atol=_step(h))
  assert os.listdir(tmp_path) == ["SC4001E0-PSG.edf"]  # no .part left behind


def test_digital_values_follow_the_edf_formula_and_are_clipped(tmp_path):
  header = edf_reader.SignalHeader("EEG", "", "uV", -100, 100, -2048, 2047, "", 5)
  physical = np.array([-100, 100, 0, 250, -1e6])
  path = str(tmp_path / "a.edf")
  edf_writer.write_edf(path, [edf_writer.Signal(header, physical)], record_duration=1)
  digital = np.frombuffer(open(path, "rb").read()[512:], "<i2")
  expected = np.round((physical - -100) / 200 * 4095 - 2048).clip(-2048, 2047)
  np.testing.assert_array_equal(digital, expected)
  assert digital.tolist() == [-2048, 2047, 0, 2047, -2048]


def test_numbers_too_long_for_the_header_are_rounded_and_data_follow_the_rounding(tmp_path):
  header = edf_reader.SignalHeader("EEG", "", "mV", -0.123456789, 0.98765432109, -32768, 32767, "",
                                   100)
  data = np.random.default_rng(1).uniform(-0.12, 0.98, 300)
  path = str(tmp_path / "a.edf")
  edf_writer.write_edf(path, [edf_writer.Signal(header, data)], record_duration=1.5)
  with pyedflib.EdfReader(path) as reader:
    assert reader.getPhysicalMinimum(0) == -0.12346  # 8 characters at most
    assert reader.getPhysicalMaximum(0) == 0.987654
    assert reader.getFileDuration() == 4.5
    np.testing.assert_allclose(reader.readSignal(0), data, atol=1.1 / 65535)


@pytest.mark.parametrize("value,text", [(30, "30"), (30.0, "30"), (-192.0, "-192"), (0.5, "0.5"),
                                        (-0.0, "0"), (1 / 3, "0.333333"), (-1234.5678, "-1234.57"),
                                        (12345678, "12345678")])
def test_format_number(value, text):
  assert edf_writer.format_number(value) == text


@pytest.mark.parametrize("value", [123456789, float("nan"), float("inf")])
def test_format_number_refuses_what_cannot_fit(value):
  with pytest.raises(ValueError):
    edf_writer.format_number(value)


def test_layout_equals_the_real_excerpts_header_field_by_field(tmp_path):
  if not os.path.exists(EXCERPT):
    pytest.skip("../shared/sleep-edf not present")
  real = edf_reader.read_header(EXCERPT)
  assert len(real.signals) == len(LAYOUT)
  for ours, theirs in zip(LAYOUT, real.signals):
    assert ours == theirs  # label, transducer, unit, ranges, prefilter, samples per record
  assert real.record_duration == edf_writer.SLEEP_EDF_RECORD_SECONDS
  # Written with the real file's identification fields, the whole header is byte-identical.
  path = str(tmp_path / "SC4001E0-PSG.edf")
  edf_writer.write_edf(path, _night(300), **_header_kwargs(real))
  with open(path, "rb") as ours, open(EXCERPT, "rb") as theirs:
    assert ours.read(256 * 8) == theirs.read(256 * 8)
  assert os.path.getsize(path) == os.path.getsize(EXCERPT)


def test_real_excerpt_rewritten_from_its_samples_is_byte_identical(tmp_path):
  """Its digital values come back exactly: our physical -> digital inverts the reader's."""
  if not os.path.exists(EXCERPT):
    pytest.skip("../shared/sleep-edf not present")
  real = edf_reader.read_header(EXCERPT)
  with pyedflib.EdfReader(EXCERPT) as reader:
    signals = [edf_writer.Signal(h, reader.readSignal(i)) for i, h in enumerate(real.signals)]
  path = str(tmp_path / "copy.edf")
  edf_writer.write_edf(path, signals, **_header_kwargs(real))
  assert open(path, "rb").read() == open(EXCERPT, "rb").read()


@pytest.mark.skipif(not REAL_HYPNOGRAMS, reason="../shared/sleep-edf not present")
def test_hypnograms_written_from_the_real_annotations_are_byte_identical(tmp_path):
  assert len(REAL_HYPNOGRAMS) == 39
  for real in REAL_HYPNOGRAMS:
    path = str(tmp_path / os.path.basename(real))
    edf_writer.write_hypnogram(path, edf_reader.read_annotations(real),
                               **_header_kwargs(edf_reader.read_header(real)))
    assert open(path, "rb").read() == open(real, "rb").read(), real


def test_hypnogram_reads_back_with_pyedflib_and_our_parser(tmp_path):
  annotations = [
      edf_reader.Annotation(0, 30630, "Sleep stage W"),
      edf_reader.Annotation(30630, 120, "Sleep stage 1"),
      edf_reader.Annotation(30750, 0.5, "Sleep stage 2"),
      edf_reader.Annotation(30750.25, -1, "Lights off"),  # no duration
      edf_reader.Annotation(123456789, 30, "Sleep stage ?"),  # no exponent in the text
  ]
  path = str(tmp_path / "SC4001EC-Hypnogram.edf")
  edf_writer.write_hypnogram(path, annotations)
  assert edf_reader.read_annotations(path) == annotations  # pyedflib
  assert edf_reader.read_annotations(path, use_pyedflib=False) == annotations
  header = edf_reader.read_header(path)
  assert header.reserved == "EDF+C" and header.num_records == 1 and header.record_duration == 0
  data = open(path, "rb").read()[512:]
  assert data.startswith(b"+0\x14\x14\x00+0\x1530630\x14Sleep stage W\x14\x00")
  assert b"+123456789\x1530\x14Sleep stage ?\x14\x00" in data
  assert b"+30750.25\x14Lights off\x14\x00" in data


def test_annotation_text_with_a_tal_separator_is_refused(tmp_path):
  with pytest.raises(ValueError, match="separator"):
    edf_writer.write_hypnogram(str(tmp_path / "h.edf"),
                               [edf_reader.Annotation(0, 30, "Sleep\x14stage W")])
  assert not os.listdir(tmp_path)


def test_the_final_name_appears_only_when_the_file_is_complete(tmp_path, monkeypatch):
  path = str(tmp_path / "a.edf")
  seen = []

  def spy(source, destination):
    seen.append((os.path.getsize(source), os.path.exists(destination)))
    real_commit(source, destination)

  real_commit = storage.commit
  monkeypatch.setattr(storage, "commit", spy)
  edf_writer.write_edf(path, _night(60))
  assert seen == [(os.path.getsize(path), False)]
  assert os.path.getsize(path) == 256 * 8 + 2 * 2 * (3 * 3000 + 4 * 30)


def _with_first(signals, header=None, data=None):
  """The signals with the first one's header or data replaced."""
  first = edf_writer.Signal(header or signals[0].header, signals[0].data if data is None else data)
  return [first] + signals[1:]


@pytest.mark.parametrize("change,message", [
    (lambda s: _with_first(s, data=s[0].data[:-1]), "whole number of records"),
    (lambda s: _with_first(s, data=np.full(len(s[0].data), np.nan)), "NaN"),
    (lambda s: _with_first(s, header=dataclasses.replace(s[0].header, label="EEG µV")),
     "printable ASCII"),
    (lambda s: _with_first(s, header=dataclasses.replace(s[0].header, physical_max=-192)),
     "physical minimum equals maximum"),
    (lambda s: _with_first(s, header=dataclasses.replace(s[0].header, digital_max=40000)),
     "digital max"),
    (lambda s: [], "at least one signal"),
],
                         ids=["length", "nan", "non-ascii", "flat range", "digital", "none"])
def test_invalid_signals_are_refused_and_nothing_is_written(tmp_path, change, message):
  with pytest.raises(ValueError, match=message):
    edf_writer.write_edf(str(tmp_path / "x.edf"), change(_night(60)))
  assert not os.listdir(tmp_path)


def test_malformed_start_date_is_refused(tmp_path):
  with pytest.raises(ValueError, match="startdate"):
    edf_writer.write_edf(str(tmp_path / "x.edf"), _night(30), startdate="1989-04-24")
