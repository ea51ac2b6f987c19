"""Reading EDF/EDF+ files: a PSG channel in microvolts at 100 Hz, and hypnogram annotations.

Signals and annotations are read with pyedflib (the field's standard EDF library). Some
real-world files break the EDF+ standard in ways pyedflib refuses (older pyedflib
versions refuse some Sleep-EDF hypnograms); for those we fall back to our own parser
(`read_header`, `_read_digital`, `_parse_tals`), which checks only what reading needs, and
log why. pyedflib 0.1.42 reads all 39 Sleep-EDF-20 hypnograms, and `edf_reader_test`
checks that both paths give identical annotations for every one of them and identical
samples for the real PSG excerpt. Every failure raises an `errors.RecordingError`
subclass whose message names the file.
"""

import dataclasses
import os
import re
from typing import Optional

import numpy as np
from absl import logging

from eegmobile import errors

_UNIT_SCALE = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mcv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}


@dataclasses.dataclass(frozen=True)
class SignalHeader:
  label: str
  transducer: str
  physical_dim: str
  physical_min: float
  physical_max: float
  digital_min: int
  digital_max: int
  prefilter: str
  samples_per_record: int


@dataclasses.dataclass(frozen=True)
class EdfHeader:
  path: str
  version: str
  patient: str
  recording: str
  startdate: str
  starttime: str
  header_bytes: int
  reserved: str
  num_records: int
  record_duration: float
  signals: tuple[SignalHeader, ...]

  @property
  def duration_s(self) -> float:
    return self.num_records * self.record_duration

  @property
  def record_samples(self) -> int:
    return sum(s.samples_per_record for s in self.signals)


@dataclasses.dataclass(frozen=True)
class Annotation:
  onset: float
  duration: float
  description: str


@dataclasses.dataclass(frozen=True)
class Channel:
  """One channel, in microvolts, resampled to `fs`."""
  signal: np.ndarray
  fs: float
  original_fs: float
  label: str
  unit: str
  duration_s: float


def _field(raw: bytes, path: str, name: str) -> str:
  try:
    return raw.decode("ascii").strip()
  except UnicodeDecodeError as e:
    raise errors.EdfFormatError(path, f"header field {name!r} is not ASCII") from e


def _number(text: str, path: str, name: str, kind=float):
  try:
    return kind(text)
  except ValueError as e:
    raise errors.EdfFormatError(path, f"header field {name!r} is not a number: {text!r}") from e


