"""Files written for one staged night: per-epoch TSV, EDF+ hypnogram, figure, statistics.

Input is what staging a night gives: the onset (seconds from the start of the recording)
of each staged 30 s epoch and its five stage probabilities [n, 5] (`stages.STAGES`
order); the stage of an epoch is its most probable one. Epochs lie on the grid
onset = i x epoch length from the start of the recording, in increasing order; epochs
of the grid that are not given (gaps, or before the first onset) are unstaged. A
recording that does not end on an epoch boundary leaves a trailing partial epoch
(`trailing_seconds`, shorter than an epoch) that is never staged.

* TSV (`write_tsv`): a header row, then one row per staged epoch: onset, duration (s),
  stage (name), p_W, p_N1, p_N2, p_N3, p_REM, confidence (the largest probability).
  Nothing else: a plain table that pandas, BIDS tools and spreadsheets read as it is (a
  trailing partial epoch is recorded in the JSON). With a context stage (issue 17),
  stage, p_* and confidence are the context stage's (what every other output follows),
  and a second column group, `PER_EPOCH_COLUMNS` (per_epoch_stage, per_epoch_p_W ..
  per_epoch_p_REM), holds the per-epoch model's own.
* EDF+ (`write_hypnogram_edf`): an annotation-only EDF+C file laid out like Sleep-EDF's
  hypnograms (`eegmobile.edf_writer.write_hypnogram`), one annotation per run of
  consecutive epochs of one stage: "Sleep stage W", "Sleep stage 1", "Sleep stage 2",
  "Sleep stage 3", "Sleep stage R". N3 is written as "Sleep stage 3": Sleep-EDF's R&K
  S3 and S4 both became N3, and which of the two an N3 epoch would have been is not
  known, so that merge cannot be undone. Unstaged grid epochs (gaps, epochs before the
  first one given) are written as "Sleep stage ?", as Sleep-EDF does. The file ends with
  the last staged epoch: a trailing partial epoch is left out, because a hypnogram's
  annotations stay on the 30 s grid (`eegmobile.hypnogram.label_epochs` refuses others).
  `label_epochs` of the file gives back the staged epochs and their stages. The header
  holds the start date and time and, in its recording field, "eegmobile" and the record.
* PNG (`plot_night`): the hypnogram (W, REM, N1, N2, N3 from top to bottom, REM drawn
  in red) above the hypnodensity (the stage probabilities stacked over time: with a
  context stage, its probabilities, named in the title); time in hours from the start of
  the recording, or clock time when its start is given.
* JSON (`write_statistics`): `eegmobile.staging.sleep_stats.sleep_statistics` of the
  night, and "trailing_partial_epoch" ({"onset", "duration"} in seconds of the unstaged
  end of the recording, or null), canonical (sorted keys, one-space indent, trailing
  newline); with a context stage also "context" (its kind, lag and mode).

Every file is written whole or not at all (`eegmobile.storage`); errors name the file.
"""

import datetime
import json
import os
import re
from typing import Optional, Sequence

import numpy as np

from eegmobile import edf_writer
from eegmobile import plots
from eegmobile import stages
from eegmobile import storage
from eegmobile.edf_reader import Annotation
from eegmobile.staging import sleep_stats

EPOCH_SECONDS = 30.0
UNKNOWN_STAGE = "Sleep stage ?"
ANNOTATION_OF_STAGE: dict[int, str] = {
    stages.W: "Sleep stage W",
    stages.N1: "Sleep stage 1",
    stages.N2: "Sleep stage 2",
    stages.N3: "Sleep stage 3",
    stages.REM: "Sleep stage R",
}
TSV_COLUMNS: tuple[str, ...] = ("onset", "duration", "stage", *(f"p_{s}" for s in stages.STAGES),
                                "confidence")
# With a context stage: the per-epoch model's own stage and probabilities, after TSV_COLUMNS.
PER_EPOCH_COLUMNS: tuple[str,
                         ...] = ("per_epoch_stage", *(f"per_epoch_p_{s}" for s in stages.STAGES))
