"""Synthetic PSGs: whole nights whose EEG follows a hypnogram with textbook stage rhythms.

Real Sleep-EDF PSG signals cannot be fetched everywhere (about 48 MB a night); these stand
in for them at real scale and in the real 7-channel layout
(`edf_writer.SLEEP_EDF_SC_LAYOUT`). `EEG Fpz-Cz` per stage (amplitudes in uV):

  W    alpha 8-12 Hz (rms 14) and beta 15-30 Hz (rms 7) over a low background
  N1   theta 4-7 Hz (rms 14), low amplitude, alpha faded; vertex sharp waves (Cz)
  N2   delta and theta background + sleep spindles (11.5-15 Hz bursts of 0.5-2 s,
       about 3 an epoch) + K-complexes (biphasic, ~1 s, 75-150 uV peak to peak)
  N3   high-amplitude delta 0.5-2 Hz (rms 40: well over 75 uV peak to peak)
  REM  mixed low-voltage theta and beta + sawtooth-wave trains (2.5-4.5 Hz, 1.5-4 s)

plus 1/f background noise everywhere; unscored epochs ("Sleep stage ?", movement, no
annotation) get wake-like activity with more noise. Samples are clipped to +-190 uV,
inside the layout's physical range (+-192 uV). The stages differ in spectral shape (not
only in amplitude, which the per-image normalisation of the spectrograms removes) and in
their transients, so they are separable from each epoch's spectrogram image (tested).

Speed: nothing loops over samples or epochs in Python. Each stage's continuous
background is one FFT-shaped noise signal as long as all of that stage's epochs together,
cut into epochs and scattered to where that stage occurs (so a whole night costs about one
full-length inverse FFT); transients are template matrices added in one scatter-add.
Everything is deterministic for a given seed; `night_seed` derives a different seed for
every subject and night.

Stage boundaries: a run of epochs of one stage is one continuous stretch of signal; where
the stage changes, the signal jumps (at the epoch boundary, so no epoch's spectrogram
straddles it). Real EEG is continuous there; nothing downstream depends on it.

Other channels are plausible but simple: Pz-Oz follows the EEG at lower amplitude, the
horizontal EOG has saccades in wake and (bursts of) rapid eye movements in REM and slow
rolling movements in N1, respiration slows and steadies in N3, submental EMG is lowest
in REM, rectal temperature dips during sleep, the event marker is zero.
"""

import functools
import os
import shutil
from typing import Optional, Sequence, Union

import numpy as np
import scipy.fft
import scipy.signal
import scipy.special
from absl import logging

from eegmobile import edf_reader
from eegmobile import edf_writer
from eegmobile import hypnogram as hypnogram_lib
from eegmobile import sleep_edf
from eegmobile import stages
from eegmobile import storage

FS = 100  # Hz, EEG / EOG in the SC layout
SLOW_FS = 1  # Hz, respiration / EMG / temperature / marker
EPOCH_SECONDS = 30
SAMPLES_PER_EPOCH = FS * EPOCH_SECONDS
UNSCORED = -1  # stage index of epochs without a stage
STUDY_FOLDERS = {"SC": "sleep-cassette", "ST": "sleep-telemetry"}

# Continuous EEG components: band (Hz) and rms (uV) per row W, N1, N2, N3, REM, unscored.
_UNSCORED_ROW = 5
_BANDS = {
    "delta": (0.5, 2.0),
    "theta": (4.0, 7.0),
    "alpha": (8.0, 12.0),
    "beta": (15.0, 30.0),
}
_RMS = {
    "background": (6, 4, 6, 8, 5, 10),  # 1/f, 0.5-40 Hz
    "delta": (3, 3, 16, 40, 4, 4),
    "theta": (4, 14, 7, 8, 6, 4),
    "alpha": (14, 3, 2, 1, 3, 8),
    "beta": (7, 2, 2, 1, 6, 6),
}
_EEG_LIMIT = 190.0  # uV, inside the layout's +-192


def _rows(stage_per_epoch: np.ndarray) -> np.ndarray:
  """Stage indices -> table rows (unscored -> the last row)."""
  stage_per_epoch = np.asarray(stage_per_epoch, np.int64)
  if stage_per_epoch.ndim != 1 or ((stage_per_epoch < UNSCORED) |
                                   (stage_per_epoch >= stages.NUM_STAGES)).any():
    raise ValueError(f"stages must be a 1-D array of {UNSCORED}..{stages.NUM_STAGES - 1}")
  return np.where(stage_per_epoch == UNSCORED, _UNSCORED_ROW, stage_per_epoch)


