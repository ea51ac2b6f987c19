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
EPOCH = 30


def _night(wake_before=100,
           sleep=(("Sleep stage 2", 10), ("Sleep stage R", 5)),
           wake_after=100,
           tail="Sleep stage ?"):
  """Annotations: wake, the given sleep blocks (in epochs), wake, a trailing tail to 86400 s.

  Returns (annotations, end of the scored part in seconds).
  """
  out, t = [], 0
  for text, epochs in (("Sleep stage W", wake_before),) + tuple(sleep) + (
      ("Sleep stage W", wake_after),):
    if epochs:
      out.append(A(t, EPOCH * epochs, text))
      t += EPOCH * epochs
  if tail:
    out.append(A(t, 86400 - t, tail))
  return out, t


def _counts(labelled):
  return dict(zip(stages.STAGES, np.bincount(labelled.labels, minlength=stages.NUM_STAGES)))


def test_scored_duration_stops_at_the_trailing_question_mark():
  annotations, end = _night()
  assert hypnogram.scored_duration(annotations) == end
  assert hypnogram.scored_duration(_night(tail=None)[0]) == end
  assert hypnogram.scored_duration([]) == 0


def test_mapping_and_wake_trimming():
  annotations, end = _night(sleep=(("Sleep stage 1", 2), ("Sleep stage 3", 3), ("Sleep stage 4", 4),
                                   ("Sleep stage R", 1)))
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end)
  # 60 wake epochs (30 min) each side of the 10 sleep epochs
  expected = [stages.W] * 60 + [stages.N1] * 2 + [stages.N3] * 7 + [stages.REM] + [stages.W] * 60
  np.testing.assert_array_equal(labelled.labels, expected)
  np.testing.assert_array_equal(labelled.epoch_indices, np.arange(40, 40 + 130))
  assert labelled.labels.dtype == labelled.epoch_indices.dtype == np.int64
  assert labelled.dropped == {"wake trimmed": 80}
  assert labelled.num_psg_epochs == end // EPOCH
  assert labelled.cropped_seconds == 86400 - end


@pytest.mark.parametrize("wake_before, wake_after, edge_minutes", [(100, 100, 30), (10, 100, 30),
                                                                   (100, 3, 30), (7, 9, 5),
                                                                   (50, 50, 0), (50, 50, 2.75)])
def test_wake_edges_are_clipped_to_the_recording(wake_before, wake_after, edge_minutes):
  annotations, end = _night(wake_before=wake_before, wake_after=wake_after)
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end, wake_edge_minutes=edge_minutes)
  edge = int(edge_minutes * 60 // EPOCH)  # whole epochs within the edge
  kept_w = min(wake_before, edge) + min(wake_after, edge)
  assert _counts(labelled) == {"W": kept_w, "N1": 0, "N2": 10, "N3": 0, "REM": 5}
  assert labelled.epoch_indices[0] == wake_before - min(wake_before, edge)
  assert labelled.dropped.get("wake trimmed", 0) == wake_before + wake_after - kept_w


def test_keep_everything():
  annotations, end = _night()
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end, wake_edge_minutes=None)
  assert len(labelled.labels) == end // EPOCH == labelled.num_psg_epochs
  np.testing.assert_array_equal(labelled.epoch_indices, np.arange(end // EPOCH))
  assert labelled.dropped == {}


def test_a_night_without_sleep_keeps_nothing_when_trimming():
  annotations = [A(0, 600, "Sleep stage W"), A(600, 85800, "Sleep stage ?")]
  trimmed = hypnogram.label_epochs(annotations, psg_duration_s=600)
  assert len(trimmed.labels) == 0 and trimmed.dropped == {"wake trimmed": 20}
  every = hypnogram.label_epochs(annotations, psg_duration_s=600, wake_edge_minutes=None)
  assert _counts(every)["W"] == 20


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
  assert len(labelled.labels) + sum(labelled.dropped.values()) == labelled.num_psg_epochs == 19
  assert 10 not in labelled.epoch_indices and 16 not in labelled.epoch_indices


def test_every_epoch_has_exactly_one_fate():
  annotations, end = _night(sleep=(("Sleep stage 2", 10), ("Movement time", 2), ("Sleep stage 2",
                                                                                 3)))
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end)
  assert len(labelled.labels) + sum(labelled.dropped.values()) == labelled.num_psg_epochs
  assert labelled.dropped == {"Movement time": 2, "wake trimmed": 80}


@pytest.mark.parametrize("short_by", [1, 15, 29, 30])
def test_psg_a_little_shorter_than_the_hypnogram_crops_it(short_by):
  annotations, end = _night()
  labelled = hypnogram.label_epochs(annotations,
                                    psg_duration_s=end - short_by,
                                    wake_edge_minutes=None)
  assert labelled.num_psg_epochs == end // EPOCH - 1  # the partial epoch at the end is not used
  assert labelled.epoch_indices.max() == labelled.num_psg_epochs - 1
  assert labelled.cropped_seconds == 86400 - end + EPOCH


def test_psg_longer_than_the_hypnogram_leaves_its_end_unscored():
  annotations, end = _night(tail=None)
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=end + 3 * EPOCH + 10)
  assert labelled.num_psg_epochs == end // EPOCH + 3
  assert labelled.dropped["unscored"] == 3 and labelled.cropped_seconds == 0