# Hypnogram rows, top to bottom (the clinical convention: REM just below wake).
HYPNOGRAM_ORDER: tuple[int, ...] = (stages.W, stages.REM, stages.N1, stages.N2, stages.N3)
STAGE_COLORS: dict[int, str] = {
    stages.W: "#f2c14e",
    stages.N1: "#9ecae1",
    stages.N2: "#4292c6",
    stages.N3: "#08306b",
    stages.REM: "#d62728",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_PROBABILITY_TOLERANCE = 1e-3  # rows of a float32 softmax sum to 1 within ~1e-6
_GRID_TOLERANCE = 1e-6  # in epochs


def _format_seconds(seconds: float) -> str:
  return np.format_float_positional(float(seconds), trim="-")


def check_night(path: str,
                onsets: Sequence[float],
                probabilities: np.ndarray,
                *,
                epoch_seconds: float = EPOCH_SECONDS,
                trailing_seconds: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
  """Checks one staged night's arrays.

  Args:
    path: the file about to be written (named in errors).
    onsets: seconds from the start of the recording of each staged epoch.
    probabilities: [n, 5] stage probabilities of each epoch.
    epoch_seconds: epoch length.
    trailing_seconds: unstaged time after the last whole epoch of the recording.

  Returns:
    (onsets float64 [n], probabilities float64 [n, 5]).

  Raises:
    ValueError (message starting with path): no epochs, shapes that do not match,
      onsets not increasing, non-negative or on the epoch grid, probabilities that are
      not finite, negative or do not sum to 1, or a trailing part not shorter than an
      epoch.
  """
  onsets = np.asarray(onsets, np.float64)
  probabilities = np.asarray(probabilities, np.float64)
  problem = None
  if onsets.ndim != 1 or not len(onsets):
    problem = f"need a non-empty 1-D array of epoch onsets, got shape {onsets.shape}"
  elif probabilities.shape != (len(onsets), stages.NUM_STAGES):
    problem = (f"need probabilities of shape ({len(onsets)}, {stages.NUM_STAGES}) for "
               f"{len(onsets)} onsets, got {probabilities.shape}")
  elif not (epoch_seconds > 0 and 0 <= trailing_seconds < epoch_seconds):
    problem = (f"need epoch_seconds > 0 and 0 <= trailing_seconds < epoch_seconds, got "
               f"{epoch_seconds} and {trailing_seconds}")
  elif not np.isfinite(onsets).all() or onsets[0] < 0 or (np.diff(onsets) <= 0).any():
    problem = "epoch onsets must be finite, non-negative and increasing"
  elif (np.abs(onsets / epoch_seconds - np.round(onsets / epoch_seconds)) > _GRID_TOLERANCE).any():
    problem = f"epoch onsets must be multiples of the {epoch_seconds:g} s epoch length"
  elif not np.isfinite(probabilities).all() or (probabilities < 0).any():
    problem = "stage probabilities must be finite and non-negative"
  else:
    worst = int(np.argmax(np.abs(probabilities.sum(axis=1) - 1)))
    if abs(probabilities[worst].sum() - 1) > _PROBABILITY_TOLERANCE:
      problem = (f"the stage probabilities of epoch {worst} (onset {onsets[worst]:g} s) sum "
                 f"to {probabilities[worst].sum():.6g}, not 1")
  if problem:
    raise ValueError(f"{path}: {problem}")
  return onsets, probabilities


def stage_of(probabilities: np.ndarray) -> np.ndarray:
  """The most probable stage index of each epoch (the first one on a tie)."""
  return np.argmax(np.asarray(probabilities), axis=1).astype(np.int64)


def epoch_grid(onsets: np.ndarray, epoch_seconds: float = EPOCH_SECONDS) -> np.ndarray:
  """The grid index (onset / epoch length) of each epoch, as int64."""
  return np.round(np.asarray(onsets, np.float64) / epoch_seconds).astype(np.int64)


def hypnogram_on_grid(onsets: np.ndarray,
                      stage_indices: np.ndarray,
                      *,
                      epoch_seconds: float = EPOCH_SECONDS,
                      unscored: int = sleep_stats.UNSCORED) -> np.ndarray:
  """The per-epoch hypnogram from the start of the recording to the last staged epoch.

  Args:
    onsets: increasing onsets on the epoch grid (see `check_night`).
    stage_indices: stage index of each epoch.
    epoch_seconds: epoch length.
    unscored: the value of a grid epoch that was not staged.

  Returns:
    int64 [last grid index + 1]: the stage of each grid epoch, `unscored` where none.
  """
  grid = epoch_grid(onsets, epoch_seconds)
  hypnogram = np.full(grid[-1] + 1, unscored, np.int64)
  hypnogram[grid] = stage_indices
  return hypnogram


def write_tsv(path: str,
              onsets: Sequence[float],
              probabilities: np.ndarray,
              *,
              epoch_seconds: float = EPOCH_SECONDS,
              per_epoch_probabilities: Optional[np.ndarray] = None) -> None:
  """Writes the per-epoch table (columns `TSV_COLUMNS`; format in the module docstring).

  Args:
    path: the .tsv file to write.
    onsets: seconds from the start of the recording of each staged epoch.
    probabilities: [n, 5] stage probabilities.
    epoch_seconds: epoch length (the duration column).
    per_epoch_probabilities: with a context stage, the per-epoch model's [n, 5]: written
      as the `PER_EPOCH_COLUMNS` group.

  Raises:
    ValueError: bad arrays (see `check_night`); the message starts with path.
    OSError: the file cannot be written.
  """
  onsets, probabilities = check_night(path, onsets, probabilities, epoch_seconds=epoch_seconds)
  duration = _format_seconds(epoch_seconds)
  header = list(TSV_COLUMNS)
  extra = [[] for _ in onsets]
  if per_epoch_probabilities is not None:
    _, per_epoch = check_night(path, onsets, per_epoch_probabilities, epoch_seconds=epoch_seconds)
    header += PER_EPOCH_COLUMNS
    extra = [
        [stages.STAGES[s]] + [f"{v:.6f}" for v in p] for p, s in zip(per_epoch, stage_of(per_epoch))
    ]
  lines = ["\t".join(header)]
  for onset, p, stage, more in zip(onsets, probabilities, stage_of(probabilities), extra):
    lines.append("\t".join([_format_seconds(onset), duration, stages.STAGES[stage]] +
                           [f"{v:.6f}" for v in p] + [f"{p.max():.6f}"] + more))
  storage.write_text(path, "\n".join(lines) + "\n")


def hypnogram_annotations(onsets: Sequence[float],
                          stage_indices: Sequence[int],
                          *,
                          epoch_seconds: float = EPOCH_SECONDS) -> list[Annotation]:
  """Sleep-EDF style annotations: one per run of consecutive epochs of one stage.

  Args:
    onsets: increasing onsets on the epoch grid (see `check_night`).
    stage_indices: stage index of each epoch.
    epoch_seconds: epoch length.

  Returns:
    Annotations in time order covering the recording from 0 s to the end of the last
    epoch; unstaged grid epochs are "Sleep stage ?".
  """
  hypnogram = hypnogram_on_grid(np.asarray(onsets, np.float64),
                                np.asarray(stage_indices),
                                epoch_seconds=epoch_seconds)
  change = np.flatnonzero(np.diff(hypnogram)) + 1
  starts = np.concatenate(([0], change))
  ends = np.concatenate((change, [len(hypnogram)]))
  return [
      Annotation(float(s * epoch_seconds), float((e - s) * epoch_seconds),
                 ANNOTATION_OF_STAGE.get(int(hypnogram[s]), UNKNOWN_STAGE))
      for s, e in zip(starts, ends)
  ]


def _edf_text(text: str) -> str:
  """Text for an EDF+ header subfield: printable ASCII, no spaces."""
  return re.sub(r"[^!-~]", "_", text) or "X"


def write_hypnogram_edf(path: str,
                        onsets: Sequence[float],
                        probabilities: np.ndarray,
                        *,
                        epoch_seconds: float = EPOCH_SECONDS,
                        start: Optional[datetime.datetime] = None,
                        record: Optional[str] = None) -> None:
  """Writes the EDF+ hypnogram of the most probable stages (format in the module docstring).

  Args:
    path: the .edf file to write.
    onsets: seconds from the start of the recording of each staged epoch.
    probabilities: [n, 5] stage probabilities.
    epoch_seconds: epoch length.
    start: the recording's start (header date and time); None writes EDF's 01.01.85
      00.00.00 and "Startdate X".
    record: the record's name, kept in the header's recording field after
      "eegmobile" (spaces and non-ASCII characters become "_"; cut to fit 80 characters).

  Raises:
    ValueError: bad arrays (see `check_night`); the message starts with path.
    OSError: the file cannot be written.
  """
  onsets, probabilities = check_night(path, onsets, probabilities, epoch_seconds=epoch_seconds)
  annotations = hypnogram_annotations(onsets, stage_of(probabilities), epoch_seconds=epoch_seconds)
  # EDF+ dates are dd-MMM-yyyy with English month names, whatever the locale.
  date = f"{start.day:02d}-{_MONTHS[start.month - 1]}-{start.year}" if start else "X"
  recording = f"Startdate {date} X X eegmobile"
  if record:
    recording = f"{recording} {_edf_text(record)}"[:80]
  try:
    edf_writer.write_hypnogram(path,
                               annotations,
                               recording=recording,
                               startdate=start.strftime("%d.%m.%y") if start else "01.01.85",
                               starttime=start.strftime("%H.%M.%S") if start else "00.00.00")
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from e


def plot_night(path: str,
               onsets: Sequence[float],
               probabilities: np.ndarray,
               *,
               epoch_seconds: float = EPOCH_SECONDS,
               start: Optional[datetime.datetime] = None,
               title: Optional[str] = None) -> None:
  """Draws the hypnogram above the hypnodensity, as a PNG.

  Args:
    path: the PNG to write.
    onsets: seconds from the start of the recording of each staged epoch.
    probabilities: [n, 5] stage probabilities.
    epoch_seconds: epoch length.
    start: the recording's start: the time axis shows clock time (else hours from start).
    title: figure title (e.g. the record's name).

  Raises:
    ValueError: bad arrays (see `check_night`); the message starts with path.
    OSError: the file cannot be written.
  """
  plt = plots.pyplot()
  from matplotlib import dates as mdates  # pylint: disable=g-import-not-at-top  # lazy: as pyplot
  onsets, probabilities = check_night(path, onsets, probabilities, epoch_seconds=epoch_seconds)
  hypnogram = hypnogram_on_grid(onsets, stage_of(probabilities), epoch_seconds=epoch_seconds)
  # One x unit is an hour from the start, or a day of matplotlib's date numbers.
  origin, seconds_per_unit = (mdates.date2num(start), 86400.0) if start else (0.0, 3600.0)

  def to_x(seconds):
    return origin + np.asarray(seconds) / seconds_per_unit

  row = {stage: i for i, stage in enumerate(HYPNOGRAM_ORDER)}
  levels = np.array([row.get(int(s), np.nan) for s in hypnogram])  # NaN: unstaged gap
  edges = to_x(np.arange(len(hypnogram) + 1) * epoch_seconds)

  fig, (top, bottom) = plt.subplots(2,
                                    1,
                                    figsize=(11, 5.5),
                                    sharex=True,
                                    constrained_layout=True,
                                    gridspec_kw={"height_ratios": [1, 1.2]})
  top.step(edges, np.append(levels, levels[-1]), where="post", color="black", lw=1)
  rem = hypnogram == stages.REM  # REM drawn over the line, thick and red
  top.hlines(np.full(rem.sum(), row[stages.REM]),
             edges[:-1][rem],
             edges[1:][rem],
             color=STAGE_COLORS[stages.REM],
             lw=4)
  top.set_yticks(range(len(HYPNOGRAM_ORDER)), [stages.STAGES[s] for s in HYPNOGRAM_ORDER])
  top.set_ylim(len(HYPNOGRAM_ORDER) - 0.5, -0.5)  # W on top
  top.set_ylabel("stage")
  # The hypnodensity: each epoch's probabilities stacked, held over its 30 s; an unstaged
  # epoch stacks nothing (left blank).
  density = np.zeros((len(hypnogram) + 1, stages.NUM_STAGES))
  density[epoch_grid(onsets, epoch_seconds)] = probabilities
  density[-1] = density[-2]
  bottom.stackplot(edges,
                   density.T,
                   labels=stages.STAGES,
                   colors=[STAGE_COLORS[i] for i in range(stages.NUM_STAGES)],
                   step="post")
  bottom.set_ylim(0, 1)
  bottom.set_ylabel("probability")
  bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
  if start:
    locator = mdates.AutoDateLocator()
    # Ticks on whole hours or round minutes (by default it may pick 72 minutes).
    locator.intervald[mdates.HOURLY] = [1, 2, 3, 6]
    locator.intervald[mdates.MINUTELY] = [5, 10, 15, 30]
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    bottom.set_xlabel(f"clock time (start {start:%Y-%m-%d %H:%M:%S})")
  else:
    bottom.set_xlabel("hours from the start of the recording")
  bottom.set_xlim(edges[0], edges[-1])
  if title:
    fig.suptitle(title)
  plots.save(fig, path, dpi=100)


def write_statistics(path: str, statistics: dict) -> None:
  """Writes sleep statistics (`sleep_stats.sleep_statistics`) as canonical JSON.

  Args:
    path: the .json file to write.
    statistics: a JSON-serialisable dict without NaN.

  Raises:
    ValueError: statistics that are not JSON-serialisable or hold NaN or infinity (the
      message starts with path).
    OSError: the file cannot be written.
  """
  try:
    text = json.dumps(statistics, indent=1, sort_keys=True, allow_nan=False) + "\n"
  except (TypeError, ValueError) as e:
    raise ValueError(f"{path}: statistics are not canonical JSON: {e}") from e
  storage.write_text(path, text)


def write_night(directory: str,
                record: str,
                onsets: Sequence[float],
                probabilities: np.ndarray,
                *,
                epoch_seconds: float = EPOCH_SECONDS,
                trailing_seconds: float = 0.0,
                start: Optional[datetime.datetime] = None,
                per_epoch_probabilities: Optional[np.ndarray] = None,
                context: Optional[dict] = None,
                extra: Optional[dict] = None) -> dict:
  """Writes all four outputs of one night into directory.

  Files: <record>.stages.tsv, <record>.hypnogram.edf, <record>.hypnogram.png and
  <record>.sleep_stats.json. The statistics cover the recording from its start to the
  end of the last staged epoch (unstaged grid epochs count as unscored; the trailing
  partial epoch is left out).

  Args:
    directory: an existing directory.
    record: the night's name (file name stem, figure title, EDF header).
    onsets: seconds from the start of the recording of each staged epoch.
    probabilities: [n, 5] stage probabilities.
    epoch_seconds: epoch length.
    trailing_seconds: the unstaged trailing partial epoch, 0 for none.
    start: the recording's start, if known.
    per_epoch_probabilities: with a context stage, the per-epoch model's [n, 5]
      (`probabilities` are then the context stage's): the TSV's second column group.
    context: with a context stage, what it was (`eegmobile.context.ContextStage.describe`):
      in the statistics JSON and the figure's title.
    extra: more keys for the statistics JSON (e.g. "montage": `stage_lib.montage_note`).

  Returns:
    {"tsv", "edf", "png", "json": path written, "statistics": the statistics}.

  Raises:
    ValueError: bad arrays (see `check_night`); the message names the first file.
    OSError: a file cannot be written.
  """
  paths = {
      kind: os.path.join(directory, f"{record}.{suffix}")
      for kind, suffix in (("tsv", "stages.tsv"), ("edf", "hypnogram.edf"),
                           ("png", "hypnogram.png"), ("json", "sleep_stats.json"))
  }
  onsets, probabilities = check_night(paths["tsv"],
                                      onsets,
                                      probabilities,
                                      epoch_seconds=epoch_seconds,
                                      trailing_seconds=trailing_seconds)
  write_tsv(paths["tsv"],
            onsets,
            probabilities,
            epoch_seconds=epoch_seconds,
            per_epoch_probabilities=per_epoch_probabilities)
  write_hypnogram_edf(paths["edf"],
                      onsets,
                      probabilities,
                      epoch_seconds=epoch_seconds,
                      start=start,
                      record=record)
  plot_night(paths["png"],
             onsets,
             probabilities,
             epoch_seconds=epoch_seconds,
             start=start,
             title=record if context is None else
             f"{record}: after the context stage ({context['kind']}, {context['mode']})")
  hypnogram = hypnogram_on_grid(onsets, stage_of(probabilities), epoch_seconds=epoch_seconds)
  statistics = sleep_stats.sleep_statistics(hypnogram, epoch_seconds=epoch_seconds)
  trailing = {
      "onset": float(onsets[-1] + epoch_seconds),
      "duration": float(trailing_seconds)
  } if trailing_seconds > 0 else None
  more = {"trailing_partial_epoch": trailing, **(extra or {})}
  if context is not None:
    more["context"] = context
  write_statistics(paths["json"], {**statistics, **more})
  return {**paths, "statistics": statistics}
