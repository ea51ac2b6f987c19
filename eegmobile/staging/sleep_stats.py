"""Sleep statistics of one night from its per-epoch hypnogram (pure functions).

The hypnogram is one integer a 30 s epoch (`stages.STAGES` indices: W 0, N1 1, N2 2,
N3 3, REM 4; `unscored`, -1 by default, for an epoch without a stage), covering the
recording from lights-off (its first epoch) to lights-on (its last) without gaps. Sleep
means N1, N2, N3 or REM. All durations are in minutes (epochs x epoch length / 60).

Definitions (AASM scoring manual terms, Iber 2007; aligned with YASA's
`Hypnogram.sleep_statistics`, github.com/raphaelvallat/yasa, yasa/hypno.py, where noted):

* tib_min, time in bed: the whole hypnogram, unscored epochs included (YASA: TIB).
* spt_min, sleep period time: from sleep onset (the first sleep epoch) to the last sleep
  epoch, both included; 0 without sleep (YASA: SPT).
* tst_min, total sleep time: all N1 + N2 + N3 + REM epochs (all lie inside the SPT).
  Unscored epochs never count as sleep (YASA: TST, since its v0.5).
* waso_min, wake after sleep onset: W epochs inside the SPT; 0 without sleep (YASA
  gives NaN there). Inside the SPT, SPT = TST + WASO + its unscored epochs.
* sol_min, sleep onset latency: start of the recording to sleep onset, i.e. the number of
  epochs before the first sleep epoch, unscored ones included; None without sleep
  (YASA: SOL).
* rem_latency_min: sleep onset to the first REM epoch (the AASM definition); None
  without REM. YASA's Lat_REM is measured from the start of the recording instead: it
  equals sol_min + rem_latency_min.
* sleep_efficiency_pct: 100 x TST / TIB; 0 without sleep (YASA: SE).
* sleep_maintenance_efficiency_pct: 100 x TST / SPT; None without sleep (YASA: SME).
* stage_min: minutes of each stage over the whole recording, W included (wake before
  sleep onset and after the final awakening too; YASA: WAKE, N1, N2, N3, REM).
* stage_pct_of_tst: N1, N2, N3 and REM as percent of TST (they sum to 100); None each
  without sleep (YASA: %N1 ... %REM).
* wake_pct_of_tib: all W as percent of TIB, so that wake_pct_of_tib +
  sleep_efficiency_pct + 100 x unscored_min / tib_min = 100. (YASA gives no W percent;
  of TIB, not of TST, because W is not part of TST.)
* awakenings: runs of consecutive W epochs inside the SPT (so each begins after and ends
  before a sleep or unscored epoch) at least `min_awakening_epochs` long. An unscored
  epoch ends a run: W W ? W is two runs. With the default of 1 epoch and no unscored
  epochs this is the number of sleep-to-W transitions, the numerator of YASA's SFI.
  Wake before sleep onset and after the last sleep epoch is not an awakening.
* unscored_min: epochs with the `unscored` value, anywhere in the recording.
"""

import functools
from typing import Optional, Sequence, Union

import numpy as np

from eegmobile import stages

UNSCORED = -1
SLEEP_STAGES: tuple[int, ...] = (stages.N1, stages.N2, stages.N3, stages.REM)


def _minutes(epochs: int, epoch_seconds: float) -> float:
  return float(epochs) * epoch_seconds / 60.0


def _percent(part: float, whole: float) -> Optional[float]:
  return 100.0 * part / whole if whole > 0 else None


def _as_hypnogram(hypnogram: Union[Sequence[int], np.ndarray], unscored: int) -> np.ndarray:
  """The hypnogram as int64, checked: 1-D, not empty, stage indices or `unscored` only."""
  array = np.asarray(hypnogram)
  if array.ndim != 1 or array.size == 0:
    raise ValueError(f"a hypnogram is a non-empty 1-D array of stages, got shape {array.shape}")
  if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and
                                       not np.array_equal(array, np.round(array))):
    raise ValueError(f"a hypnogram holds integer stage indices, got {array.dtype} values")
  array = array.astype(np.int64)
  allowed = list(range(stages.NUM_STAGES)) + [unscored]
  bad = np.setdiff1d(array, allowed)
  if bad.size:
    raise ValueError(f"hypnogram values {bad.tolist()} are neither a stage index "
                     f"(0..{stages.NUM_STAGES - 1}) nor the unscored value {unscored}")
  return array


