"""Staging anyone's night from an EDF with an exported model (flag-free; `eegmobile.stage`,
i.e. `eegmobile/staging/cli.py`, is the command).

One night: the EEG channel is read in microvolts (by label with `edf_reader.find_signal`'s
aliases, or derived from two referential channels, e.g. "Fpz" minus "Cz"), resampled to
the model's rate from any rate of at least 50 Hz, cut into 30 s epochs from the start of
the recording (no hypnogram needed; a trailing partial epoch is reported in seconds and
passed on to `outputs.write_night`), and scored in chunks of `batch_size` epochs:
the night's images are never all in memory at once. An image-input model gets images
from the numpy build path (`spectrogram.spectrogram_images`, the images a build of the
night would hold); a raw-epoch model gets the epochs.

A model whose preprocessing differs from what staging computes is refused, naming each
differing parameter; so is a path that is not one of our exports (`runtimes`).

With a context stage (`eegmobile.context`, loaded from the export by
`eegmobile.staging.context_stage`) the per-epoch probabilities (and, for a sequence head,
the per-epoch features) of the whole night go through it; the outputs follow its
probabilities and the TSV keeps the per-epoch model's beside them (`outputs`).
"""

import concurrent.futures
import dataclasses
import json
import os
import re
import time
from typing import Optional, Sequence

import numpy as np

from eegmobile import context as context_lib
from eegmobile import edf_reader
from eegmobile import errors
from eegmobile import evaluation
from eegmobile import hypnogram
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile import storage
from eegmobile.config import SpectrogramConfig
from eegmobile.staging import outputs
from eegmobile.staging import runtimes

EPOCH_SECONDS = 30.0
MIN_RATE_HZ = 50.0
# What every model we export was trained on (Sleep-EDF's EEG channel).
TRAINED_CHANNEL = "EEG Fpz-Cz"


@dataclasses.dataclass(frozen=True)
class StageConfig:
  """How nights are staged.

  Attributes:
    channel: EEG channel label; 'A-B' also finds two referential channels A and B (with
      or without an "EEG " prefix) and stages A minus B.
    batch_size: epochs turned into images and scored at a time (bounds memory; 32 kept
      a 22 h night's peak memory at a quarter of 256's, no slower: BUILD_NOTES.md).
    runtime: auto, for a .tflite: openvino in bf16 where installed and the CPU has bf16
      (AMX or AVX-512 BF16), else litert where installed, else tensorflow; an export
      directory runs on tensorflow.
    precision: inference precision; bf16 (openvino only) keeps f32's top class, not its
      probabilities bit for bit (BUILD_NOTES.md, "Runtimes"); auto: bf16 where openvino
      runs on such a CPU, else f32.
    threads: CPU threads for the runtime (None: every core this process may use).
    spectrogram: the parameters staging computes images with; the model's image size
      and colour-scale floor are taken from the model, every other field must match the
      model's record.
    context: the context stage after the per-epoch model: auto (the export's own, none
      for an export without one), none, smoother or head (`staging.context_stage`).
    context_lag: None: a finished night (the context stage reads the whole night); k:
      live (causal), each epoch decided from the epochs up to k after it.
  """
  channel: str = "EEG Fpz-Cz"
  batch_size: int = 32
  runtime: str = dataclasses.field(default="auto", metadata={"choices": runtimes.RUNTIMES})
  precision: str = dataclasses.field(default="auto", metadata={"choices": runtimes.PRECISIONS})
  threads: Optional[int] = None
  spectrogram: SpectrogramConfig = SpectrogramConfig()
  context: str = dataclasses.field(default="auto",
                                   metadata={"choices": ("auto",) + context_lib.STAGE_KINDS})
  context_lag: Optional[int] = None

  def __post_init__(self):
    if self.batch_size < 1:
      raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
    if self.context_lag is not None and self.context_lag < 0:
      raise ValueError(f"context_lag must be at least 0, got {self.context_lag}")
    if self.threads is not None and self.threads < 1:
      raise ValueError(f"threads must be at least 1, got {self.threads}")


