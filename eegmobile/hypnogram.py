"""Hypnogram annotations -> one stage label per 30 s epoch (pure functions).

Epoch i of a PSG covers [i * epoch_seconds, (i + 1) * epoch_seconds); only whole epochs
inside the PSG exist (floor(psg_duration / epoch_seconds) of them). Every epoch gets
exactly one fate: kept with its stage (S1->N1, S2->N2, S3 and S4->N3, R->REM, W), or
dropped and counted under one reason: "Sleep stage ?" / "Movement time" (scored as such),
"unscored" (no annotation covers it) or "wake trimmed" (wake further than
`wake_edge_minutes` from the first or last sleep epoch). Annotation time past the last
whole epoch is cut off and reported as `cropped_seconds` (Sleep-EDF SC hypnograms run
to 86400 s, past their PSG, with a trailing "Sleep stage ?").

Wake trimming keeps the epochs from `first_sleep - edge` to `last_sleep + edge`
inclusive, edge = floor(wake_edge_minutes * 60 / epoch_seconds) epochs of *recording
time*, clipped to the PSG; sleep means N1, N2, N3 or REM. A night without any sleep
epoch has no window, so with trimming on it keeps nothing (all its wake is counted as
"wake trimmed"): there is no sleep period to keep wake around, and such a night is far
more likely a failed recording or a mismatched hypnogram than training data.

On the 39 Sleep-EDF-20 hypnograms this gives W 8284 (N1 2804, N2 17799, N3 5703,
REM 7717). DeepSleepNet's `prepare_physionet.py` publishes W 8285: it deletes the
"?"/movement epochs first and then counts the 60 epochs in the shortened sequence, so a
deleted epoch inside a window lets that window reach one wake epoch further. That
happens once: SC4092EC scores "Movement time" on the epoch right after its last sleep
epoch (1892, S2; 1893, movement; 1894-2054, W). Our window after sleep is the 60 epochs
of recording 1893-1952: 1 movement (dropped) + 59 W. DeepSleepNet's is 60 entries of the
sequence without the movement epoch: W 1894-1953, 60 W. It is not the end of the
recording: no night's window reaches the end of its PSG, and a PSG one epoch longer
gives the same counts. `tests/hypnogram_test.py` reproduces both numbers.
"""

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from eegmobile import errors
from eegmobile import stages

UNKNOWN_STAGE = "Sleep stage ?"
UNSCORED = "unscored"
WAKE_TRIMMED = "wake trimmed"
_UNSCORED_CODE = -1
# Dropped annotation -> negative code in the per-epoch table.
_DROPPED_CODE = {name: -2 - i for i, name in enumerate(stages.DROPPED_ANNOTATIONS)}
_REASON_OF_CODE = {_UNSCORED_CODE: UNSCORED, **{c: n for n, c in _DROPPED_CODE.items()}}
_GRID_TOLERANCE = 1e-6  # in epochs: onsets are decimal text, parsed to floats


@dataclasses.dataclass(frozen=True)
class EpochLabels:
  """The kept epochs of one night and what happened to the others.

  Attributes:
    labels: int64 stage index (see `stages.STAGES`) of each kept epoch.
    epoch_indices: int64 index of each kept epoch in the PSG (onset = index x epoch
      length), increasing.
    dropped: reason -> number of PSG epochs dropped for it (reasons with 0 left out).
    num_psg_epochs: whole epochs in the PSG; kept + dropped == num_psg_epochs.
    cropped_seconds: annotation time past the last whole epoch of the PSG, cut off.
  """
  labels: np.ndarray
  epoch_indices: np.ndarray
  dropped: dict[str, int]
  num_psg_epochs: int
  cropped_seconds: float


def scored_duration(annotations: Sequence) -> float:
  """The length of recording a hypnogram describes.

  Sleep-EDF SC hypnograms end with a "Sleep stage ?" that runs past the end of the PSG
  to 86400 s; where the hypnogram ends with one, its onset is the PSG's end.

  Args:
    annotations: the hypnogram's annotations (onset, duration, description).

  Returns:
    The onset of a trailing "Sleep stage ?" (the annotation with the latest onset), else
    the end of the annotation that ends last; 0 for no annotations.
  """
  if not annotations:
    return 0.0
  last = max(annotations, key=lambda a: a.onset)
  if last.description == UNKNOWN_STAGE:
    return float(last.onset)
  return float(max(a.onset + max(a.duration, 0.0) for a in annotations))


def _on_grid(seconds: float, epoch_seconds: float) -> bool:
  epochs = seconds / epoch_seconds
  return abs(epochs - round(epochs)) < _GRID_TOLERANCE


def _check_labels(annotations: Sequence, source: Optional[str]) -> None:
  known = set(stages.STAGE_OF_ANNOTATION) | set(stages.DROPPED_ANNOTATIONS)
  unknown = sorted({a.description for a in annotations} - known)
  if unknown:
    raise errors.HypnogramError(
        source, "unknown annotation label(s) " + ", ".join(repr(u) for u in unknown) +
        "; expected " + ", ".join(repr(k) for k in sorted(known)))


