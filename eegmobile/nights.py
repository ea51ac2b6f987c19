"""One night -> its labelled images: the per-recording step of the build.

`build_night` reads a PSG and its hypnogram, labels the 30 s epochs and turns each epoch
into a spectrogram image. It knows nothing about Beam or the record format: a plain loop,
a test and the Beam DoFn (`beam_pipelines.transforms`) all call it unchanged, and
`tfrecords.schema.night_examples` encodes what it returns.
"""

import collections
import dataclasses
import hashlib
import os
from typing import Optional

import numpy as np

from eegmobile import edf_reader
from eegmobile import errors
from eegmobile import hypnogram
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile import stages
from eegmobile.config import BuildConfig


@dataclasses.dataclass(frozen=True)
class Night:
  """A built night: its kept epochs' images and labels, and its manifest entry.

  Attributes:
    recording: the PSG/hypnogram pair.
    images: (n, height, width) uint8 colour-map indices, one per kept epoch, in order.
    labels: (n,) stage index of each.
    epoch_indices: (n,) index of each in the night (onset = index x epoch length).
    onsets: (n,) seconds from the start of the PSG.
    summary: the night's manifest entry.
  """
  recording: sleep_edf.Recording
  images: np.ndarray
  labels: np.ndarray
  epoch_indices: np.ndarray
  onsets: np.ndarray
  summary: dict


def sha256_of(path: str, chunk_bytes: int = 1 << 20) -> str:
  """Hex sha256 of a file (the form PhysioNet's SHA256SUMS.txt uses)."""
  digest = hashlib.sha256()
  buffer = bytearray(chunk_bytes)  # one buffer reused: no fresh memory per block
  view = memoryview(buffer)
  with open(path, "rb", buffering=0) as f:
    while size := f.readinto(buffer):
      digest.update(view[:size])
  return digest.hexdigest()


def cut_epochs(signal: np.ndarray, epoch_indices: np.ndarray, samples_per_epoch: int) -> np.ndarray:
  """Rows of `signal` for the given epoch indices: (len(epoch_indices), samples_per_epoch).

  Raises:
    ValueError: an epoch runs past the end of the signal.
  """
  epoch_indices = np.asarray(epoch_indices, np.int64)
  if len(epoch_indices) and (epoch_indices.max() + 1) * samples_per_epoch > len(signal):
    raise ValueError(f"epoch {int(epoch_indices.max())} ends after the signal "
                     f"({len(signal)} samples)")
  whole = signal[:len(signal) // samples_per_epoch * samples_per_epoch]
  return whole.reshape(-1, samples_per_epoch)[epoch_indices]


def class_counts(labels: np.ndarray) -> dict[str, int]:
  """{stage name: number of epochs}, every stage present (zeros included)."""
  counts = np.bincount(np.asarray(labels, np.int64), minlength=stages.NUM_STAGES)
  return dict(zip(stages.STAGES, counts.tolist()))


def check_starts(psg: edf_reader.EdfHeader, hypnogram: edf_reader.EdfHeader) -> None:
  """Checks that a hypnogram starts when its PSG does (epoch onsets count from there).

  Raises:
    errors.HypnogramError: the start dates/times differ (the message names both files
      and both starts), or errors.EdfFormatError: a malformed start date or time.
  """
  psg_start = edf_reader.start_datetime(psg)
  hypnogram_start = edf_reader.start_datetime(hypnogram)
  if psg_start != hypnogram_start:
    raise errors.HypnogramError(
        hypnogram.path, f"starts at {hypnogram_start:%Y-%m-%d %H:%M:%S}, but its PSG "
        f"{os.path.basename(psg.path)} starts at {psg_start:%Y-%m-%d %H:%M:%S} "
        f"({psg.path}); a hypnogram's epochs must start with its PSG")


def _label(recording: sleep_edf.Recording,
           config: BuildConfig) -> tuple[hypnogram.EpochLabels, edf_reader.EdfHeader]:
  """The hypnogram's labelled epochs, fitted to the PSG's duration, and the PSG's header."""
  annotations = edf_reader.read_annotations(recording.hypnogram_path)
  psg = edf_reader.read_header(recording.psg_path)
  labelled = hypnogram.label_epochs(annotations,
                                    psg_duration_s=psg.duration_s,
                                    epoch_seconds=config.epochs.epoch_seconds,
                                    wake_edge_minutes=config.epochs.wake_edge_minutes,
                                    source=recording.hypnogram_path)
  return labelled, psg


def _read_kept_span(recording: sleep_edf.Recording, indices: np.ndarray,
                    config: BuildConfig) -> tuple[edf_reader.Channel, np.ndarray]:
  """The channel from the first to the last kept epoch, and the kept epochs cut from it."""
  first = int(indices[0]) if len(indices) else 0
  last = int(indices[-1]) + 1 if len(indices) else 0
  channel = edf_reader.read_channel(recording.psg_path,
                                    config.epochs.channel,
                                    target_fs=config.epochs.target_fs,
                                    start_s=first * config.epochs.epoch_seconds,
                                    stop_s=last * config.epochs.epoch_seconds)
  return channel, cut_epochs(channel.signal, indices - first, config.epochs.samples_per_epoch)


def _summary(recording: sleep_edf.Recording, labelled: hypnogram.EpochLabels,
             channel: edf_reader.Channel) -> dict:
  """The night's manifest entry."""
  return {
      "record": recording.record,
      "subject": recording.subject_id,
      "night": recording.night,
      "num_examples": len(labelled.labels),
      "class_counts": class_counts(labelled.labels),
      "dropped": dict(sorted(collections.Counter(labelled.dropped).items())),
      "cropped_hypnogram_seconds": float(labelled.cropped_seconds),
      "duration_s": float(channel.duration_s),
      "channel": {
          "label": channel.label,
          "unit": channel.unit,
          "original_fs": float(channel.original_fs),
          "fs": float(channel.fs)
      },
      "psg": {
          "file": os.path.basename(recording.psg_path),
          "sha256": sha256_of(recording.psg_path)
      },
      "hypnogram": {
          "file": os.path.basename(recording.hypnogram_path),
          "sha256": sha256_of(recording.hypnogram_path)
      },
  }


def build_night(recording: sleep_edf.Recording,
                config: BuildConfig,
                *,
                window: Optional[np.ndarray] = None) -> Night:
  """Builds one night's examples.

  Each file is checked on its own (the hypnogram's labels, the PSG's channel) before the
  pair is (`check_starts`), so that a broken file is reported as itself.

  Args:
    recording: the PSG/hypnogram pair.
    config: build parameters.
    window: the STFT window, `spectrogram.window(config.spectrogram)`; a Beam driver
      computes it once for all workers. Computed here (with scipy) if None.

  Returns:
    The night's images and labels (in epoch order) and its manifest entry.

  Raises:
    errors.RecordingError: the recording cannot be used (the message names the file),
      among them a hypnogram that does not start with its PSG (errors.HypnogramError).
  """
  labelled, psg = _label(recording, config)
  # Only the span from the first to the last kept epoch is read (wake is trimmed).
  channel, epochs = _read_kept_span(recording, labelled.epoch_indices, config)
  check_starts(psg, edf_reader.read_header(recording.hypnogram_path))
  images = spectrogram.spectrogram_images(epochs, config.spectrogram, window=window)
  indices = np.asarray(labelled.epoch_indices, np.int64)
  return Night(recording=recording,
               images=images,
               labels=np.asarray(labelled.labels, np.int64),
               epoch_indices=indices,
               onsets=indices * config.epochs.epoch_seconds,
               summary=_summary(recording, labelled, channel))