@dataclasses.dataclass
class Night:
  """One night's EEG, ready to be cut into epochs.

  Attributes:
    path: the EDF/BDF file.
    signal: float32 microvolts at `fs`.
    fs: Hz.
    label: the channel's label ("A - B" when derived).
    original_fs: the file's rate, Hz.
    num_epochs: whole epochs from the start.
    trailing_seconds: the partial epoch after them.
    start: the recording's start, if the header has a usable one.
  """
  path: str
  signal: np.ndarray
  fs: float
  label: str
  original_fs: float
  num_epochs: int
  trailing_seconds: float
  start: Optional[object]


def check_preprocessing(model: runtimes.StagingModel, config: StageConfig) -> SpectrogramConfig:
  """The spectrogram config to compute: staging's, with the model's image size.

  Raises:
    runtimes.ModelError: the model's recorded preprocessing differs from staging's (every
      differing parameter named).
  """
  recorded = model.preprocessing.spectrogram
  # The image size and the colour-scale floor follow the model's build.
  wanted = dataclasses.replace(config.spectrogram,
                               image_height=recorded.image_height,
                               image_width=recorded.image_width,
                               dynamic_range_db=recorded.dynamic_range_db)
  left, right = dataclasses.asdict(recorded), dataclasses.asdict(wanted)
  differ = [
      f"{k} {left[k]!r} (model) vs {right[k]!r} (staging)" for k in left if left[k] != right[k]
  ]
  samples = int(round(EPOCH_SECONDS * wanted.fs))
  if model.preprocessing.samples_per_epoch != samples:
    differ.append(f"samples_per_epoch {model.preprocessing.samples_per_epoch} (model) vs "
                  f"{samples} (staging)")
  if differ:
    raise runtimes.ModelError(f"{model.path}: the model was trained with other preprocessing "
                              "than staging computes: " + "; ".join(differ))
  return wanted


def channel_columns(labels: Sequence[str],
                    channel: str,
                    source: Optional[str] = None,
                    holder: str = "the file") -> list[int]:
  """The channel to stage among `labels`: [i] for one label, [a, b] for a pair staged a - b.

  `channel` names a label (`edf_reader.find_label`), or, failing that, "A-B" names two
  referential channels A and B (with or without an "EEG " prefix; "AF7-TP9" on a headband).

  Raises:
    errors.ChannelError: neither (the message lists the labels there are).
  """
  try:
    return [edf_reader.find_label(labels, channel, source, holder)]
  except errors.ChannelError:
    parts = re.sub(r"(?i)^\s*eeg\s*", "", channel).split("-")
    if len(parts) != 2:
      raise
    try:
      return [edf_reader.find_label(labels, part.strip(), source, holder) for part in parts]
    except errors.ChannelError:
      pass
    raise


def montage_note(label: str) -> Optional[dict]:
  """What the outputs say when the staged channel is not the one the model was trained on.

  Args:
    label: the staged channel's label ("EEG Fpz-Cz", "AF7 - TP9", ...).

  Returns:
    None for Fpz-Cz (as one label or as the pair Fpz minus Cz), else {"channel",
    "trained_on", "note"}.
  """
  key = re.sub(r"(?i)\beeg\b|\s", "", label).lower().replace("--", "-")
  if key in ("fpz-cz",):
    return None
  return {
      "channel":
          label,
      "trained_on":
          TRAINED_CHANNEL,
      "note": (f"the model was trained on {TRAINED_CHANNEL} (Sleep-EDF); its accuracy on "
               f"{label} is not established"),
  }


