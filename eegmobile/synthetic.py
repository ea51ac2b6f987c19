"""Synthetic PSGs: whole nights whose EEG follows a hypnogram with textbook stage rhythms.

Real Sleep-EDF PSG signals cannot be fetched everywhere (they are ~48 MB a night); these
stand in for them at real scale, in the real 7-channel Sleep-EDF layout
(`edf_writer.SLEEP_EDF_SC_LAYOUT`). `EEG Fpz-Cz` per stage (amplitudes in uV):

  W    alpha 8-12 Hz and beta 15-30 Hz over a low background
  N1   theta 4-7 Hz, low amplitude, alpha fading
  N2   theta background + sleep spindles (11-16 Hz bursts of 0.5-2 s) + K-complexes
  N3   high-amplitude delta 0.5-2 Hz (> 75 uV peak to peak)
  REM  mixed low-voltage activity + sawtooth-wave trains 2-6 Hz

plus 1/f background noise everywhere. Everything is vectorised over the night (band
noise is filtered once per band and gated per epoch), so a 22-hour night takes about a
second. Deterministic for a given seed.
"""

import os
import shutil
from typing import Sequence

import numpy as np
import scipy.signal
from absl import logging

from eegmobile import edf_reader
from eegmobile import edf_writer
from eegmobile import hypnogram
from eegmobile import sleep_edf
from eegmobile import stages

FS = 100
EPOCH = 30
# stage -> (band name -> rms amplitude in uV) for continuous rhythms; row -1 = unscored.
_BANDS = {
    "delta": (0.5, 2.0),
    "theta": (4.0, 7.0),
    "alpha": (8.0, 12.0),
    "spindle": (11.0, 16.0),
    "beta": (15.0, 30.0),
    "sawtooth": (2.0, 6.0)
}
_RMS = {  # W, N1, N2, N3, REM, unscored
    "delta": (4, 6, 10, 45, 5, 4),
    "theta": (4, 12, 10, 8, 9, 4),
    "alpha": (14, 4, 2, 1, 3, 10),
    "beta": (7, 3, 2, 1, 4, 6),
}
_BACKGROUND = (6, 5, 6, 8, 4, 6)


def _band_noise(rng: np.random.Generator, n: int, band: tuple[float, float]) -> np.ndarray:
  """Unit-rms noise in a frequency band."""
  sos = scipy.signal.butter(4, band, btype="bandpass", fs=FS, output="sos")
  x = scipy.signal.sosfilt(sos, rng.standard_normal(n))
  return x / (x.std() + 1e-12)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
  """Unit-rms 1/f-like noise (white noise through a leaky integrator)."""
  x = scipy.signal.lfilter([1.0], [1.0, -0.97], rng.standard_normal(n))
  return x / x.std()


def _per_sample(values_per_epoch: np.ndarray) -> np.ndarray:
  return np.repeat(values_per_epoch, EPOCH * FS)


def _bursts(rng: np.random.Generator, epochs: np.ndarray, per_epoch: float,
            seconds: tuple[float, float], n: int) -> np.ndarray:
  """A 0..1 gate with Hann-shaped bursts placed at random inside the given epochs."""
  gate = np.zeros(n)
  count = rng.poisson(per_epoch, size=len(epochs))
  starts = np.repeat(epochs, count) * EPOCH * FS + rng.integers(0, (EPOCH - 2) * FS,
                                                                size=count.sum())
  for start, length in zip(
      starts, rng.integers(int(seconds[0] * FS), int(seconds[1] * FS), size=count.sum())):
    gate[start:start + length] = np.maximum(gate[start:start + length],
                                            np.hanning(length)[:n - start])
  return gate


def _k_complexes(rng: np.random.Generator, epochs: np.ndarray, n: int) -> np.ndarray:
  """Large biphasic waves (~1 s: a sharp negative then a slower positive deflection)."""
  t = np.arange(FS) / FS
  wave = -np.sin(np.pi * t / 0.35) * (t < 0.35) + 0.6 * np.sin(np.pi *
                                                               (t - 0.35) / 0.65) * (t >= 0.35)
  out = np.zeros(n)
  count = rng.poisson(1.2, size=len(epochs))
  starts = np.repeat(epochs, count) * EPOCH * FS + rng.integers(0, (EPOCH - 1) * FS,
                                                                size=count.sum())
  for start, amplitude in zip(starts, rng.uniform(60, 110, size=count.sum())):
    out[start:start + FS] += amplitude * wave
  return out


