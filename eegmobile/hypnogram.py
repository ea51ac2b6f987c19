"""Hypnogram annotations -> one stage label per 30 s epoch (pure functions).

Every epoch of the PSG gets exactly one fate: kept with its stage, or dropped and counted
under one reason: "Sleep stage ?" / "Movement time" (scored as such), "unscored" (no
annotation covers it) or "wake trimmed" (wake further than `wake_edge_minutes` from the
first or last sleep epoch). Annotation time past the end of the PSG is cut off and
reported as `cropped_seconds` (Sleep-EDF SC hypnograms run to 86400 s, past their PSG,
with a trailing "Sleep stage ?").

Wake trimming keeps the epochs from `first_sleep - edge` to `last_sleep + edge` inclusive
(edge = wake_edge_minutes * 60 / epoch_seconds epochs), the convention of DeepSleepNet's
`prepare_physionet.py`, clipped to the PSG.
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np

from eegmobile import errors
from eegmobile import stages

UNSCORED = "unscored"
WAKE_TRIMMED = "wake trimmed"
_UNSCORED_CODE = -1
# Dropped annotation -> negative code used in the per-epoch table.
_DROPPED_CODE = {name: -2 - i for i, name in enumerate(stages.DROPPED_ANNOTATIONS)}
_REASON_OF_CODE = {_UNSCORED_CODE: UNSCORED, **{c: n for n, c in _DROPPED_CODE.items()}}


@dataclasses.dataclass(frozen=True)
class EpochLabels:
  """The kept epochs of one night and what happened to the others."""
  labels: np.ndarray  # int64 stage index per kept epoch
  epoch_indices: np.ndarray  # int64 index of each kept epoch in the PSG
  dropped: dict  # reason -> number of PSG epochs dropped for it
  num_psg_epochs: int
  cropped_seconds: float


def scored_duration(annotations: Sequence) -> float:
  """The recording length a hypnogram describes: where a trailing "Sleep stage ?" starts,
  else where the last annotation ends. Synthetic PSGs are made this long."""
  if not annotations:
    return 0.0
  last = max(annotations, key=lambda a: a.onset)
  if last.description == "Sleep stage ?":
    return float(last.onset)
  return float(max(a.onset + max(a.duration, 0.0) for a in annotations))


def _on_grid(value: float, epoch_seconds: float) -> bool:
  return abs(value / epoch_seconds - round(value / epoch_seconds)) < 1e-6


def _epoch_table(annotations: Sequence, num_epochs: int, epoch_seconds: float,
                 psg_duration_s: float, source: Optional[str]) -> tuple[np.ndarray, float]:
  """Per-epoch codes (stage index >= 0, negative = dropped) and seconds cropped at the end."""
  unknown = sorted({
      a.description
      for a in annotations
      if a.description not in stages.STAGE_OF_ANNOTATION and a.description not in _DROPPED_CODE
  })
  if unknown:
    raise errors.HypnogramError(
        source,
        "unknown annotation label(s) " + ", ".join(repr(u) for u in unknown) + "; expected " +
        ", ".join(list(stages.STAGE_OF_ANNOTATION) + list(stages.DROPPED_ANNOTATIONS)))
  table = np.full(num_epochs, _UNSCORED_CODE, np.int64)
  cropped = 0.0
  for a in annotations:
    if not (_on_grid(a.onset, epoch_seconds) and _on_grid(a.duration, epoch_seconds)):
      raise errors.HypnogramError(
          source, f"annotation {a.description!r} at {a.onset:g} s "
          f"lasting {a.duration:g} s is not on the {epoch_seconds:g} s "
          "epoch grid")
    end = a.onset + a.duration
    scored = a.description in stages.STAGE_OF_ANNOTATION
    if scored and end > psg_duration_s + epoch_seconds:
      raise errors.HypnogramError(
          source, f"{a.description!r} is scored until {end:g} s but "
          f"the PSG ends at {psg_duration_s:g} s: hypnogram and PSG do "
          "not belong together?")
    cropped += max(0.0, end - max(a.onset, num_epochs * epoch_seconds))
    first, last = int(round(a.onset / epoch_seconds)), int(round(end / epoch_seconds))
    first, last = min(first, num_epochs), min(last, num_epochs)
    if (table[first:last] != _UNSCORED_CODE).any():
      raise errors.HypnogramError(
          source, f"annotation {a.description!r} at {a.onset:g} s "
          "overlaps an earlier one")
    table[first:last] = (stages.STAGE_OF_ANNOTATION[a.description]
                         if scored else _DROPPED_CODE[a.description])
  return table, cropped


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
    errors.HypnogramError: unknown labels, annotations off the epoch grid, overlapping,
      or not fitting the PSG.
  """
  num_epochs = int(psg_duration_s // epoch_seconds)
  table, cropped = _epoch_table(annotations, num_epochs, epoch_seconds, psg_duration_s, source)
  if num_epochs and not (table >= 0).any():
    raise errors.HypnogramError(
        source, f"no stage is scored inside the PSG's "
        f"{psg_duration_s:g} s: hypnogram and PSG do not fit")
  keep = table >= 0
  trimmed = np.zeros(num_epochs, bool)
  if wake_edge_minutes is not None:
    sleep = np.flatnonzero(table > stages.W)
    edge = int(round(wake_edge_minutes * 60 / epoch_seconds))
    window = np.zeros(num_epochs, bool)
    if len(sleep):
      window[max(0, sleep[0] - edge):sleep[-1] + edge + 1] = True
    trimmed = keep & ~window
    keep &= window
  dropped = {reason: int(np.sum(table == code)) for code, reason in _REASON_OF_CODE.items()}
  dropped[WAKE_TRIMMED] = int(trimmed.sum())
  indices = np.flatnonzero(keep).astype(np.int64)
  return EpochLabels(labels=table[indices],
                     epoch_indices=indices,
                     dropped={
                         k: v for k, v in sorted(dropped.items()) if v
                     },
                     num_psg_epochs=num_epochs,
                     cropped_seconds=cropped)