def _rate(header: edf_reader.EdfHeader, index: int) -> float:
  signal = header.signals[index]
  if header.record_duration <= 0:
    raise errors.EdfFormatError(header.path, "data record duration is 0: no sampling rate")
  fs = signal.samples_per_record / header.record_duration
  if fs < MIN_RATE_HZ:
    raise errors.ChannelError(
        header.path, f"channel {signal.label!r} is sampled at {fs:g} Hz; staging "
        f"needs at least {MIN_RATE_HZ:g} Hz")
  return fs


def read_night(path: str, config: StageConfig, fs: float = 100.0) -> Night:
  """Reads one night's EEG channel, checked, in microvolts at fs.

  Raises:
    errors.RecordingError: an unreadable, truncated or discontinuous file, a missing
      channel (the message lists the file's channels), a rate under 50 Hz, a unit other
      than uV/mV/V, NaN or flat samples, or less than one epoch.
  """
  header = edf_reader.read_header(path)
  indices = channel_columns([s.label for s in header.signals], config.channel, header.path)
  rates = [_rate(header, i) for i in indices]
  channels = [edf_reader.read_channel(path, header.signals[i].label, target_fs=fs) for i in indices]
  if len(channels) == 1:
    signal, label = channels[0].signal, channels[0].label
  else:
    n = min(len(c.signal) for c in channels)
    signal = channels[0].signal[:n] - channels[1].signal[:n]
    label = f"{channels[0].label} - {channels[1].label}"
    edf_reader._check_samples(header.path, label, signal)  # pylint: disable=protected-access
  samples = int(round(EPOCH_SECONDS * fs))
  num_epochs = len(signal) // samples
  if num_epochs == 0:
    raise errors.EdfFormatError(
        header.path, f"holds {header.duration_s:g} s of signal, shorter than one "
        f"{EPOCH_SECONDS:g} s epoch")
  try:
    start = edf_reader.start_datetime(header)
  except errors.EdfFormatError:
    start = None
  return Night(path=header.path,
               signal=signal,
               fs=fs,
               label=label,
               original_fs=rates[0],
               num_epochs=num_epochs,
               trailing_seconds=float(header.duration_s - num_epochs * EPOCH_SECONDS),
               start=start)


def epochs_of(night: Night, first: int, count: int) -> np.ndarray:
  """Epochs first..first+count of the night, [count, samples] float32 (a view)."""
  samples = int(round(EPOCH_SECONDS * night.fs))
  return night.signal[first * samples:(first + count) * samples].reshape(-1, samples)


def score_night(night: Night,
                model: runtimes.StagingModel,
                spec: SpectrogramConfig,
                config: StageConfig,
                *,
                with_features: bool = False):
  """[num_epochs, 5] float32 probabilities, scored batch by batch, each row summing to 1
  (renormalised: an int8 model's rows sum to 1 only within 1/256). With `with_features`
  (a model loaded with features): (probabilities, features [num_epochs, F])

  The next batch's images are computed on a thread of their own while the runtime scores
  the current batch (numpy, BLAS and the runtimes release the GIL); the images are the
  same bytes as computed alone (`spectrogram.spectrogram_images`).
  """
  width = 5 + (model.feature_size if with_features else 0)
  predict = model.predict_features if with_features else model.predict
  out = np.empty((night.num_epochs, width), np.float32)
  window = spectrogram.window(spec) if model.input_kind == "images" else None
  batches = [(first, min(config.batch_size, night.num_epochs - first))
             for first in range(0, night.num_epochs, config.batch_size)]

  def inputs(batch):
    epochs = epochs_of(night, *batch)
    if model.input_kind == "images":
      return spectrogram.spectrogram_images(epochs, spec, window=window)
    return np.ascontiguousarray(epochs, np.float32)

  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    upcoming = pool.submit(inputs, batches[0])
    for i, (first, count) in enumerate(batches):
      ready = upcoming.result()
      if i + 1 < len(batches):
        upcoming = pool.submit(inputs, batches[i + 1])
      out[first:first + count] = predict(ready)
  # A quantised model's softmax sums to 1 only within its output step (int8: 1/256).
  out[:, :5] /= out[:, :5].sum(axis=1, keepdims=True)
  return (out[:, :5], out[:, 5:]) if with_features else out