def eeg(stage_per_epoch: np.ndarray, seed: int) -> np.ndarray:
  """Synthetic Fpz-Cz EEG (uV, 100 Hz) for stage indices per epoch (-1 = unscored).

  Returns:
    float64 array of len(stage_per_epoch) * 3000 samples.
  """
  rng = np.random.default_rng(seed)
  stage_rows = np.where(np.asarray(stage_per_epoch) < 0, 5, stage_per_epoch)
  n = len(stage_rows) * EPOCH * FS
  signal = _per_sample(np.take(_BACKGROUND, stage_rows)) * _pink(rng, n)
  for band, rms in _RMS.items():
    signal += _per_sample(np.take(rms, stage_rows)) * _band_noise(rng, n, _BANDS[band])
  n2 = np.flatnonzero(stage_rows == stages.N2)
  signal += 28 * _bursts(rng, n2, 4.0, (0.5, 2.0), n) * _band_noise(rng, n, (12.0, 14.5))
  signal += _k_complexes(rng, n2, n)
  rem = np.flatnonzero(stage_rows == stages.REM)
  saw = scipy.signal.sawtooth(2 * np.pi * 3.0 * np.arange(n) / FS, width=0.2)
  signal += 18 * _bursts(rng, rem, 2.5, (1.0, 3.0), n) * saw
  return np.clip(signal, -190, 190)


def _other_channels(stage_per_epoch: np.ndarray, fpz: np.ndarray, seed: int) -> list:
  """Pz-Oz, EOG, respiration, EMG, temperature and marker, plausible but simple."""
  rng = np.random.default_rng(seed + 1)
  n_epochs = len(stage_per_epoch)
  n, n_slow = n_epochs * EPOCH * FS, n_epochs * EPOCH
  rows = np.where(np.asarray(stage_per_epoch) < 0, 5, stage_per_epoch)
  pz = np.clip(0.7 * fpz + 8 * _pink(rng, n), -190, 190)
  moves = _bursts(rng, np.flatnonzero((rows == stages.REM) | (rows == stages.W)), 3.0,
                  (0.3, 1.0), n) * rng.choice([-1, 1], size=n) * 150
  eog = np.clip(30 * _pink(rng, n) + scipy.signal.lfilter([0.2], [1, -0.8], moves), -1000, 1000)
  t = np.arange(n_slow)
  resp = 800 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6)) + 50 * rng.standard_normal(n_slow)
  emg_level = np.take((3.0, 2.0, 1.5, 1.2, 0.4, 2.0), rows)
  emg = np.clip(np.repeat(emg_level, EPOCH) + 0.2 * rng.standard_normal(n_slow), -5, 5)
  temp = 36.8 - 0.4 * np.sin(np.pi * t / max(n_slow, 1)) + 0.01 * rng.standard_normal(n_slow)
  return [pz, eog, resp, emg, temp, np.zeros(n_slow)]


def stage_per_epoch(annotations: Sequence, num_epochs: int) -> np.ndarray:
  """Stage index per epoch from annotations (-1 where unscored, '?' or movement)."""
  labelled = hypnogram.label_epochs(annotations,
                                    psg_duration_s=num_epochs * EPOCH,
                                    wake_edge_minutes=None)
  out = np.full(num_epochs, -1, np.int64)
  out[labelled.epoch_indices] = labelled.labels
  return out


def write_psg(path: str,
              stage_per_epoch_: np.ndarray,
              *,
              seed: int,
              patient: str = "X X X X",
              recording: str = "Startdate X X X X",
              startdate: str = "01.01.85",
              starttime: str = "00.00.00") -> None:
  """Writes a synthetic PSG (Sleep-EDF SC layout) following the per-epoch stages."""
  fpz = eeg(stage_per_epoch_, seed)
  edf_writer.write_edf(path,
                       edf_writer.SLEEP_EDF_SC_LAYOUT,
                       [fpz] + _other_channels(stage_per_epoch_, fpz, seed),
                       record_duration=edf_writer.SLEEP_EDF_RECORD_SECONDS,
                       patient=patient,
                       recording=recording,
                       startdate=startdate,
                       starttime=starttime)