def wake_runs(hypnogram: np.ndarray) -> list[tuple[int, int]]:
  """(first epoch, length) of each maximal run of consecutive W epochs.

  Args:
    hypnogram: 1-D int stage array.

  Returns:
    The runs in order, as (index of the first W epoch, number of epochs).
  """
  is_wake = np.concatenate(([False], np.asarray(hypnogram) == stages.W, [False]))
  edges = np.flatnonzero(np.diff(is_wake.astype(np.int8)))
  starts, ends = edges[0::2], edges[1::2]
  return [(int(s), int(e - s)) for s, e in zip(starts, ends)]


def sleep_statistics(hypnogram: Union[Sequence[int], np.ndarray],
                     *,
                     epoch_seconds: float = 30.0,
                     unscored: int = UNSCORED,
                     min_awakening_epochs: int = 1) -> dict:
  """Sleep statistics of one night (definitions in the module docstring).

  Args:
    hypnogram: one stage index (0..4, `stages.STAGES`) or `unscored` per epoch, from
      lights-off to lights-on.
    epoch_seconds: epoch length.
    unscored: the value of an epoch without a stage (must not be a stage index).
    min_awakening_epochs: shortest run of W inside the sleep period that counts as an
      awakening.

  Returns:
    A JSON-serialisable dict (floats, ints, None; no NaN): num_epochs, epoch_seconds,
    min_awakening_epochs, tib_min, spt_min, tst_min, waso_min, sol_min, rem_latency_min,
    sleep_efficiency_pct, sleep_maintenance_efficiency_pct, stage_min {W..REM},
    stage_pct_of_tst {N1..REM}, wake_pct_of_tib, awakenings, unscored_min. A night
    without sleep has sol_min, rem_latency_min, the SME and the stage percentages None,
    spt_min, tst_min, waso_min and awakenings 0, and sleep efficiency 0.

  Raises:
    ValueError: an empty or non-1-D hypnogram, a value that is neither a stage index nor
      `unscored`, a stage index used as `unscored`, a non-positive epoch length or a
      minimum awakening below 1 epoch.
  """
  if 0 <= unscored < stages.NUM_STAGES:
    raise ValueError(f"the unscored value {unscored} is a stage index ({stages.STAGES[unscored]})")
  if not epoch_seconds > 0:
    raise ValueError(f"epoch_seconds must be positive, got {epoch_seconds}")
  if min_awakening_epochs < 1:
    raise ValueError(f"min_awakening_epochs must be >= 1, got {min_awakening_epochs}")
  hypnogram = _as_hypnogram(hypnogram, unscored)
  minutes = functools.partial(_minutes, epoch_seconds=epoch_seconds)
  counts = {s: int(np.sum(hypnogram == i)) for i, s in enumerate(stages.STAGES)}
  sleep = np.flatnonzero(np.isin(hypnogram, SLEEP_STAGES))
  tib, tst = minutes(len(hypnogram)), minutes(len(sleep))
  if len(sleep):
    onset, last = int(sleep[0]), int(sleep[-1])
    period = hypnogram[onset:last + 1]
    spt, waso, sol = minutes(len(period)), minutes(np.sum(period == stages.W)), minutes(onset)
    rem = np.flatnonzero(period == stages.REM)
    rem_latency = minutes(rem[0]) if len(rem) else None
    # Runs inside the period: it starts and ends with sleep, so none touches its edges.
    awakenings = sum(length >= min_awakening_epochs for _, length in wake_runs(period))
  else:
    spt, waso, sol, rem_latency, awakenings = 0.0, 0.0, None, None, 0
  return {
      "num_epochs": int(len(hypnogram)),
      "epoch_seconds": float(epoch_seconds),
      "min_awakening_epochs": int(min_awakening_epochs),
      "tib_min": tib,
      "spt_min": spt,
      "tst_min": tst,
      "waso_min": waso,
      "sol_min": sol,
      "rem_latency_min": rem_latency,
      "sleep_efficiency_pct": 100.0 * tst / tib,
      "sleep_maintenance_efficiency_pct": _percent(tst, spt),
      "stage_min": {
          s: minutes(n) for s, n in counts.items()
      },
      "stage_pct_of_tst": {
          stages.STAGES[i]: _percent(minutes(counts[stages.STAGES[i]]), tst) for i in SLEEP_STAGES
      },
      "wake_pct_of_tib": 100.0 * minutes(counts["W"]) / tib,
      "awakenings": int(awakenings),
      "unscored_min": minutes(int(np.sum(hypnogram == unscored))),
  }