def _bad(annotations, message, psg_duration_s=600):
  with pytest.raises(errors.HypnogramError, match=message) as e:
    hypnogram.label_epochs(annotations,
                           psg_duration_s=psg_duration_s,
                           source="x/SC4001EC-Hypnogram.edf")
  assert str(e.value).startswith("x/SC4001EC-Hypnogram.edf: ")


@pytest.mark.parametrize("annotations, message", [
    ([A(0, 60, "Sleep stage W"),
      A(60, 30, "Lights off"),
      A(90, 30, "Lights off")
     ], r"unknown annotation label\(s\) 'Lights off'; expected 'Movement time', "),
    ([A(0, 45, "Sleep stage W")], r"'Sleep stage W' at 0 s lasting 45 s is not on the 30 s"),
    ([A(15, 30, "Sleep stage W")], "not on the 30 s epoch grid"),
    ([A(0, -1, "Sleep stage W")], "a positive duration"),
    ([A(0, 0, "Sleep stage W")], "a positive duration"),
    ([A(-30, 60, "Sleep stage W")], "non-negative onset"),
    ([A(0, 90, "Sleep stage W"), A(60, 30, "Sleep stage 2")
     ], r"'Sleep stage 2' at 60 s overlaps 'Sleep stage W' at 0-90 s"),
    ([A(0, 600, "Sleep stage W"),
      A(600, 300, "Sleep stage ?"),
      A(660, 60, "Sleep stage ?")], "overlaps"),
    ([A(0, 30, "Sleep stage ?"), A(30, 9000, "Sleep stage 2")
     ], r"'Sleep stage 2' at 30 s is scored until 9030 s but the PSG ends at 600 s"),
    ([A(0, 600, "Sleep stage W"), A(600, 60, "Movement time")], "scored until 660 s"),
    ([A(0, 600, "Sleep stage ?")], "no stage is scored inside the PSG's 600 s"),
    ([], "no stage is scored"),
])
def test_bad_hypnograms_are_clear_errors(annotations, message):
  _bad(annotations, message)


def test_one_scored_epoch_past_the_psg_is_tolerated_two_are_not():
  hypnogram.label_epochs([A(0, 630, "Sleep stage W")], psg_duration_s=600)
  _bad([A(0, 660, "Sleep stage W")], "scored until 660 s")


def test_bad_arguments_are_value_errors():
  with pytest.raises(ValueError, match="epoch_seconds > 0"):
    hypnogram.label_epochs([A(0, 30, "Sleep stage W")], psg_duration_s=30, wake_edge_minutes=-1)


# ---------------------------------------------------------------------------------------
# The 39 real Sleep-EDF-20 hypnograms


def _real_hypnograms():
  paths = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if len(paths) != 39:
    pytest.skip("the 39 real Sleep-EDF-20 hypnograms are not in ../shared")
  return [(os.path.basename(p), edf_reader.read_annotations(p)) for p in paths]


