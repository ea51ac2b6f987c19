"""Staging as the night happens: samples in, as they arrive; each 30 s epoch out once complete.

    stager = stream.StreamingStager(model, rate=256.0, unit="uV")
    for epoch in stager.push(samples, timestamps):   # any number of samples, any time
      print(epoch.onset, epoch.stage, epoch.probabilities)
    for epoch in stager.finish():                    # the end of the recording
      ...

Flag-free; `eegmobile.staging.live` runs it on an LSL stream or a BrainFlow board, and the
command is `python -m eegmobile.stage --stream ... | --board ...`. It uses what offline
staging uses (`stage_lib`): the channel in microvolts (a channel, or the difference of a
pair given as two columns), resampled to the model's rate by a streaming twin of
`edf_reader.resample` (`StreamResampler`, bit for bit the same samples whatever the
pieces they arrive in), the build's images (`spectrogram.spectrogram_images`, whose bytes
depend on the epoch alone) and the runtime's probabilities (a runtime's per-image results
do not depend on the batch: tested for LiteRT and OpenVINO). So an epoch's stage and
probabilities are identical to offline staging's of the same samples with the same
runtime (`stream_test`). A model loaded with features (for a sequence head) gives each
epoch's per-epoch features too (`StagedEpoch.features`). Memory is bounded: the resampler keeps its filter's span of input,
the stager the epoch being filled; what it keeps per finished epoch is its onset and five
probabilities.

The timeline stays on the recording's clock: epoch i covers [30 i, 30 (i + 1)) seconds from
the first sample, whatever arrives. With timestamps (the recording's clock, seconds), a
jump forward of more than `gap_seconds` is a gap: the epochs it touches are unscored
(reason "gap"), never shifted or joined, and the resampler starts again after it (its
filter never reads across the gap). Samples that arrive earlier than the nominal rate
puts them, by more than `gap_seconds` (a device faster than its nominal rate, or a clock
step back), are dropped and the epoch they fall in is unscored ("clock correction"). NaN
or infinite samples make the epochs they reach unscored ("NaN samples"). Every unscored
epoch is reported with its reason, as a scored one is.
"""

import dataclasses
import fractions
import math
import time
from typing import Iterator, Optional, Sequence

import numpy as np

from eegmobile import edf_reader
from eegmobile import spectrogram
from eegmobile import stages
from eegmobile.config import SpectrogramConfig
from eegmobile.staging import runtimes
from eegmobile.staging import stage_lib

EPOCH_SECONDS = stage_lib.EPOCH_SECONDS


