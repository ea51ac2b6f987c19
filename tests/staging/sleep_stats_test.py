"""Tests for eegmobile.sleep_stats: hand-worked hypnograms (30 s epochs, so 1 epoch is
0.5 min), YASA's documented example, and identities on random nights."""

import json

import numpy as np
import pytest

from eegmobile.staging import sleep_stats

W, N1, N2, N3, REM, U = 0, 1, 2, 3, 4, -1  # U: unscored


def _stats(hypnogram, **kwargs):
  stats = sleep_stats.sleep_statistics(hypnogram, **kwargs)
  json.dumps(stats, allow_nan=False)  # JSON-serialisable, no NaN
  return stats


def test_a_normal_night_worked_by_hand():
  #           0  1  2   3   4   5  6   7   8   9    10   11  12 13
  hypnogram = [W, W, N1, N2, N2, W, N2, N3, N3, REM, REM, N2, W, W]
  s = _stats(hypnogram)
  assert s["num_epochs"] == 14 and s["epoch_seconds"] == 30.0
  assert s["tib_min"] == 7.0  # 14 epochs
  assert s["tst_min"] == 4.5  # 9 sleep epochs: 2-4, 6-11
  assert s["spt_min"] == 5.0  # epochs 2..11
  assert s["waso_min"] == 0.5  # epoch 5
  assert s["sol_min"] == 1.0  # 2 epochs before epoch 2
  assert s["rem_latency_min"] == 3.5  # epoch 9 - epoch 2 = 7 epochs
  assert s["sleep_efficiency_pct"] == pytest.approx(100 * 4.5 / 7)
  assert s["sleep_maintenance_efficiency_pct"] == pytest.approx(90.0)
  assert s["stage_min"] == {"W": 2.5, "N1": 0.5, "N2": 2.0, "N3": 1.0, "REM": 1.0}
  assert s["stage_pct_of_tst"] == pytest.approx({
      "N1": 100 / 9,
      "N2": 400 / 9,
      "N3": 200 / 9,
      "REM": 200 / 9
  })
  assert s["wake_pct_of_tib"] == pytest.approx(100 * 5 / 14)
  assert s["awakenings"] == 1  # epoch 5; the wake at 0-1 and 12-13 is outside the SPT
  assert s["unscored_min"] == 0.0


def test_yasa_documented_example():
  # The example of YASA's sleep_statistics docstring (yasa/sleepstats.py, v0.1.9 on):
  # TIB 10, N1 1.5, N2 2, N3 2.5, REM 2, SPT 8, WASO 0, TST 8, %N1 18.75, %N2 25,
  # %N3 31.25, %REM 25, Lat_REM 7 (from the start); SOL 1 and SE 80 (TST / TIB, since
  # v0.5) in today's Hypnogram.sleep_statistics.
  s = _stats([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 2, 3, 3, 4, 4, 4, 4, 0, 0])
  assert (s["tib_min"], s["spt_min"], s["waso_min"], s["tst_min"]) == (10.0, 8.0, 0.0, 8.0)
  assert [s["stage_min"][k] for k in ("N1", "N2", "N3", "REM")] == [1.5, 2.0, 2.5, 2.0]
  assert s["stage_pct_of_tst"] == {"N1": 18.75, "N2": 25.0, "N3": 31.25, "REM": 25.0}
  assert s["sol_min"] == 1.0 and s["sleep_efficiency_pct"] == 80.0
  assert s["sol_min"] + s["rem_latency_min"] == 7.0  # YASA's Lat_REM
  assert s["sleep_maintenance_efficiency_pct"] == 100.0


def test_a_night_without_rem():
  #           0  1   2   3   4  5  6   7   8
  hypnogram = [W, N1, N2, N2, W, W, N2, N3, W]
  s = _stats(hypnogram)
  assert s["rem_latency_min"] is None
  assert s["stage_pct_of_tst"]["REM"] == 0.0  # there is sleep, so 0 % rather than None
  assert (s["tst_min"], s["spt_min"], s["waso_min"], s["sol_min"]) == (2.5, 3.5, 1.0, 0.5)
  assert s["awakenings"] == 1  # one run of 2 epochs
  assert _stats(hypnogram, min_awakening_epochs=2)["awakenings"] == 1
  assert _stats(hypnogram, min_awakening_epochs=3)["awakenings"] == 0


def test_a_night_without_sleep():
  s = _stats([W] * 6 + [U] * 2)
  assert s["tib_min"] == 4.0
  assert (s["tst_min"], s["spt_min"], s["waso_min"], s["awakenings"]) == (0.0, 0.0, 0.0, 0)
  assert s["sleep_efficiency_pct"] == 0.0
  assert s["sol_min"] is None and s["rem_latency_min"] is None
  assert s["sleep_maintenance_efficiency_pct"] is None
  assert s["stage_pct_of_tst"] == {"N1": None, "N2": None, "N3": None, "REM": None}
  assert s["wake_pct_of_tib"] == 75.0 and s["unscored_min"] == 1.0
  nothing_scored = _stats([U, U])
  assert nothing_scored["wake_pct_of_tib"] == 0.0 and nothing_scored["unscored_min"] == 1.0