def _band_shape(f: np.ndarray, band: tuple[float, float], edge: float = 0.5) -> np.ndarray:
  """1 inside the band, raised-cosine edges of `edge` Hz outside it, 0 beyond."""
  distance = np.maximum(band[0] - f, f - band[1]).clip(0, edge) / edge
  return 0.5 + 0.5 * np.cos(np.pi * distance)


def _background_shape(f: np.ndarray) -> np.ndarray:
  """1/f between the cassette's 0.5 Hz high-pass and a 40 Hz roll-off."""
  return 1.0 / np.maximum(f, 0.5) * _band_shape(f, (0.5, 40.0), edge=0.4)


@functools.lru_cache(maxsize=None)
def _spectrum_table(row: int) -> tuple[np.ndarray, np.ndarray]:
  """(frequencies, power density in uV^2/Hz) of a row's continuous EEG, 0-50 Hz."""
  f = np.linspace(0, FS / 2, 5001)
  density = np.zeros_like(f)
  for name, rms in _RMS.items():
    shape = _background_shape(f) if name == "background" else _band_shape(f, _BANDS[name])
    density += rms[row]**2 * shape / (shape.sum() * (f[1] - f[0]))
  return f, density


def _shaped_noise(rng: np.random.Generator, row: int, num_samples: int) -> np.ndarray:
  """A continuous stretch of a row's background EEG (float32)."""
  length = scipy.fft.next_fast_len(num_samples, real=True)
  num_bins = length // 2 + 1
  table_f, density = _spectrum_table(row)
  # Unit complex Gaussian bins (E|X|^2 = 2) give irfft variance 4 / length^2 per bin; a
  # bin spans FS / length Hz, so its amplitude is sqrt(density * FS / length * length^2 / 4).
  amplitude = np.sqrt(
      np.interp(np.arange(num_bins) * (FS / length), table_f, density) *
      (FS * length / 4.0)).astype(np.float32)
  bins = np.empty(num_bins, np.complex64)
  bins.real = rng.standard_normal(num_bins, np.float32)
  bins.imag = rng.standard_normal(num_bins, np.float32)
  bins *= amplitude
  return scipy.fft.irfft(bins, length)[:num_samples]