def read_header(path: str) -> EdfHeader:
  """Parses and checks an EDF/EDF+ header.

  Raises:
    errors.EdfFormatError: missing, too short, malformed or truncated file.
  """
  if not os.path.exists(path):
    raise errors.EdfFormatError(path, "file does not exist")
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    fixed = f.read(256)
    if len(fixed) < 256:
      raise errors.EdfFormatError(path, f"only {len(fixed)} bytes; an EDF header needs 256")
    num_signals = _number(_field(fixed[252:256], path, "ns"), path, "ns", int)
    if num_signals < 1:
      raise errors.EdfFormatError(path, f"header declares {num_signals} signals")
    rest = f.read(256 * num_signals)
  if len(rest) < 256 * num_signals:
    raise errors.EdfFormatError(
        path, f"truncated header: {num_signals} signals need "
        f"{256 * (num_signals + 1)} header bytes, file has {size}")
  header_bytes = _number(_field(fixed[184:192], path, "header bytes"), path, "header bytes", int)
  if header_bytes != 256 * (num_signals + 1):
    raise errors.EdfFormatError(
        path, f"header size field says {header_bytes} bytes, but "
        f"{num_signals} signals make {256 * (num_signals + 1)}")
  widths = [("label", 16), ("transducer", 80), ("physical_dim", 8), ("physical_min", 8),
            ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefilter", 80),
            ("samples_per_record", 8), ("reserved", 32)]
  columns, offset = {}, 0
  for name, width in widths:
    columns[name] = [
        _field(rest[offset + i * width:offset + (i + 1) * width], path, name)
        for i in range(num_signals)
    ]
    offset += width * num_signals
  signals = tuple(
      SignalHeader(label=columns["label"][i],
                   transducer=columns["transducer"][i],
                   physical_dim=columns["physical_dim"][i],
                   physical_min=_number(columns["physical_min"][i], path, "physical minimum"),
                   physical_max=_number(columns["physical_max"][i], path, "physical maximum"),
                   digital_min=_number(columns["digital_min"][i], path, "digital minimum", int),
                   digital_max=_number(columns["digital_max"][i], path, "digital maximum", int),
                   prefilter=columns["prefilter"][i],
                   samples_per_record=_number(columns["samples_per_record"][i], path, "samples",
                                              int)) for i in range(num_signals))
  record_bytes = 2 * sum(s.samples_per_record for s in signals)
  num_records = _number(_field(fixed[236:244], path, "records"), path, "number of records", int)
  available = (size - header_bytes) // record_bytes if record_bytes else 0
  if num_records == -1:
    num_records = available
  elif num_records > available:
    raise errors.EdfFormatError(
        path, f"truncated: the header promises {num_records} data "
        f"records of {record_bytes} bytes, the file holds {available}")
  return EdfHeader(path=path,
                   version=_field(fixed[0:8], path, "version"),
                   patient=_field(fixed[8:88], path, "patient"),
                   recording=_field(fixed[88:168], path, "recording"),
                   startdate=_field(fixed[168:176], path, "startdate"),
                   starttime=_field(fixed[176:184], path, "starttime"),
                   header_bytes=header_bytes,
                   reserved=_field(fixed[192:236], path, "reserved"),
                   num_records=num_records,
                   record_duration=_number(_field(fixed[244:252], path, "duration"), path,
                                           "record duration"),
                   signals=signals)


def _normalise_label(label: str) -> str:
  label = re.sub(r"\s+", "", label.lower())
  return label[3:] if label.startswith("eeg") else label


def find_signal(header: EdfHeader, channel: str) -> int:
  """Index of the signal whose label matches `channel` (case/space-insensitive, 'EEG ' optional).

  Raises:
    errors.ChannelError: no such signal.
  """
  wanted = _normalise_label(channel)
  for i, signal in enumerate(header.signals):
    if _normalise_label(signal.label) == wanted:
      return i
  raise errors.ChannelError(
      header.path,
      f"no channel {channel!r}; the file has " + ", ".join(repr(s.label) for s in header.signals))


def _read_digital(header: EdfHeader, index: int) -> np.ndarray:
  """Our own reader: one signal's digital samples, all records, as int16."""
  data = np.fromfile(header.path,
                     dtype="<i2",
                     offset=header.header_bytes,
                     count=header.num_records * header.record_samples)
  records = data.reshape(header.num_records, header.record_samples)
  start = sum(s.samples_per_record for s in header.signals[:index])
  return records[:, start:start + header.signals[index].samples_per_record].ravel()


def _physical(header: EdfHeader, index: int) -> np.ndarray:
  """One signal in physical units: pyedflib, or our reader where pyedflib refuses the file."""
  try:
    import pyedflib  # pylint: disable=g-import-not-at-top
    with pyedflib.EdfReader(header.path) as reader:
      return reader.readSignal(index, digital=False)
  except OSError as e:
    logging.warning("%s: pyedflib refused the file (%s); reading it with our own parser",
                    header.path, e)
  s = header.signals[index]
  gain = (s.physical_max - s.physical_min) / (s.digital_max - s.digital_min)
  return (_read_digital(header, index).astype(np.float64) - s.digital_min) * gain + s.physical_min