class StreamResampler:
  """`edf_reader.resample` on a stream: the same float64 samples, whatever the pieces.

  scipy's `resample_poly` filters the zero-stuffed signal with a Kaiser-windowed FIR and
  pads it with zeros at both ends; each output sample is a sum over the input samples
  under the filter. This keeps the input still under the filter and computes an output
  once every input sample it sums has arrived (`push`), or at the end, with the same zero
  padding (`finish`). The sums run over the same samples in the same order as on the whole
  signal, so the outputs are equal bit for bit (`stream_test`).
  """

  def __init__(self, rate_in: float, rate_out: float):
    # Lazy: scipy.signal is slow to import (BUILD_NOTES.md "Start-up"); 100 Hz needs none.
    import scipy.signal  # pylint: disable=g-import-not-at-top
    self._upfirdn = scipy.signal.upfirdn
    ratio = (fractions.Fraction(rate_out).limit_denominator(10**6) /
             fractions.Fraction(rate_in).limit_denominator(10**6)).limit_denominator(1000)
    self.rate_in, self.rate_out = rate_in, rate_out
    self.up, self.down = ratio.numerator, ratio.denominator
    self.received = 0
    self.emitted = 0
    if self.up == self.down:  # resample_poly returns the signal itself
      self._h = np.ones(1)
      return
    # resample_poly's filter and padding (scipy.signal._signaltools.resample_poly).
    half_len = 10 * max(self.up, self.down)
    taps = scipy.signal.firwin(
        2 * half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
    pre_pad = self.down - half_len % self.down
    self._h = np.concatenate([np.zeros(pre_pad), taps])
    self._pre_remove = (half_len + pre_pad) // self.down
    self._buffer = np.zeros(0)
    self._start = 0  # input index of _buffer[0]: a multiple of `down`

  @property
  def lookahead(self) -> int:
    """Input samples after an output's instant that it still sums (the filter's reach)."""
    return int(math.ceil(len(self._h) / (2 * self.up)))

  def _outputs(self, total: int) -> np.ndarray:
    if total <= self.emitted:
      return np.zeros(0)
    y = self._upfirdn(self._h, self._buffer, self.up, self.down)
    first = self.emitted + self._pre_remove - self._start * self.up // self.down
    out = y[first:first + total - self.emitted]
    self.emitted = total
    # Keep only the input the next output still sums (from a multiple of `down`).
    m = self.emitted + self._pre_remove
    needed = max(0, -((len(self._h) - 1 - m * self.down) // self.up))
    keep_from = (needed // self.down) * self.down
    if keep_from > self._start:
      self._buffer = self._buffer[keep_from - self._start:]
      self._start = keep_from
    return out

  def push(self, samples: np.ndarray) -> np.ndarray:
    """The output samples that `samples` (float64) complete."""
    if self.up == self.down:
      self.received += len(samples)
      self.emitted = self.received
      return np.array(samples, np.float64)
    self._buffer = np.concatenate([self._buffer, np.asarray(samples, np.float64)])
    self.received += len(samples)
    complete = ((self.received - 1) * self.up) // self.down - self._pre_remove + 1
    return self._outputs(complete)

  def finish(self) -> np.ndarray:
    """The last outputs (zero padding after the end, as `resample_poly`); as many as
    `edf_reader.resample` gives for the whole signal."""
    if self.up == self.down:
      return np.zeros(0)
    return self._outputs(int(math.floor(self.received * self.rate_out / self.rate_in + 1e-9)))


@dataclasses.dataclass(frozen=True)
class StagedEpoch:
  """One epoch of a live night.

  Attributes:
    index: epoch number from the first sample (onset = index x 30 s).
    onset: seconds from the first sample.
    probabilities: float32 [5] (`stages.STAGES` order), or None when unscored.
    stage: the most probable stage's index, or None when unscored.
    reason: why it is unscored ("gap", "NaN samples", "clock correction"), or None.
    completed_at: time.monotonic() when the sample that completed it arrived (its last
      sample plus the resampling filter's reach).
    features: float32 [F], the per-epoch features (a model loaded with features, for a
      sequence head: `runtimes.load(..., features=True)`), else None.
  """
  index: int
  onset: float
  probabilities: Optional[np.ndarray]
  stage: Optional[int]
  reason: Optional[str]
  completed_at: float
  features: Optional[np.ndarray] = None

  @property
  def scored(self) -> bool:
    return self.probabilities is not None


class StreamingStager:
  """Stages a live recording, epoch by epoch (see the module docstring)."""

  def __init__(self,
               model: runtimes.StagingModel,
               *,
               rate: float,
               unit: str = "uV",
               config: stage_lib.StageConfig = stage_lib.StageConfig(),
               gap_seconds: float = 0.5,
               first_epoch: int = 0,
               clock_origin: Optional[float] = None):
    """Args:
      model: a loaded model (`runtimes.load`).
      rate: the samples' rate, Hz (at least 50).
      unit: their unit (uV, mV, V, ...), scaled to microvolts.
      config: staging settings (the spectrogram's; the model's image size and floor are
        taken from the model, as offline).
      gap_seconds: timestamps this much later than the nominal rate puts a sample are a
        gap; this much earlier, a clock correction.
      first_epoch: the epoch the first sample belongs to (a continued night: its first
        sample is at `first_epoch` x 30 s from the night's start, or, with timestamps and
        `clock_origin`, where its timestamp puts it, the epochs in between unscored as a gap).
      clock_origin: the timestamp of the night's start (a continued night's); None: the
        first timestamp given, less `first_epoch` x 30 s.

    Raises:
      ValueError: a rate under 50 Hz, or a unit that is not a voltage.
      runtimes.ModelError: a model whose preprocessing differs from staging's.
    """
    if rate < stage_lib.MIN_RATE_HZ:
      raise ValueError(f"a rate of {rate:g} Hz; staging needs at least "
                       f"{stage_lib.MIN_RATE_HZ:g} Hz")
    self._model = model
    self._spec: SpectrogramConfig = stage_lib.check_preprocessing(model, config)
    self._window = spectrogram.window(self._spec)
    self._scale = edf_reader.microvolts_per_unit(unit, "the stream")
    self._rate = float(rate)
    self._gap = gap_seconds
    self._per_epoch = int(round(EPOCH_SECONDS * self._spec.fs))
    self._resamplers: Optional[list[StreamResampler]] = None
    # The 100 Hz sample (of the night) the next resampled sample is, and the input sample
    # (of the night) the next pushed sample is, by the nominal rate.
    self._output_at = first_epoch * self._per_epoch
    self._input_at = first_epoch * EPOCH_SECONDS * self._rate
    self._epoch = first_epoch
    self._filled = np.zeros(self._per_epoch, np.float32)
    self._count = 0  # samples of the current epoch received
    self._reason: Optional[str] = None  # why the current epoch cannot be scored
    self._t0: Optional[float] = clock_origin  # timestamp of the night's input sample 0

  # ---------------------------------------------------------------- input

  def push(self,
           samples: np.ndarray,
           timestamps: Optional[Sequence[float]] = None) -> list[StagedEpoch]:
    """Takes samples as they arrive; returns the epochs they complete.

    Args:
      samples: [n] for a channel, or [n, 2] for a pair (staged: first minus second), in
        the unit given at construction.
      timestamps: [n] seconds on the recording's clock (e.g. LSL's or a board's), or None
        (then every sample follows the previous at the nominal rate).

    Returns:
      The epochs completed, in order (scored or not).
    """
    samples = np.asarray(samples, np.float64)
    if samples.ndim == 1:
      samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] not in (1, 2):
      raise ValueError(f"samples must be [n] or [n, 2] (a pair), got {samples.shape}")
    now = time.monotonic()
    if timestamps is None or not len(samples):
      return self._feed(samples, now)
    timestamps = np.asarray(timestamps, np.float64)
    if self._t0 is None:
      self._t0 = timestamps[0] - self._input_at / self._rate
    done = []
    # Pieces between the clock's jumps: each is placed where its first timestamp says.
    jumps = np.flatnonzero(np.abs(np.diff(timestamps) - 1.0 / self._rate) > self._gap) + 1
    for piece, times in zip(np.split(samples, jumps), np.split(timestamps, jumps)):
      done += self._place(piece, times[0], now)
    return done

  def _place(self, samples: np.ndarray, first_time: float, now: float) -> list[StagedEpoch]:
    at = (first_time - self._t0) * self._rate  # where the clock says this piece starts
    ahead = at - self._input_at
    if ahead > self._gap * self._rate:  # samples missing: a gap
      return self._jump(at, "gap", now) + self._feed(samples, now)
    if ahead < -self._gap * self._rate:  # earlier than the nominal rate allows
      skip = min(len(samples), int(round(-ahead)))
      self._reason = self._reason or "clock correction"
      return self._feed(samples[skip:], now)
    return self._feed(samples, now)

  def _jump(self, to_input: float, reason: str, now: float) -> list[StagedEpoch]:
    """Ends the current run of samples and starts again at input sample `to_input`."""
    done = self._flush_segment(reason, now)
    target = int(round(to_input / self._rate * self._spec.fs))  # the 100 Hz sample it is
    first_epoch = target // self._per_epoch
    if first_epoch > self._epoch:  # the epochs up to the new run's are unscored
      if self._count or self._reason:
        done.append(self._finish_epoch(now, reason))
      while self._epoch < first_epoch:
        done.append(self._unscored(reason, now))
    self._input_at = to_input
    self._output_at = target
    self._count = target - self._epoch * self._per_epoch
    if self._count or self._rate != self._spec.fs:
      # The run lacks its epoch's beginning, or the resampler's zero padding (which stands
      # for the samples before a recording) reaches into it: not the recording's signal.
      self._reason = self._reason or reason
    self._resamplers = None
    return done

  def _flush_segment(self, reason: str, now: float) -> list[StagedEpoch]:
    """The resampler's last outputs of a run that ends before the recording does: the
    filter lacks the samples after it, so they are NaN (their epochs unscored)."""
    if self._resamplers is None:
      return []
    r = self._resamplers[0]
    missing = int(math.floor(r.received * r.rate_out / r.rate_in + 1e-9)) - r.emitted
    self._resamplers = None
    if missing <= 0:
      return []
    self._reason = self._reason or reason
    return self._take(np.full(missing, np.nan, np.float32), now)

  def _feed(self, samples: np.ndarray, now: float) -> list[StagedEpoch]:
    if not len(samples):
      return []
    self._input_at += len(samples)
    microvolts = samples * self._scale  # float64, as the EDF reader scales
    if self._rate == self._spec.fs:  # no resampling, as offline
      columns = [microvolts[:, c].astype(np.float32) for c in range(microvolts.shape[1])]
    else:
      if self._resamplers is None:
        self._resamplers = [
            StreamResampler(self._rate, self._spec.fs) for _ in range(microvolts.shape[1])
        ]
      columns = [
          r.push(microvolts[:, c]).astype(np.float32) for c, r in enumerate(self._resamplers)
      ]
    signal = columns[0] if len(columns) == 1 else columns[0] - columns[1]
    return self._take(signal, now)

  def _take(self, signal: np.ndarray, now: float) -> list[StagedEpoch]:
    """Files resampled samples into epochs; returns the epochs they complete."""
    done = []
    while len(signal):
      room = self._per_epoch - self._count
      piece, signal = signal[:room], signal[room:]
      self._filled[self._count:self._count + len(piece)] = piece
      self._count += len(piece)
      self._output_at += len(piece)
      if self._count == self._per_epoch:
        done.append(self._finish_epoch(now))
    return done

  # --------------------------------------------------------------- epochs

  def _unscored(self, reason: str, now: float) -> StagedEpoch:
    epoch = StagedEpoch(self._epoch, self._epoch * EPOCH_SECONDS, None, None, reason, now)
    self._epoch += 1
    return epoch

  def _finish_epoch(self, now: float, reason: Optional[str] = None) -> StagedEpoch:
    reason = reason if self._count < self._per_epoch else None
    reason = self._reason or reason
    epoch = self._filled
    if reason is None and not np.all(np.isfinite(epoch)):
      reason = "NaN samples"
    self._count, self._reason = 0, None
    if reason is not None:
      return self._unscored(reason, now)
    images = spectrogram.spectrogram_images(epoch[None], self._spec, window=self._window)
    # A model loaded with features gives probabilities and features in one output.
    predict = self._model.predict_features or self._model.predict
    out = predict(images)[0] if self._model.input_kind == "images" else (predict(
        np.ascontiguousarray(epoch[None], np.float32))[0])
    probabilities = out[:stages.NUM_STAGES]
    probabilities = probabilities / probabilities.sum()  # as offline (int8 sums to ~1)
    features = None
    if self._model.predict_features is not None:
      features = np.asarray(out[stages.NUM_STAGES:], np.float32)
    staged = StagedEpoch(self._epoch, self._epoch * EPOCH_SECONDS,
                         np.asarray(probabilities, np.float32), int(np.argmax(probabilities)), None,
                         now, features)
    self._epoch += 1
    return staged

  def finish(self) -> list[StagedEpoch]:
    """The end of the recording: the resampler's last samples (zero padding, as offline)
    and the epochs they complete. A trailing partial epoch is not staged (as offline)."""
    now = time.monotonic()
    if self._resamplers is None:
      return []
    columns = [r.finish().astype(np.float32) for r in self._resamplers]
    self._resamplers = None
    signal = columns[0] if len(columns) == 1 else columns[0] - columns[1]
    return self._take(signal, now)

  @property
  def next_epoch(self) -> int:
    """The epoch being filled."""
    return self._epoch

  @property
  def clock_origin(self) -> Optional[float]:
    """The timestamp of the night's input sample 0 (None before timestamped samples)."""
    return self._t0

  def iter_pushes(self, pieces, timestamps=None) -> Iterator[StagedEpoch]:
    """Every epoch of a sequence of pieces, then of `finish()` (for batch replays)."""
    for i, piece in enumerate(pieces):
      yield from self.push(piece, None if timestamps is None else timestamps[i])
    yield from self.finish()