def _totals(nights, extra_seconds=0, **kwargs):
  totals = np.zeros(stages.NUM_STAGES, int)
  for _, annotations in nights:
    duration = hypnogram.scored_duration(annotations) + extra_seconds
    labelled = hypnogram.label_epochs(annotations, psg_duration_s=duration, **kwargs)
    totals += np.bincount(labelled.labels, minlength=stages.NUM_STAGES)
  return dict(zip(stages.STAGES, totals.tolist()))


def test_sleep_edf_20_gives_the_published_class_counts():
  totals = _totals(_real_hypnograms())
  print("Sleep-EDF-20, 30 min of wake kept:", totals, sum(totals.values()))
  assert totals == {"W": 8284, "N1": 2804, "N2": 17799, "N3": 5703, "REM": 7717}


def test_sleep_edf_20_counts_without_wake_trimming():
  totals = _totals(_real_hypnograms(), wake_edge_minutes=None)
  print("Sleep-EDF-20, every scored epoch:", totals, sum(totals.values()))
  assert totals == {"W": 72391, "N1": 2804, "N2": 17799, "N3": 5703, "REM": 7717}


def test_the_end_of_the_recording_does_not_change_the_counts():
  nights = _real_hypnograms()
  assert _totals(nights, extra_seconds=EPOCH) == _totals(nights)  # PSG one epoch longer
  for name, annotations in nights:  # no window reaches the end of its PSG
    duration = hypnogram.scored_duration(annotations)
    every = hypnogram.label_epochs(annotations, psg_duration_s=duration, wake_edge_minutes=None)
    last_sleep = every.epoch_indices[every.labels != stages.W][-1]
    assert last_sleep + 60 < every.num_psg_epochs - 1, name


def _deepsleepnet_w(annotations):
  """W kept by DeepSleepNet's prepare_physionet.py, on whole epochs instead of samples:
  delete '?'/movement epochs, then keep 60 entries either side of the first/last sleep."""
  every = hypnogram.label_epochs(annotations,
                                 psg_duration_s=hypnogram.scored_duration(annotations),
                                 wake_edge_minutes=None)
  y = every.labels  # the '?' and movement epochs are already gone
  sleep = np.flatnonzero(y != stages.W)
  start, end = max(sleep[0] - 60, 0), min(sleep[-1] + 60, len(y) - 1)
  return int(np.sum(y[start:end + 1] == stages.W))


def test_the_one_wake_epoch_difference_is_deepsleepnets_shortened_sequence():
  differing, total = [], 0
  for name, annotations in _real_hypnograms():
    theirs = _deepsleepnet_w(annotations)
    ours = hypnogram.label_epochs(annotations,
                                  psg_duration_s=hypnogram.scored_duration(annotations))
    total += theirs
    if theirs != _counts(ours)["W"]:
      differing.append((name, theirs, _counts(ours)["W"]))
  assert total == 8285
  assert differing == [("SC4092EC-Hypnogram.edf", 140, 139)]


def test_sc4092ec_has_movement_right_after_its_last_sleep_epoch():
  annotations = dict(_real_hypnograms())["SC4092EC-Hypnogram.edf"]
  every = hypnogram.label_epochs(annotations,
                                 psg_duration_s=hypnogram.scored_duration(annotations),
                                 wake_edge_minutes=None)
  last_sleep = every.epoch_indices[every.labels != stages.W][-1]
  by_onset = {a.onset: a.description for a in annotations}
  assert (last_sleep, by_onset[(last_sleep + 1) * EPOCH]) == (1892, "Movement time")
  assert by_onset[(last_sleep + 2) * EPOCH] == "Sleep stage W"


def test_scored_durations_of_real_hypnograms_are_whole_epochs():
  for name, annotations in _real_hypnograms():
    duration = hypnogram.scored_duration(annotations)
    assert duration % EPOCH == 0 and 0 < duration < 86400, name
    assert annotations[-1].description == "Sleep stage ?", name
    assert annotations[-1].onset + annotations[-1].duration == 86400, name