def test_leading_and_trailing_wake_are_not_awakenings():
  s = _stats([W] * 4 + [N2] * 3 + [W] * 5)
  assert s["sol_min"] == 2.0 and s["spt_min"] == 1.5 and s["waso_min"] == 0.0
  assert s["awakenings"] == 0
  assert s["sleep_efficiency_pct"] == 25.0 and s["sleep_maintenance_efficiency_pct"] == 100.0
  assert s["stage_min"]["W"] == 4.5


def test_sleep_from_the_first_epoch_has_zero_latency():
  s = _stats([REM, N2, W])
  assert s["sol_min"] == 0.0 and s["rem_latency_min"] == 0.0


def test_unscored_epochs():
  #           0  1  2   3   4  5   6  7  8  9    10  11
  hypnogram = [U, W, N1, N2, U, N2, W, U, W, REM, N2, U]
  s = _stats(hypnogram)
  assert s["tib_min"] == 6.0  # unscored epochs are time in bed
  assert s["tst_min"] == 2.5  # epochs 2, 3, 5, 9, 10
  assert s["spt_min"] == 4.5  # epochs 2..10
  assert s["waso_min"] == 1.0  # epochs 6 and 8; the unscored 4 and 7 are neither
  assert s["sol_min"] == 1.0  # the unscored epoch 0 counts towards the latency
  assert s["rem_latency_min"] == 3.5
  assert s["unscored_min"] == 2.0
  assert s["awakenings"] == 2  # W ? W: the unscored epoch ends the first run
  assert s["wake_pct_of_tib"] == 25.0
  assert s["wake_pct_of_tib"] + s["sleep_efficiency_pct"] + 100 * 2.0 / 6.0 == pytest.approx(100)
  other_marker = [9 if v == U else v for v in hypnogram]
  assert _stats(other_marker, unscored=9) == s


def test_single_epoch_awakenings_and_the_minimum_length():
  #           0   1  2   3  4   5  6  7
  hypnogram = [N2, W, N2, W, N2, W, W, N2]
  assert _stats(hypnogram)["awakenings"] == 3
  assert _stats(hypnogram, min_awakening_epochs=2)["awakenings"] == 1
  assert _stats(hypnogram, min_awakening_epochs=3)["awakenings"] == 0
  assert _stats(hypnogram)["waso_min"] == 2.0


def test_epoch_length_scales_durations_only():
  hypnogram = [W, W, N1, N2, N2, W, N2, N3, N3, REM, REM, N2, W, W]
  s30, s20 = _stats(hypnogram), _stats(hypnogram, epoch_seconds=20)
  for key in ("tib_min", "spt_min", "tst_min", "waso_min", "sol_min", "rem_latency_min"):
    assert s20[key] == pytest.approx(s30[key] * 2 / 3), key
  for key in ("sleep_efficiency_pct", "sleep_maintenance_efficiency_pct", "awakenings"):
    assert s20[key] == pytest.approx(s30[key]), key


def test_identities_on_random_nights():
  rng = np.random.default_rng(0)
  for _ in range(50):
    # Runs of random stages, some unscored, so that W runs of several epochs occur.
    runs = rng.integers(-1, 5, rng.integers(1, 40))
    hypnogram = np.repeat(runs, rng.integers(1, 6, len(runs)))
    s = _stats(hypnogram)
    total = sum(s["stage_min"].values()) + s["unscored_min"]
    assert total == pytest.approx(s["tib_min"])
    sleep = np.flatnonzero(hypnogram > 0)
    if not len(sleep):
      assert s["sol_min"] is None
      continue
    period = hypnogram[sleep[0]:sleep[-1] + 1]
    assert s["spt_min"] == pytest.approx(s["tst_min"] + s["waso_min"] + 0.5 * np.sum(period == U))
    assert sum(s["stage_pct_of_tst"].values()) == pytest.approx(100)
    # With nothing unscored in the period, awakenings = sleep-to-W transitions.
    if not (period == U).any():
      transitions = np.sum((period[:-1] > 0) & (period[1:] == W))
      assert s["awakenings"] == transitions


def test_wake_runs():
  assert sleep_stats.wake_runs(np.array([W, W, N1, W, N2, W])) == [(0, 2), (3, 1), (5, 1)]
  assert sleep_stats.wake_runs(np.array([N2, N3])) == []


@pytest.mark.parametrize("hypnogram,kwargs,message", [
    ([], {}, "non-empty 1-D"),
    ([[0, 1], [2, 3]], {}, "non-empty 1-D"),
    ([0, 5, 2], {}, r"values \[5\]"),
    ([0, -2], {}, r"values \[-2\]"),
    ([0.0, 1.5], {}, "integer stage indices"),
    (["W", "N1"], {}, "integer stage indices"),
    ([0, 1], dict(unscored=0), "is a stage index"),
    ([0, 1], dict(epoch_seconds=0), "epoch_seconds"),
    ([0, 1], dict(min_awakening_epochs=0), "min_awakening_epochs"),
])
def test_bad_input_is_refused(hypnogram, kwargs, message):
  with pytest.raises(ValueError, match=message):
    sleep_stats.sleep_statistics(hypnogram, **kwargs)


def test_float_stage_values_are_accepted_when_whole():
  assert _stats(np.array([0.0, 2.0, 2.0]))["tst_min"] == 1.0
