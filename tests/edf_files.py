"""Tiny EDF files written at test time with pyedflib (an implementation independent of ours).

Both kinds of file start at START (pyedflib would stamp the current time), so a PSG and a
hypnogram written by these functions belong together.
"""

import datetime

import numpy as np
import pyedflib

START = datetime.datetime(1985, 1, 1)  # edf_writer's default start, too


def write_psg(path,
              *,
              seconds=300,
              fs=100,
              channels=("EEG Fpz-Cz", "EEG Pz-Oz"),
              unit="uV",
              signal=None,
              seed=0,
              physical_range=200.0):
  """A PSG with the given channels; returns the physical signal of the first channel."""
  rng = np.random.default_rng(seed)
  n = int(seconds * fs)
  data = [
      rng.normal(0, 20, n) if signal is None or i else np.asarray(signal, float)
      for i in range(len(channels))
  ]
  headers = [{
      "label": label,
      "dimension": unit,
      "sample_frequency": fs,
      "physical_min": -physical_range,
      "physical_max": physical_range,
      "digital_min": -32768,
      "digital_max": 32767,
      "transducer": "",
      "prefilter": ""
  } for label in channels]
  with pyedflib.EdfWriter(str(path), len(channels), file_type=pyedflib.FILETYPE_EDF) as w:
    w.setStartdatetime(START)
    w.setSignalHeaders(headers)
    w.writeSamples(data)
  return data[0]


def write_hypnogram(path, annotations):
  """An EDF+ annotation-only file like Sleep-EDF's (onset, duration, description)."""
  with pyedflib.EdfWriter(str(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
    w.setStartdatetime(START)
    for onset, duration, text in annotations:
      w.writeAnnotation(onset, duration, text)