def _resample(signal: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
  """Resamples with tensorflow-io (integer rates) or scipy's polyphase filter (others)."""
  if float(rate_in).is_integer() and float(rate_out).is_integer():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
    out = tfio.audio.resample(tf.constant(signal[:, None], tf.float32),
                              rate_in=int(rate_in),
                              rate_out=int(rate_out))
    return out.numpy()[:, 0]
  import fractions  # pylint: disable=g-import-not-at-top
  import scipy.signal  # pylint: disable=g-import-not-at-top
  ratio = fractions.Fraction(rate_out / rate_in).limit_denominator(1000)
  return scipy.signal.resample_poly(signal, ratio.numerator, ratio.denominator).astype(np.float32)


def read_channel(path: str, channel: str = "EEG Fpz-Cz", *, target_fs: float = 100.0) -> Channel:
  """Reads one channel in microvolts, resampled to target_fs.

  Args:
    path: EDF file.
    channel: label to look for (aliases: case, spaces and an 'EEG ' prefix are ignored).
    target_fs: output sampling rate, Hz.

  Raises:
    errors.EdfFormatError: the file is unreadable or truncated.
    errors.ChannelError: the channel is missing, in an unknown unit, or NaN/flat.
  """
  header = read_header(path)
  index = find_signal(header, channel)
  spec = header.signals[index]
  scale = _UNIT_SCALE.get(spec.physical_dim.strip().lower())
  if scale is None:
    raise errors.ChannelError(
        path, f"channel {spec.label!r} has unit {spec.physical_dim!r}; "
        "expected V, mV or uV")
  if header.record_duration <= 0 or header.num_records == 0:
    raise errors.ChannelError(path, "holds no signal data (no data records)")
  fs = spec.samples_per_record / header.record_duration
  signal = _physical(header, index) * scale
  if not np.all(np.isfinite(signal)):
    raise errors.ChannelError(path, f"channel {spec.label!r} contains NaN or infinite samples")
  if np.ptp(signal) == 0:
    raise errors.ChannelError(
        path, f"channel {spec.label!r} is flat (every sample equals "
        f"{signal[0]:g}); electrode disconnected?")
  if fs != target_fs:
    signal = _resample(signal, fs, target_fs)
  return Channel(signal=np.asarray(signal, np.float32),
                 fs=target_fs,
                 original_fs=fs,
                 label=spec.label,
                 unit=spec.physical_dim,
                 duration_s=header.duration_s)


def _parse_tals(raw: bytes, path: str) -> list[Annotation]:
  """EDF+ time-stamped annotation lists -> annotations (time-keeping TALs skipped)."""
  out = []
  for tal in raw.split(b"\x00"):
    if not tal.strip(b"\x00"):
      continue
    parts = tal.split(b"\x14")
    timing = parts[0].split(b"\x15")
    try:
      onset = float(timing[0])
      duration = float(timing[1]) if len(timing) > 1 and timing[1] else -1.0
    except ValueError as e:
      raise errors.EdfFormatError(path, f"malformed annotation timing {parts[0]!r}") from e
    for text in parts[1:]:
      if text:
        out.append(Annotation(onset, duration, text.decode("utf-8", "replace")))
  return out


def _own_annotations(path: str) -> list[Annotation]:
  header = read_header(path)
  annotation_signals = [i for i, s in enumerate(header.signals) if s.label == "EDF Annotations"]
  if not annotation_signals:
    raise errors.EdfFormatError(path, "no 'EDF Annotations' signal: not an EDF+ hypnogram")
  out = []
  for index in annotation_signals:
    out += _parse_tals(_read_digital(header, index).astype("<i2").tobytes(), path)
  return sorted(out, key=lambda a: a.onset)


def read_annotations(path: str) -> list[Annotation]:
  """Reads an EDF+ file's annotations (a Sleep-EDF hypnogram), sorted by onset.

  Raises:
    errors.EdfFormatError: unreadable file, or no annotations signal.
  """
  read_header(path)  # clear errors for missing, short or truncated files
  try:
    import pyedflib  # pylint: disable=g-import-not-at-top
    with pyedflib.EdfReader(path) as reader:
      onsets, durations, texts = reader.readAnnotations()
    return sorted(
        (Annotation(float(o), float(d), str(t)) for o, d, t in zip(onsets, durations, texts)),
        key=lambda a: a.onset)
  except OSError as e:
    logging.warning("%s: pyedflib refused the file (%s); parsing its annotations ourselves", path,
                    e)
  return _own_annotations(path)
