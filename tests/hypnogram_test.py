"""Tests for eegmobile.hypnogram, including the published Sleep-EDF-20 class counts."""

import glob
import os

import numpy as np
import pytest

from eegmobile import edf_reader
from eegmobile import errors
from eegmobile import hypnogram
from eegmobile import stages

A = edf_reader.Annotation
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")


def _night(wake_before=100,
           sleep=(("Sleep stage 2", 10), ("Sleep stage R", 5)),
           wake_after=100,
           tail="Sleep stage ?"):
  """Annotations: wake, the given sleep blocks (in epochs), wake, a trailing tail."""
  out, t = [A(0, 30 * wake_before, "Sleep stage W")], 30 * wake_before
  for text, epochs in sleep:
    out.append(A(t, 30 * epochs, text))
    t += 30 * epochs
  out.append(A(t, 30 * wake_after, "Sleep stage W"))
  t += 30 * wake_after
  if tail:
    out.append(A(t, 86400 - t, tail))
  return out, t


def test_scored_duration_stops_at_the_trailing_question_mark():
  annotations, end = _night()
  assert hypnogram.scored_duration(annotations) == end
  assert hypnogram.scored_duration(_night(tail=None)[0]) == end


def test_mapping_and_wake_trimming():
  annotations, end = _night(sleep=(("Sleep stage 1", 2), ("Sleep stage 3", 3), ("Sleep stage 4", 4),
                                   ("Sleep stage R", 1)))
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end)
  # 60 wake epochs (30 min) each side of the 10 sleep epochs
  expected = [stages.W] * 60 + [stages.N1] * 2 + [stages.N3] * 7 + [stages.REM] + [stages.W] * 60
  np.testing.assert_array_equal(labelled.labels, expected)
  np.testing.assert_array_equal(labelled.epoch_indices, np.arange(40, 40 + 130))
  assert labelled.dropped == {"wake trimmed": 80}
  assert labelled.cropped_seconds == 86400 - end


def test_keep_everything():
  annotations, end = _night()
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end, wake_edge_minutes=None)
  assert len(labelled.labels) == end // 30 == labelled.num_psg_epochs
  assert labelled.dropped == {}


def test_dropped_epochs_are_counted_by_reason():
  annotations = [
      A(0, 300, "Sleep stage W"),
      A(300, 60, "Movement time"),
      A(360, 90, "Sleep stage 2"),
      A(450, 30, "Sleep stage ?"),
      A(510, 60, "Sleep stage W")
  ]  # 480-510 has no annotation
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=570, wake_edge_minutes=None)
  assert labelled.dropped == {"Movement time": 2, "Sleep stage ?": 1, "unscored": 1}
  assert len(labelled.labels) == 19 - 4


def test_psg_a_little_shorter_than_the_hypnogram_crops_it():
  annotations, end = _night(wake_after=100)
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end - 15, wake_edge_minutes=None)
  assert labelled.num_psg_epochs == end // 30 - 1  # the half epoch at the end is not used
  assert labelled.epoch_indices.max() < labelled.num_psg_epochs


@pytest.mark.parametrize("annotations, message", [
    ([A(0, 60, "Sleep stage W"), A(60, 30, "Lights off")], "unknown annotation label"),
    ([A(0, 45, "Sleep stage W")], "not on the 30 s epoch grid"),
    ([A(0, 90, "Sleep stage W"), A(60, 30, "Sleep stage 2")], "overlaps"),
    ([A(0, 30, "Sleep stage ?"), A(30, 9000, "Sleep stage 2")], "PSG ends at 600"),
    ([A(0, 600, "Sleep stage ?")], "no stage is scored"),
])
def test_bad_hypnograms_are_clear_errors(annotations, message):
  with pytest.raises(errors.HypnogramError, match=message) as e:
    hypnogram.label_epochs(annotations, psg_duration_s=600, source="x/SC4001EC-Hypnogram.edf")
  assert str(e.value).startswith("x/SC4001EC-Hypnogram.edf: ")


def _real_hypnograms():
  paths = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if len(paths) != 39:
    pytest.skip("the 39 real Sleep-EDF-20 hypnograms are not in ../shared")
  return paths


def _totals(paths, **kwargs):
  totals = np.zeros(stages.NUM_STAGES, int)
  for path in paths:
    annotations = edf_reader.read_annotations(path)
    labelled = hypnogram.label_epochs(annotations,
                                      psg_duration_s=hypnogram.scored_duration(annotations),
                                      **kwargs)
    totals += np.bincount(labelled.labels, minlength=stages.NUM_STAGES)
  return dict(zip(stages.STAGES, totals.tolist()))


def test_sleep_edf_20_gives_the_published_class_counts():
  totals = _totals(_real_hypnograms())
  assert totals == {"W": 8284, "N1": 2804, "N2": 17799, "N3": 5703, "REM": 7717}


def test_the_one_wake_epoch_difference_is_deepsleepnets_compacted_window():
  """DeepSleepNet removes '?'/movement epochs before counting 60 epochs from the first and
  last sleep epoch, so where a removed epoch sits inside that window its window reaches
  one wake epoch further: SC4092EC, giving 8285. Ours is 30 minutes of recording."""
  differing, compacted_w = [], 0
  for path in _real_hypnograms():
    annotations = edf_reader.read_annotations(path)
    duration = hypnogram.scored_duration(annotations)
    every = hypnogram.label_epochs(annotations, psg_duration_s=duration, wake_edge_minutes=None)
    sleep = np.flatnonzero(every.labels != stages.W)
    window = every.labels[max(sleep[0] - 60, 0):sleep[-1] + 61]
    compacted_w += int(np.sum(window == stages.W))
    ours = hypnogram.label_epochs(annotations, psg_duration_s=duration)
    if np.sum(window == stages.W) != np.sum(ours.labels == stages.W):
      differing.append(os.path.basename(path))
  assert compacted_w == 8285
  assert differing == ["SC4092EC-Hypnogram.edf"]


def test_scored_durations_of_real_hypnograms_are_whole_epochs():
  for path in _real_hypnograms():
    duration = hypnogram.scored_duration(edf_reader.read_annotations(path))
    assert duration % 30 == 0 and 0 < duration < 86400