def _check_timing(annotations: Sequence, epoch_seconds: float, psg_duration_s: float,
                  source: Optional[str]) -> None:
  """Grid, positive durations, no overlap, nothing but '?' more than an epoch past the PSG."""
  previous = None
  for a in sorted(annotations, key=lambda a: a.onset):
    where = f"{a.description!r} at {a.onset:g} s"
    if a.duration <= 0 or a.onset < 0:
      raise errors.HypnogramError(
          source, f"{where} has onset {a.onset:g} s and duration {a.duration:g} s; "
          "stages need a non-negative onset and a positive duration")
    if not (_on_grid(a.onset, epoch_seconds) and _on_grid(a.duration, epoch_seconds)):
      raise errors.HypnogramError(
          source, f"{where} lasting {a.duration:g} s is not on the "
          f"{epoch_seconds:g} s epoch grid")
    if previous is not None and a.onset < previous.onset + previous.duration - 1e-6:
      raise errors.HypnogramError(
          source, f"{where} overlaps {previous.description!r} at "
          f"{previous.onset:g}-{previous.onset + previous.duration:g} s")
    end = a.onset + a.duration
    if a.description != UNKNOWN_STAGE and end > psg_duration_s + epoch_seconds + 1e-6:
      raise errors.HypnogramError(
          source, f"{where} is scored until {end:g} s but the PSG ends at "
          f"{psg_duration_s:g} s: hypnogram and PSG do not belong together?")
    previous = a


def _epoch_table(annotations: Sequence, num_epochs: int,
                 epoch_seconds: float) -> tuple[np.ndarray, float]:
  """Per-epoch codes (stage index >= 0, negative = dropped) and the seconds cropped."""
  table = np.full(num_epochs, _UNSCORED_CODE, np.int64)
  psg_end, cropped = num_epochs * epoch_seconds, 0.0
  for a in annotations:
    first = min(int(round(a.onset / epoch_seconds)), num_epochs)
    last = min(int(round((a.onset + a.duration) / epoch_seconds)), num_epochs)
    table[first:last] = stages.STAGE_OF_ANNOTATION.get(a.description,
                                                       _DROPPED_CODE.get(a.description))
    cropped += max(0.0, a.onset + a.duration - max(a.onset, psg_end))
  return table, cropped


def _sleep_window(table: np.ndarray, edge_epochs: int) -> np.ndarray:
  """Epochs within edge_epochs of the first and last sleep epoch (none if no sleep)."""
  window = np.zeros(len(table), bool)
  sleep = np.flatnonzero(table > stages.W)
  if len(sleep):
    window[max(0, sleep[0] - edge_epochs):sleep[-1] + edge_epochs + 1] = True
  return window


def label_epochs(annotations: Sequence,
                 *,
                 psg_duration_s: float,
                 epoch_seconds: float = 30.0,
                 wake_edge_minutes: Optional[float] = 30.0,
                 source: Optional[str] = None) -> EpochLabels:
  """Labels a night's 30 s epochs.

  Args:
    annotations: hypnogram annotations (onset, duration, description).
    psg_duration_s: length of the PSG; only whole epochs inside it are labelled.
    epoch_seconds: epoch length.
    wake_edge_minutes: wake kept before the first and after the last sleep epoch;
      None keeps every scored epoch.
    source: the hypnogram's path, for error messages.

  Returns:
    The kept epochs' labels and indices, and the dropped counts per reason.

  Raises:
    errors.HypnogramError: unknown labels; onsets or durations off the epoch grid, not
      positive or overlapping; or a hypnogram that does not fit the PSG (no stage
      scored inside it, or anything but "Sleep stage ?" running more than one epoch
      past its end).
    ValueError: a negative duration or edge, or a non-positive epoch length.
  """
  if epoch_seconds <= 0 or psg_duration_s < 0 or (wake_edge_minutes or 0) < 0:
    raise ValueError(f"need epoch_seconds > 0, psg_duration_s >= 0, wake_edge_minutes >= 0; "
                     f"got {epoch_seconds}, {psg_duration_s}, {wake_edge_minutes}")
  _check_labels(annotations, source)
  _check_timing(annotations, epoch_seconds, psg_duration_s, source)
  num_epochs = int(math.floor(psg_duration_s / epoch_seconds + _GRID_TOLERANCE))
  table, cropped = _epoch_table(annotations, num_epochs, epoch_seconds)
  if not (table >= 0).any():
    raise errors.HypnogramError(
        source, f"no stage is scored inside the PSG's {psg_duration_s:g} s: "
        "hypnogram and PSG do not fit")
  keep = table >= 0
  trimmed = np.zeros(num_epochs, bool)
  if wake_edge_minutes is not None:
    edge = int(math.floor(wake_edge_minutes * 60 / epoch_seconds + _GRID_TOLERANCE))
    trimmed = keep & ~_sleep_window(table, edge)
    keep &= ~trimmed
  dropped = {reason: int(np.sum(table == code)) for code, reason in _REASON_OF_CODE.items()}
  dropped[WAKE_TRIMMED] = int(trimmed.sum())
  indices = np.flatnonzero(keep).astype(np.int64)
  return EpochLabels(labels=table[indices],
                     epoch_indices=indices,
                     dropped={
                         k: v for k, v in sorted(dropped.items()) if v
                     },
                     num_psg_epochs=num_epochs,
                     cropped_seconds=float(cropped))