def record_name(path: str) -> str:
  """The outputs' stem: the file name without its .edf/.bdf extension."""
  name = os.path.basename(path)
  stem, ext = os.path.splitext(name)
  return stem if ext.lower() in (".edf", ".bdf", ".rec") else name


def score_against(hypnogram_path: str, night: Night, probabilities: np.ndarray) -> dict:
  """Metrics of the staged epochs against an expert's hypnogram (Sleep-EDF style EDF+).

  Every scored epoch (W, N1, N2, N3, REM) inside the staged ones counts; no wake is
  trimmed.

  Raises:
    errors.RecordingError: an unreadable hypnogram or one that does not fit the night.
  """
  annotations = edf_reader.read_annotations(hypnogram_path)
  labels = hypnogram.label_epochs(annotations,
                                  psg_duration_s=night.num_epochs * EPOCH_SECONDS,
                                  epoch_seconds=EPOCH_SECONDS,
                                  wake_edge_minutes=None,
                                  source=hypnogram_path)
  if not len(labels.labels):
    raise errors.HypnogramError(hypnogram_path, "scores no epoch of the night")
  predicted = np.argmax(probabilities[labels.epoch_indices], axis=1)
  result = evaluation.metrics(labels.labels, predicted)
  result["hypnogram"] = os.path.abspath(hypnogram_path)
  result["unscored_epochs"] = int(night.num_epochs - len(labels.labels))
  return result


def find_hypnogram(night_path: str, hypnogram_dir: str) -> str:
  """The expert's hypnogram in hypnogram_dir that belongs to a night.

  A Sleep-EDF night pairs by its name's first seven characters (SC4001E0-PSG.edf with
  SC4001EC-Hypnogram.edf, as `sleep_edf.pair_files` does); any night NAME.edf or
  NAME-PSG.edf also pairs with NAME-Hypnogram.edf (letter case ignored).

  Raises:
    errors.PairingError: no such file, or several (the message names the night, the
      directory and what was looked for or found).
  """
  base = re.sub(r"-psg$", "", record_name(night_path), flags=re.IGNORECASE)
  wanted = f"{base}-Hypnogram.edf"
  night_name = sleep_edf.parse_name(night_path)
  found = []
  for name in sorted(os.listdir(hypnogram_dir)):
    parsed = sleep_edf.parse_name(name)
    if name.lower() == wanted.lower() or (night_name and night_name.kind == "PSG" and parsed and
                                          parsed.kind == "Hypnogram" and
                                          parsed.key == night_name.key):
      found.append(os.path.join(hypnogram_dir, name))
  if not found:
    looked_for = wanted + (f" or {night_name.key}?-Hypnogram.edf" if night_name else "")
    raise errors.PairingError(
        night_path, f"no hypnogram for it in {hypnogram_dir} "
        f"(looked for {looked_for})")
  if len(found) > 1:
    raise errors.PairingError(
        night_path, f"{len(found)} hypnograms for it in {hypnogram_dir}: "
        f"{', '.join(os.path.basename(f) for f in found)}; give the one to use with --hypnogram")
  return found[0]