def synthetic_hypnogram(seed: int, hours: float = 8.0) -> list:
  """A plausible night: wake, ~90 min cycles (N3 early, REM late), brief awakenings,
  some movement, wake at the end, then 'Sleep stage ?' to 86400 s like the real files."""
  rng = np.random.default_rng(seed)
  total = int(hours * 120)
  blocks = [("Sleep stage W", int(rng.integers(60, 90)))]
  cycle = 0
  while sum(b[1] for b in blocks) < total - 80:
    late = cycle / max(1, hours / 1.5)
    blocks += [("Sleep stage 1", int(rng.integers(4, 12))),
               ("Sleep stage 2", int(rng.integers(25, 45))),
               ("Sleep stage 3", int(max(2, 20 * (1 - late) + rng.integers(0, 6)))),
               ("Sleep stage 4", int(max(0, 25 * (1 - 1.5 * late) + rng.integers(0, 6)))),
               ("Sleep stage 2", int(rng.integers(15, 30))),
               ("Movement time", int(rng.integers(0, 2))),
               ("Sleep stage R", int(10 + 25 * late + rng.integers(0, 8))),
               ("Sleep stage W", int(rng.integers(0, 4)))]
    cycle += 1
  blocks.append(("Sleep stage W", int(rng.integers(60, 90))))
  out, onset = [], 0
  for text, epochs in blocks:
    if epochs > 0:
      out.append(edf_reader.Annotation(float(onset), float(epochs * EPOCH), text))
      onset += epochs * EPOCH
  out.append(edf_reader.Annotation(float(onset), float(86400 - onset), "Sleep stage ?"))
  return out


def synthesize_for_hypnograms(hypnogram_paths: Sequence[str],
                              output_dir: str,
                              *,
                              seed: int = 0) -> list[str]:
  """Writes a matching-length synthetic PSG beside a copy of each real hypnogram.

  Output: `<output_dir>/sleep-cassette/SC4ssNE0-PSG.edf` + the hypnogram, so the
  directory is laid out like PhysioNet's and pairs as a normal Sleep-EDF set.

  Returns:
    The PSG paths written.

  Raises:
    ValueError: a path that is not a Sleep-EDF hypnogram name.
  """
  folder = os.path.join(output_dir, "sleep-cassette")
  os.makedirs(folder, exist_ok=True)
  written = []
  for i, path in enumerate(sorted(hypnogram_paths)):
    name = sleep_edf.parse_name(path)
    if name is None or name.kind != "Hypnogram":
      raise ValueError(f"{path}: not a Sleep-EDF hypnogram file name")
    annotations = edf_reader.read_annotations(path)
    num_epochs = int(hypnogram.scored_duration(annotations) // EPOCH)
    header = edf_reader.read_header(path)
    psg = os.path.join(folder, f"{name.record}-PSG.edf")
    write_psg(psg,
              stage_per_epoch(annotations, num_epochs),
              seed=seed * 100003 + name.subject * 10 + name.night,
              patient=header.patient,
              recording=header.recording,
              startdate=header.startdate,
              starttime=header.starttime)
    shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))
    written.append(psg)
    logging.info("synthetic PSG %d/%d: %s (%.1f h)", i + 1, len(hypnogram_paths),
                 os.path.basename(psg), num_epochs * EPOCH / 3600)
  return written


def make_demo_dataset(output_dir: str,
                      *,
                      subjects: Sequence[int] = (0, 1, 2, 3),
                      nights: Sequence[int] = (1, 2),
                      hours: float = 4.0,
                      seed: int = 0) -> list[str]:
  """Writes a small Sleep-EDF-shaped demo set (synthetic hypnograms and PSGs).

  Defaults: 4 subjects x 2 nights of 4 hours, about 3,800 epochs after wake trimming.

  Returns:
    The PSG paths written.
  """
  folder = os.path.join(output_dir, "sleep-cassette")
  os.makedirs(folder, exist_ok=True)
  written = []
  for subject in subjects:
    for night in nights:
      night_seed = seed * 100003 + subject * 10 + night
      annotations = synthetic_hypnogram(night_seed, hours)
      key = f"SC4{subject:02d}{night}E"
      edf_writer.write_hypnogram(os.path.join(folder, f"{key}C-Hypnogram.edf"), annotations)
      num_epochs = int(hypnogram.scored_duration(annotations) // EPOCH)
      psg = os.path.join(folder, f"{key}0-PSG.edf")
      write_psg(psg, stage_per_epoch(annotations, num_epochs), seed=night_seed)
      written.append(psg)
  logging.info("demo set: %d synthetic nights in %s", len(written), folder)
  return written