def _background(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
  """(epochs, samples) continuous EEG: each row's noise cut into epochs, in epoch order."""
  out = np.empty((len(rows), SAMPLES_PER_EPOCH), np.float32)
  for row in range(len(_RMS["background"])):
    epochs = np.flatnonzero(rows == row)
    if len(epochs):
      out[epochs] = _shaped_noise(rng, row,
                                  len(epochs) * SAMPLES_PER_EPOCH).reshape(len(epochs), -1)
  return out


def _event_starts(rng: np.random.Generator, epochs: np.ndarray, per_epoch: float,
                  length: int) -> np.ndarray:
  """Start samples of Poisson(per_epoch) events in each epoch, each fitting in its epoch."""
  count = rng.poisson(per_epoch, size=len(epochs))
  return (np.repeat(epochs, count) * SAMPLES_PER_EPOCH +
          rng.integers(0, SAMPLES_PER_EPOCH - length, size=count.sum()))


def _add_events(signal: np.ndarray, starts: np.ndarray, waves: np.ndarray) -> None:
  """Adds waves[i] (templates of equal length) to the flat signal at starts[i]."""
  index = starts[:, None] + np.arange(waves.shape[1])
  np.add.at(signal, index.ravel(), waves.ravel())


def _hann_bursts(rng: np.random.Generator, count: int, seconds: tuple[float, float],
                 max_seconds: float) -> tuple[np.ndarray, np.ndarray]:
  """(time axis (count, L) in s, Hann envelopes of random durations, zero after them)."""
  t = np.broadcast_to(np.arange(int(max_seconds * FS)) / FS, (count, int(max_seconds * FS)))
  duration = rng.uniform(*seconds, size=(count, 1))
  return t, np.where(t < duration, np.sin(np.pi * t / duration)**2, 0.0)


def _spindles(rng, signal, epochs) -> None:
  starts = _event_starts(rng, epochs, 3.0, 2 * FS)
  t, envelope = _hann_bursts(rng, len(starts), (0.5, 2.0), 2.0)
  hz = rng.uniform(11.5, 15.0, size=(len(starts), 1))
  amplitude = rng.uniform(20, 40, size=(len(starts), 1))
  phase = rng.uniform(0, 2 * np.pi, size=(len(starts), 1))
  _add_events(signal, starts, amplitude * envelope * np.sin(2 * np.pi * hz * t + phase))


def _k_complexes(rng, signal, epochs) -> None:
  """Sharp negative wave (~0.3 s) then a slower positive one (~0.7 s), 75-150 uV p-p."""
  starts = _event_starts(rng, epochs, 1.0, FS)
  t = np.arange(FS) / FS
  wave = np.where(t < 0.3, -np.sin(np.pi * t / 0.3), 0.7 * np.sin(np.pi * (t - 0.3) / 0.7))
  amplitude = rng.uniform(45, 90, size=(len(starts), 1))
  _add_events(signal, starts, amplitude * wave)


def _vertex_waves(rng, signal, epochs) -> None:
  """Sharp negative waves of ~0.25 s at the vertex (Cz), 25-45 uV."""
  starts = _event_starts(rng, epochs, 1.0, FS // 4)
  t = np.arange(FS // 4) / FS
  amplitude = rng.uniform(25, 45, size=(len(starts), 1))
  _add_events(signal, starts, -amplitude * np.sin(np.pi * t / 0.25)**2)


def _sawtooth_trains(rng, signal, epochs) -> None:
  starts = _event_starts(rng, epochs, 1.5, 4 * FS)
  t, envelope = _hann_bursts(rng, len(starts), (1.5, 4.0), 4.0)
  hz = rng.uniform(2.5, 4.5, size=(len(starts), 1))
  amplitude = rng.uniform(20, 40, size=(len(starts), 1))
  saw = scipy.signal.sawtooth(2 * np.pi * hz * t, width=0.8)  # slow rise, sharp fall
  _add_events(signal, starts, amplitude * np.sqrt(envelope) * saw)


# The harder variant (`difficulty` > 0): the stage an epoch may borrow its look from, with
# probabilities, per stage (rows and columns W, N1, N2, N3, REM): the confusions scorers
# and models make (N1 with W and REM, N2 with N1 and N3, N3 with N2).
CONFUSABLE = np.array([
    [0.0, 0.5, 0.2, 0.0, 0.3],
    [0.35, 0.0, 0.3, 0.0, 0.35],
    [0.0, 0.3, 0.0, 0.4, 0.3],
    [0.0, 0.0, 1.0, 0.0, 0.0],
    [0.3, 0.5, 0.2, 0.0, 0.0],
])
# How much two neighbouring epochs' mixing weights are alike (an AR(1) coefficient): an
# epoch that looks like another stage makes its neighbours likelier to, as in real EEG.
_MIXING_CORRELATION = 0.5


def mixing(stage_per_epoch: np.ndarray, difficulty: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Per epoch: the stage it borrows from and how much (the harder variant's plan).

  Args:
    stage_per_epoch: stage index per epoch (`UNSCORED` for none).
    difficulty: 0..1, the largest weight an epoch gives the borrowed stage.
    rng: random generator.

  Returns:
    (borrowed stage index per epoch (the epoch's own for unscored epochs), weight in
    [0, difficulty] per epoch): uniform weights, correlated between neighbours.
  """
  own = np.asarray(stage_per_epoch, np.int64)
  scored = own >= 0
  borrowed = own.copy()
  cumulative = np.cumsum(CONFUSABLE[own[scored]], axis=1)
  borrowed[scored] = (rng.random((scored.sum(), 1)) > cumulative).sum(axis=1)
  # AR(1) with unit variance -> uniform in [0, 1] through the normal CDF.
  noise = rng.standard_normal(len(own))
  rho = _MIXING_CORRELATION
  ar = np.concatenate([
      noise[:1],
      scipy.signal.lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], noise[1:], zi=[rho * noise[0]])[0]
  ])
  return borrowed, difficulty * scipy.special.ndtr(ar)


def synthesize_eeg(stage_per_epoch: np.ndarray,
                   *,
                   seed: int,
                   difficulty: float = 0.0) -> np.ndarray:
  """Synthetic EEG Fpz-Cz (uV, 100 Hz) following per-epoch stages.

  With `difficulty` > 0 (the harder variant, for measuring what context across epochs
  adds) each scored epoch borrows from a confusable stage (`CONFUSABLE`): its continuous
  background is sqrt(1 - w) of its own stage's plus sqrt(w) of the other's (same power,
  mixed spectral shape), and with probability w its transients (spindles, K-complexes,
  vertex waves, sawtooth trains) are the other stage's instead of its own; w is uniform
  in [0, difficulty] and correlated between neighbouring epochs (`mixing`). An epoch
  then looks ambiguous on its own while its neighbours still say where the night is.
  difficulty 0 gives exactly the signals of earlier versions.

  Args:
    stage_per_epoch: stage index (`stages.W` .. `stages.REM`) per 30 s epoch, or
      `UNSCORED` (-1).
    seed: random seed; the same stages and seed give the same samples.
    difficulty: 0 (textbook stages) to 1 (an epoch may look mostly like another stage).

  Returns:
    float32 array of len(stage_per_epoch) * 3000 samples within +-190 uV.

  Raises:
    ValueError: stage indices out of range, or difficulty outside 0..1.
  """
  rows = _rows(stage_per_epoch)
  if not 0 <= difficulty <= 1:
    raise ValueError(f"difficulty must be within 0..1, got {difficulty}")
  rng = np.random.default_rng(seed)
  signal = _background(rng, rows)
  transient_rows = rows
  if difficulty > 0:
    # A generator of its own: the plan never shifts the draws of the textbook signal.
    plan = np.random.default_rng([seed, 1])
    borrowed, weight = mixing(np.where(rows == _UNSCORED_ROW, UNSCORED, rows), difficulty, plan)
    other_rows = np.where(rows == _UNSCORED_ROW, rows, borrowed)
    other = _background(plan, other_rows)
    signal *= np.sqrt(1 - weight)[:, None].astype(np.float32)
    signal += np.sqrt(weight)[:, None].astype(np.float32) * other
    transient_rows = np.where(plan.random(len(rows)) < weight, other_rows, rows)
  signal = signal.ravel()
  _spindles(rng, signal, np.flatnonzero(transient_rows == stages.N2))
  _k_complexes(rng, signal, np.flatnonzero(transient_rows == stages.N2))
  _vertex_waves(rng, signal, np.flatnonzero(transient_rows == stages.N1))
  _sawtooth_trains(rng, signal, np.flatnonzero(transient_rows == stages.REM))
  return np.clip(signal, -_EEG_LIMIT, _EEG_LIMIT, out=signal)


def _per_sample(per_epoch: np.ndarray, rate: int) -> np.ndarray:
  return np.repeat(np.asarray(per_epoch, np.float64), EPOCH_SECONDS * rate)


def _leaky(x: np.ndarray, seconds: float, rate: int) -> np.ndarray:
  """A first-order low-pass (time constant `seconds`), as a hardware filter would."""
  a = np.exp(-1.0 / (seconds * rate))
  return scipy.signal.lfilter([1.0 - a], [1.0, -a], x)


def _eog(rng: np.random.Generator, rows: np.ndarray, eeg: np.ndarray) -> np.ndarray:
  """Horizontal EOG (uV): saccades (W, REM), slow rolling movements (N1), frontal EEG."""
  n = len(rows) * SAMPLES_PER_EPOCH
  count = rng.poisson(np.take((12.0, 1.0, 0.2, 0.1, 8.0, 6.0), rows))
  at = np.repeat(np.arange(len(rows)), count) * SAMPLES_PER_EPOCH + rng.integers(
      0, SAMPLES_PER_EPOCH, size=count.sum())
  size = rng.choice([-1.0, 1.0], size=len(at)) * rng.uniform(50, 250, len(at))
  # A gaze step seen through the 0.5 Hz high-pass: a jump that decays in ~0.3 s.
  decay = np.exp(-1.0 / (0.3 * FS))
  eog = scipy.signal.lfilter([1.0], [1.0, -decay], np.bincount(at, size, minlength=n))
  n1 = np.flatnonzero(rows == stages.N1)
  seconds = (n1[:, None] * SAMPLES_PER_EPOCH + np.arange(SAMPLES_PER_EPOCH)) / FS
  eog.reshape(len(rows), -1)[n1] += 60 * np.sin(2 * np.pi * 0.3 * seconds)  # slow rolling
  eog += 0.3 * eeg
  eog += 6 * rng.standard_normal(n, np.float32)
  return np.clip(eog, -1000, 1000, out=eog)


def _respiration(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
  """Oro-nasal thermistor, 1 Hz: slower and steadier in N3, irregular in W and REM."""
  n = len(rows) * EPOCH_SECONDS
  hz = _per_sample(np.take((0.27, 0.25, 0.24, 0.22, 0.28, 0.27), rows), SLOW_FS)
  irregular = _per_sample(np.take((0.04, 0.02, 0.015, 0.005, 0.05, 0.04), rows), SLOW_FS)
  phase = np.cumsum(2 * np.pi * (hz + irregular * rng.standard_normal(n)))
  amplitude = _per_sample(np.take((600, 700, 750, 800, 500, 600), rows), SLOW_FS)
  resp = amplitude * np.sin(phase + rng.uniform(0, 2 * np.pi)) + 40 * rng.standard_normal(n)
  return np.clip(resp + 300, -2048, 2047)


def _emg(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
  """Rectified, smoothed submental EMG, 1 Hz (uV): high in wake, lowest in REM."""
  n = len(rows) * EPOCH_SECONDS
  level = _leaky(_per_sample(np.take((3.4, 2.6, 2.2, 2.0, 1.0, 3.0), rows), SLOW_FS), 20, 1)
  twitches = (rng.random(n) < 0.02) * _per_sample(rows == stages.REM, SLOW_FS) * 1.5
  return np.clip(level + twitches + 0.08 * rng.standard_normal(n), 0, 5)


def _temperature(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
  """Rectal temperature, 1 Hz (deg C): falls ~0.6 deg C over hours of sleep, recovers awake."""
  asleep = ((rows > stages.W) & (rows != _UNSCORED_ROW)).astype(np.float64)
  per_epoch = 37.3 - 0.6 * _leaky(asleep, 180, 1)  # time constant 90 min, in epochs
  seconds = np.arange(len(rows) * EPOCH_SECONDS)
  temp = np.interp(seconds / EPOCH_SECONDS, np.arange(len(rows)), per_epoch)
  return np.clip(temp + 0.005 * rng.standard_normal(len(seconds)), 34, 40)


def psg_signals(stage_per_epoch: np.ndarray,
                *,
                seed: int,
                difficulty: float = 0.0) -> list[edf_writer.Signal]:
  """The 7 signals of a synthetic Sleep-EDF cassette PSG (pure: no file I/O).

  Args:
    stage_per_epoch: stage index per 30 s epoch (`UNSCORED` for none).
    seed: random seed.
    difficulty: of the EEG (`synthesize_eeg`); the other channels follow the stages.

  Returns:
    One `edf_writer.Signal` per `edf_writer.SLEEP_EDF_SC_LAYOUT` entry, in its order.

  Raises:
    ValueError: stage indices out of range, or a difficulty outside 0..1.
  """
  rows = _rows(stage_per_epoch)
  eeg_seed, other_seed = np.random.SeedSequence(seed).spawn(2)
  fpz = synthesize_eeg(stage_per_epoch,
                       seed=int(eeg_seed.generate_state(1)[0]),
                       difficulty=difficulty)
  rng = np.random.default_rng(other_seed)
  noise = _leaky(rng.standard_normal(len(fpz), np.float32), 0.05, FS)
  pz = np.clip(0.45 * fpz + 4 * noise / noise.std(), -190, 190)
  data = [
      fpz, pz,
      _eog(rng, rows, fpz),
      _respiration(rng, rows),
      _emg(rng, rows),
      _temperature(rng, rows),
      np.zeros(len(rows) * EPOCH_SECONDS)
  ]
  return [edf_writer.Signal(h, d) for h, d in zip(edf_writer.SLEEP_EDF_SC_LAYOUT, data)]


def stages_from_annotations(annotations: Sequence[edf_reader.Annotation],
                            num_epochs: int) -> np.ndarray:
  """Stage index per epoch from hypnogram annotations.

  Args:
    annotations: the hypnogram (onset, duration, description).
    num_epochs: epochs in the PSG.

  Returns:
    int64 array of num_epochs stage indices; `UNSCORED` where no stage is scored
    ("Sleep stage ?", "Movement time", no annotation).

  Raises:
    errors.HypnogramError: the annotations cannot be labelled (see
      `hypnogram.label_epochs`).
  """
  labelled = hypnogram_lib.label_epochs(annotations,
                                        psg_duration_s=num_epochs * EPOCH_SECONDS,
                                        wake_edge_minutes=None)
  out = np.full(num_epochs, UNSCORED, np.int64)
  out[labelled.epoch_indices] = labelled.labels
  return out


def synthesize_psg(path: str,
                   hypnogram: Union[Sequence[edf_reader.Annotation], np.ndarray],
                   *,
                   seed: int,
                   duration_s: Optional[float] = None,
                   patient: str = "X X X X",
                   recording: str = "Startdate X X X X",
                   startdate: str = "01.01.89",
                   starttime: str = "16.00.00",
                   difficulty: float = 0.0) -> np.ndarray:
  """Writes a synthetic PSG in the Sleep-EDF cassette layout.

  Args:
    path: the EDF file to write.
    hypnogram: annotations (onset, duration, description), or a stage index per 30 s
      epoch (`UNSCORED` for none).
    seed: random seed (see `night_seed`).
    duration_s: length of the PSG, a multiple of 30 s. Default: where the annotations'
      trailing "Sleep stage ?" starts (`hypnogram.scored_duration`), or 30 s per stage.
      Epochs past the given stages are unscored; stages past it are cut off.
    patient, recording, startdate, starttime: EDF header fields.
    difficulty: 0 (textbook stages) to 1 (`synthesize_eeg`).

  Returns:
    The stage index per epoch that the EEG follows.

  Raises:
    ValueError: a duration that is not a positive multiple of 30 s, stage indices out of
      range.
    errors.HypnogramError: annotations that cannot be labelled.
  """
  is_stages = isinstance(hypnogram,
                         np.ndarray) or not all(hasattr(a, "description") for a in hypnogram)
  if duration_s is None:
    duration_s = (len(hypnogram) *
                  EPOCH_SECONDS if is_stages else hypnogram_lib.scored_duration(hypnogram))
  num_epochs = duration_s / EPOCH_SECONDS
  if num_epochs < 1 or not float(num_epochs).is_integer():
    raise ValueError(f"{path}: PSG duration must be a positive multiple of {EPOCH_SECONDS} s, "
                     f"got {duration_s}")
  num_epochs = int(num_epochs)
  if is_stages:
    given = np.asarray(hypnogram, np.int64)[:num_epochs]
    stage_per_epoch = np.concatenate([given, np.full(num_epochs - len(given), UNSCORED)])
  else:
    stage_per_epoch = stages_from_annotations(hypnogram, num_epochs)
  edf_writer.write_edf(path,
                       psg_signals(stage_per_epoch, seed=seed, difficulty=difficulty),
                       patient=patient,
                       recording=recording,
                       startdate=startdate,
                       starttime=starttime,
                       record_duration=edf_writer.SLEEP_EDF_RECORD_SECONDS)
  return stage_per_epoch


def night_seed(seed: int, name: sleep_edf.FileName) -> int:
  """A seed of its own for every study, subject and night, derived from one seed."""
  entropy = [seed, ("SC", "ST").index(name.study), name.subject, name.night]
  return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# ---------------------------------------------------------------------------------------
# Hypnograms


def _cycle(rng: np.random.Generator, epochs: int, lateness: float) -> list[tuple[str, int]]:
  """One NREM-REM cycle of about `epochs` epochs: N1 -> N2 -> N3 -> N2 -> REM, with more
  N3 early (lateness 0) and more REM late (lateness 1), sometimes a brief awakening."""
  share = {
      "1": 0.05 + 0.03 * rng.random(),
      "3": 0.30 * (1 - lateness)**1.5 + 0.02,
      "R": 0.12 + 0.25 * lateness,
  }
  share["2"] = 1.0 - sum(share.values())
  n = {k: max(1, int(round(v * epochs * rng.uniform(0.8, 1.2)))) for k, v in share.items()}
  deep4 = int(n["3"] * 0.6 * (1 - lateness))
  first_n2 = int(n["2"] * rng.uniform(0.4, 0.6))
  blocks = [("1", n["1"]), ("2", first_n2), ("3", max(1, (n["3"] - deep4) // 2)), ("4", deep4),
            ("3", n["3"] - deep4 - max(1, (n["3"] - deep4) // 2)), ("2", n["2"] - first_n2)]
  if rng.random() < 0.3:  # a brief arousal inside N2
    where = rng.integers(1, len(blocks))
    blocks.insert(int(where), ("W", int(rng.integers(1, 3))))
  blocks.append(("R", n["R"]))
  if rng.random() < 0.5:  # brief awakening after REM, sometimes with movement
    if rng.random() < 0.4:
      blocks.append(("M", 1))
    blocks.append(("W", int(rng.integers(1, 5))))
  return [(k, v) for k, v in blocks if v > 0]


_DESCRIPTION = {
    "W": "Sleep stage W",
    "1": "Sleep stage 1",
    "2": "Sleep stage 2",
    "3": "Sleep stage 3",
    "4": "Sleep stage 4",
    "R": "Sleep stage R",
    "M": "Movement time",
}


def synthetic_hypnogram(seed: int, hours: float = 8.0) -> list[edf_reader.Annotation]:
  """A plausible Sleep-EDF-style hypnogram for a recording of `hours`.

  Wake before lights-off (35-60 min, at most 40% of the recording; more where the
  recording is longer than the sleep period of 7-8.5 h), ~90-minute cycles
  N1 -> N2 -> N3 (S3, S4) -> N2 -> REM with more N3 early and more REM late, brief
  arousals and awakenings, some "Movement time", 10-30 min of wake at the end (at most
  15%), then "Sleep stage ?" up to 86400 s as in the real SC files.

  Args:
    seed: random seed.
    hours: length of the recording (the PSG), 0.5 to 23 hours.

  Returns:
    Annotations sorted by onset, consecutive equal stages merged, on the 30 s grid.

  Raises:
    ValueError: hours out of range.
  """
  if not 0.5 <= hours <= 23:
    raise ValueError(f"hours must be within 0.5..23, got {hours}")
  rng = np.random.default_rng(seed)
  total = int(round(hours * 3600 / EPOCH_SECONDS))
  tail = min(int(rng.integers(20, 61)), int(0.15 * total))
  lead = min(int(rng.integers(70, 121)), int(0.4 * total))
  # A long recording is mostly wake before lights-off: the sleep period lasts 7-8.5 h.
  sleep = min(total - lead - tail, int(rng.integers(840, 1021)))
  lead = total - sleep - tail
  num_cycles = max(1, int(round(sleep / 180)))  # ~90 min each
  lengths = rng.uniform(0.85, 1.15, num_cycles)
  lengths = np.round(lengths / lengths.sum() * sleep).astype(int)
  blocks = [("W", lead)]
  for i, length in enumerate(lengths):
    blocks += _cycle(rng, int(length), i / max(1, num_cycles - 1))
  # Fit the sleep period exactly: trim or extend the last block, then the final wake.
  codes = np.concatenate([np.full(n, k) for k, n in blocks])[:lead + sleep]
  codes = np.concatenate([codes, np.full(lead + sleep - len(codes), codes[-1]), np.full(tail, "W")])
  change = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
  ends = np.r_[change[1:], len(codes)]
  out = [
      edf_reader.Annotation(float(s * EPOCH_SECONDS), float((e - s) * EPOCH_SECONDS),
                            _DESCRIPTION[codes[s]]) for s, e in zip(change, ends)
  ]
  end = total * EPOCH_SECONDS
  out.append(edf_reader.Annotation(float(end), float(86400 - end), hypnogram_lib.UNKNOWN_STAGE))
  return out


# ---------------------------------------------------------------------------------------
# Whole data sets


def _copy_atomically(source: str, destination: str) -> None:
  with storage.atomic_path(destination) as part:
    shutil.copyfile(source, part)


def find_hypnograms(source: str) -> list[str]:
  """Hypnogram files named by a directory (its *-Hypnogram.edf files) or a comma list.

  Args:
    source: a directory, or comma-separated file paths.

  Returns:
    The hypnogram paths, sorted.

  Raises:
    FileNotFoundError: no hypnogram found, or a listed file that does not exist.
  """
  if os.path.isdir(source):
    paths = [os.path.join(source, f) for f in os.listdir(source) if f.endswith("-Hypnogram.edf")]
  else:
    paths = [p for p in source.split(",") if p]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing or not paths:
    raise FileNotFoundError(f"{', '.join(missing) or source or repr(source)}: no such "
                            "hypnogram file(s); give a directory of *-Hypnogram.edf files "
                            "or a comma-separated list of them")
  return sorted(paths)


def synthesize_for_hypnograms(hypnogram_paths: Sequence[str],
                              output_dir: str,
                              *,
                              seed: int = 0,
                              difficulty: float = 0.0) -> list[str]:
  """Writes a synthetic PSG for each real hypnogram, and a copy of the hypnogram beside it.

  For `SC4ssNEx-Hypnogram.edf` it writes `<output_dir>/sleep-cassette/SC4ssNE0-PSG.edf`
  (ST files go to `sleep-telemetry/`) as long as the hypnogram's scored duration, with
  the hypnogram's header fields, so the directory pairs and builds like PhysioNet's.

  Args:
    hypnogram_paths: Sleep-EDF hypnogram files.
    output_dir: where the recordings go.
    seed: random seed; every night gets its own (`night_seed`).
    difficulty: 0 (textbook stages) to 1: the harder variant (`synthesize_eeg`).

  Returns:
    The PSG paths written, in the order of the sorted hypnogram paths.

  Raises:
    ValueError: a path that is not a Sleep-EDF hypnogram name.
    errors.RecordingError: an unreadable or unusable hypnogram.
  """
  names = {path: sleep_edf.parse_name(path) for path in hypnogram_paths}
  wrong = [p for p, name in names.items() if name is None or name.kind != "Hypnogram"]
  if wrong:
    raise ValueError(f"{', '.join(wrong)}: not a Sleep-EDF hypnogram file name")
  written = []
  for i, path in enumerate(sorted(hypnogram_paths)):
    name = names[path]
    folder = os.path.join(output_dir, STUDY_FOLDERS[name.study])
    os.makedirs(folder, exist_ok=True)
    annotations = edf_reader.read_annotations(path)
    header = edf_reader.read_header(path)
    psg = os.path.join(folder, f"{name.record}-PSG.edf")
    stage_per_epoch = synthesize_psg(psg,
                                     annotations,
                                     seed=night_seed(seed, name),
                                     patient=header.patient,
                                     recording=header.recording,
                                     startdate=header.startdate,
                                     starttime=header.starttime,
                                     difficulty=difficulty)
    _copy_atomically(path, os.path.join(folder, os.path.basename(path)))
    written.append(psg)
    logging.info("synthetic PSG %d/%d: %s (%.2f h, %d epochs)", i + 1, len(hypnogram_paths), psg,
                 len(stage_per_epoch) * EPOCH_SECONDS / 3600, len(stage_per_epoch))
  return written


def make_demo_dataset(output_dir: str,
                      *,
                      subjects: Sequence[int] = (0, 1, 2, 3),
                      nights: Sequence[int] = (1, 2),
                      hours: float = 4.0,
                      seed: int = 0,
                      difficulty: float = 0.0) -> list[str]:
  """Writes a small Sleep-EDF-shaped set of synthetic hypnograms and PSGs.

  Files are named like Sleep-EDF's (`sleep-cassette/SC4ssNE0-PSG.edf` and
  `SC4ssNEC-Hypnogram.edf`), so `sleep_edf.find_recordings(output_dir, "sleep-edf-20")`
  pairs them. The defaults (4 subjects x 2 nights x 4 h, 23.6 MB a night) give about
  3,500 epochs after wake trimming.

  Args:
    output_dir: where the recordings go.
    subjects: subject numbers (0-19 stay inside sleep-edf-20).
    nights: night numbers (1 or 2).
    hours: length of each recording.
    seed: random seed; every night gets its own (`night_seed`).
    difficulty: 0 (textbook stages) to 1: the harder variant (`synthesize_eeg`).

  Returns:
    The PSG paths written.
  """
  folder = os.path.join(output_dir, STUDY_FOLDERS["SC"])
  os.makedirs(folder, exist_ok=True)
  written = []
  for subject in subjects:
    for night in nights:
      key = f"SC4{subject:02d}{night}E"
      this_seed = night_seed(seed, sleep_edf.parse_name(f"{key}C-Hypnogram.edf"))
      annotations = synthetic_hypnogram(this_seed, hours)
      edf_writer.write_hypnogram(os.path.join(folder, f"{key}C-Hypnogram.edf"),
                                 annotations,
                                 startdate="01.01.89",
                                 starttime="16.00.00")
      psg = os.path.join(folder, f"{key}0-PSG.edf")
      synthesize_psg(psg, annotations, seed=this_seed, difficulty=difficulty)
      written.append(psg)
      logging.info("demo night %d/%d: %s", len(written), len(subjects) * len(nights), psg)
  return written