def write_pooled_metrics(output_dir: str, scored: list[dict]) -> dict:
  """Writes the metrics of several scored nights, pooled over their epochs.

  Args:
    output_dir: where metrics_pooled.json and confusion_pooled.png go (no night's
      output is named so: those are <record>.<kind>).
    scored: `stage_night` results that hold "metrics".

  Returns:
    {"metrics": `evaluation.pooled` of the nights plus a "nights" row per night,
     "outputs": {"metrics", "confusion"} paths}.
  """
  result = evaluation.pooled([r["metrics"]["confusion"] for r in scored])
  result["nights"] = [{
      "record": r["record"],
      "path": r["path"],
      "hypnogram": r["metrics"]["hypnogram"],
      **{
          k: r["metrics"][k] for k in ("num_epochs", "acc", "mf1", "kappa", "f1")
      }
  } for r in scored]
  paths = {
      "metrics": os.path.join(output_dir, "metrics_pooled.json"),
      "confusion": os.path.join(output_dir, "confusion_pooled.png"),
  }
  storage.write_text(paths["metrics"], json.dumps(result, indent=1))
  evaluation.plot_confusion(
      result["confusion"],
      paths["confusion"],
      title=(f"{len(scored)} night(s), {result['num_epochs']} epochs: accuracy "
             f"{result['acc']:.1f}%, kappa {result['kappa']:.3f}"))
  return {"metrics": result, "outputs": paths}


def stage_night(path: str,
                model: runtimes.StagingModel,
                output_dir: str,
                config: StageConfig = StageConfig(),
                *,
                hypnogram_path: Optional[str] = None,
                context: Optional[context_lib.ContextStage] = None) -> dict:
  """Stages one night and writes its outputs into output_dir (created).

  Args:
    path: the night's EDF/BDF file.
    model: the per-epoch model (loaded with features for a sequence head).
    output_dir: where the outputs go.
    config: how.
    hypnogram_path: an expert's hypnogram to score against.
    context: the context stage to apply (`context_stage.load`), or None.

  Returns:
    {"record", "epochs", "trailing_seconds", "seconds", "montage" (`montage_note`),
     "outputs" (write_night's paths), "metrics" (with a hypnogram, also written to
     <record>.metrics.json; with a context stage they score its stages, and
     "per_epoch_model" the model's alone), "context" (with a context stage:
     `ContextStage.describe`)}.

  Raises:
    errors.RecordingError: bad input (the message names the file and the problem).
    runtimes.ModelError: a model whose preprocessing differs.
  """
  began = time.perf_counter()
  spec = check_preprocessing(model, config)
  night = read_night(path, config, fs=spec.fs)
  per_epoch = None
  if context is None:
    probabilities = score_night(night, model, spec, config)
  else:
    features = None
    if context.needs_features:
      per_epoch, features = score_night(night, model, spec, config, with_features=True)
    else:
      per_epoch = score_night(night, model, spec, config)
    probabilities = context_lib.apply(context, per_epoch, features)
  os.makedirs(output_dir, exist_ok=True)
  record = record_name(path)
  montage = montage_note(night.label)
  written = outputs.write_night(output_dir,
                                record,
                                np.arange(night.num_epochs) * EPOCH_SECONDS,
                                probabilities,
                                trailing_seconds=night.trailing_seconds,
                                start=night.start,
                                per_epoch_probabilities=per_epoch,
                                context=context.describe() if context else None,
                                extra={"montage": montage} if montage else None)
  result = {
      "record": record,
      "path": night.path,
      "channel": night.label,
      "epochs": night.num_epochs,
      "trailing_seconds": night.trailing_seconds,
      "montage": montage,
      "outputs": {
          k: v for k, v in written.items() if k != "statistics"
      },
  }
  if context is not None:
    result["context"] = context.describe()
  if hypnogram_path:
    result["metrics"] = score_against(hypnogram_path, night, probabilities)
    if context is not None:
      alone = score_against(hypnogram_path, night, per_epoch)
      result["metrics"]["per_epoch_model"] = {
          k: alone[k] for k in ("acc", "mf1", "kappa", "f1", "confusion")
      }
    metrics_path = os.path.join(output_dir, f"{record}.metrics.json")
    storage.write_text(metrics_path, json.dumps(result["metrics"], indent=1))
    result["outputs"]["metrics"] = metrics_path
  result["seconds"] = time.perf_counter() - began
  return result
