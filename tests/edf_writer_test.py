"""Tests for eegmobile.edf_writer: pyedflib reads our files; the layout matches the real one."""

import os

import numpy as np
import pyedflib
import pytest

from eegmobile import edf_reader
from eegmobile import edf_writer

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")


def _night(seconds, seed=0):
  rng = np.random.default_rng(seed)
  return [
      rng.uniform(s.physical_min, s.physical_max, int(seconds * s.samples_per_record / 30))
      for s in edf_writer.SLEEP_EDF_SC_LAYOUT
  ]


def test_pyedflib_reads_back_what_we_write(tmp_path):
  path = str(tmp_path / "SC4001E0-PSG.edf")
  signals = _night(90)
  edf_writer.write_edf(path, edf_writer.SLEEP_EDF_SC_LAYOUT, signals, record_duration=30)
  with pyedflib.EdfReader(path) as reader:
    assert reader.getSignalLabels() == [s.label for s in edf_writer.SLEEP_EDF_SC_LAYOUT]
    assert list(reader.getSampleFrequencies()) == [100] * 3 + [1] * 4
    for i, spec in enumerate(edf_writer.SLEEP_EDF_SC_LAYOUT):
      step = (spec.physical_max - spec.physical_min) / (spec.digital_max - spec.digital_min)
      np.testing.assert_allclose(reader.readSignal(i), signals[i], atol=step)
  assert not os.path.exists(path + ".part")


def test_layout_equals_the_real_excerpts_header(tmp_path):
  excerpt = os.path.join(SHARED, "excerpt", "SC4001E0-PSG.first300s.edf")
  if not os.path.exists(excerpt):
    pytest.skip("../shared/sleep-edf not present")
  real = edf_reader.read_header(excerpt)
  path = str(tmp_path / "ours.edf")
  edf_writer.write_edf(path,
                       edf_writer.SLEEP_EDF_SC_LAYOUT,
                       _night(300),
                       record_duration=30,
                       patient=real.patient,
                       recording=real.recording,
                       startdate=real.startdate,
                       starttime=real.starttime)
  ours = edf_reader.read_header(path)
  for a, b in zip(ours.signals, real.signals):
    assert a == b
  assert open(path, "rb").read(256 * 8) == open(excerpt, "rb").read(256 * 8)  # whole header
  assert os.path.getsize(path) == os.path.getsize(excerpt)


def test_hypnogram_round_trip_with_a_real_one(tmp_path):
  real = os.path.join(SHARED, "sleep-cassette", "SC4001EC-Hypnogram.edf")
  if not os.path.exists(real):
    pytest.skip("../shared/sleep-edf not present")
  annotations = edf_reader.read_annotations(real)
  header = edf_reader.read_header(real)
  path = str(tmp_path / "SC4001EC-Hypnogram.edf")
  edf_writer.write_hypnogram(path,
                             annotations,
                             patient=header.patient,
                             recording=header.recording,
                             startdate=header.startdate,
                             starttime=header.starttime)
  assert edf_reader.read_annotations(path) == annotations
  with pyedflib.EdfReader(path) as reader:
    assert len(reader.readAnnotations()[0]) == len(annotations)
  # Same fixed header; the real file zero-pads its annotation record to a larger size.
  assert open(path, "rb").read(184) == open(real, "rb").read(184)


def test_unequal_signal_lengths_are_refused(tmp_path):
  signals = _night(60)
  signals[3] = signals[3][:-1]
  with pytest.raises(ValueError, match="whole number of records"):
    edf_writer.write_edf(str(tmp_path / "x.edf"),
                         edf_writer.SLEEP_EDF_SC_LAYOUT,
                         signals,
                         record_duration=30)
