"""Reading EDF/EDF+ files: one PSG channel in microvolts, and hypnogram annotations.

Two readers, both first-class and tested against each other:

* pyedflib (the field's standard EDF library, a wrapper of EDFlib) reads annotations
  by default, and signals with `read_channel(..., use_pyedflib=True)`.
* Our own parser: `read_header` (every header field, checked), `read_digital` (the data
  records with one `np.fromfile`, sliced to one signal) and `parse_tals` (EDF+
  time-stamped annotation lists). It reads signals by default (faster than pyedflib's
  `readSignal`; BUILD_NOTES.md has the figures). It also reads annotations where
  pyedflib refuses a file, with a logged warning that names the file and pyedflib's
  complaint, and always with `use_pyedflib=False`. `start_datetime` gives a header's
  start date and time.

BDF (BioSemi's 24-bit variant: version field 0xFF "BIOSEMI", 3-byte samples; BDF+C too)
is read by the same parser (`EdfHeader.is_bdf`; `read_digital` gives int32 samples);
tested against pyedflib on BDF files written at test time. Discontinuous EDF+D and BDF+D
files are refused with a message naming the file.

`read_header` runs first for every file, so a short, malformed or truncated file gets a
precise `errors.EdfFormatError` whatever pyedflib would have done with it. Every failure
raises an `errors.RecordingError` subclass whose message names the file.

What was checked (pyedflib 0.1.42, the installed version; `tests/edf_reader_test.py`):

* pyedflib reads all 39 Sleep-EDF-20 hypnograms; for every one, pyedflib and our TAL
  parser give identical annotations (onset, duration, text, order). The issue expected
  some to be refused; with this version none is. For the real PSG excerpt
  (SC4001E0, first 300 s) both readers give the same 30000 samples of EEG Fpz-Cz.
* EDFlib refuses readable files for strict-format reasons. Tested on hand-made files
  (pyedflib really raising, nothing mocked): a start time written "16:13:00" (EDF wants
  "16.13.00"), a right-justified number of records ("       1"), an EDF+ recording
  field whose "Startdate" disagrees with the header's start date (hypnograms), a
  Latin-1 micro sign in a physical dimension (PSG). Our parser reads each and gives
  what pyedflib gives for the same file without the flaw. Also refused by EDFlib
  (measured on a real hypnogram with one field changed, not kept as tests): an EDF+
  patient field without its four subfields, a non-ASCII patient name, a lowercase
  "EDF annotations" label, equal physical minimum and maximum, digital minimum -32767
  in an annotation signal, a version other than "0" (which we refuse too).
* EDFlib reports annotation onsets relative to the file's sub-second start (the onset of
  the first data record's time-keeping TAL); `parse_tals` does the same.
* pyedflib leaves "EDF Annotations" signals out of its signal numbering in EDF+ files;
  `read_channel` maps our signal index to pyedflib's (tested with the annotation signal
  stored first).

Resampling (`resample`): scipy's zero-phase `resample_poly`, so output sample k is the
signal at k / rate_out (tested: a bump's centroid and a sine's phase come out where they
went in). scipy.signal is imported only when a channel needs resampling.
"""

import dataclasses
import datetime
import fractions
import math
import os
import re
from typing import Optional, Sequence

from absl import logging
import numpy as np
import pyedflib

from eegmobile import errors

ANNOTATIONS_LABEL = "EDF Annotations"
BDF_VERSION = "\xffBIOSEMI"  # a BDF header's version field, as read_header gives it

# Physical dimension (lowercase, spaces removed) -> microvolts per unit.
_MICROVOLTS_PER_UNIT = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mcv": 1.0, "mv": 1e3, "v": 1e6}
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Per-signal header fields in file order: (name, width in bytes).
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("physical_dim", 8), ("physical_min", 8),
                  ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefilter", 80),
                  ("samples_per_record", 8), ("reserved", 32))


@dataclasses.dataclass(frozen=True)
class SignalHeader:
  """One signal's header fields (EDF specification, section 'header record')."""
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
  """A parsed EDF/EDF+ header. `num_records` is derived from the file size if the header
  says -1 (unknown)."""
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
    """Length of the recording in seconds (data records x record duration)."""
    return self.num_records * self.record_duration

  @property
  def is_bdf(self) -> bool:
    """BioSemi's 24-bit variant (version field 0xFF 'BIOSEMI'): 3 bytes per sample."""
    return self.version == BDF_VERSION

  @property
  def bytes_per_sample(self) -> int:
    return 3 if self.is_bdf else 2

  @property
  def record_samples(self) -> int:
    """Samples (2- or, in BDF, 3-byte integers) in one data record, all signals together."""
    return sum(s.samples_per_record for s in self.signals)

  @property
  def is_edf_plus(self) -> bool:
    return self.reserved.startswith(("EDF+", "BDF+"))


@dataclasses.dataclass(frozen=True)
class Annotation:
  """One EDF+ annotation; duration is -1 where the file gives none (pyedflib's convention)."""
  onset: float
  duration: float
  description: str


@dataclasses.dataclass(frozen=True)
class Channel:
  """One channel in microvolts, resampled to `fs`.

  Attributes:
    signal: float32 samples in microvolts at `fs`.
    fs: sampling rate of `signal`, Hz.
    original_fs: sampling rate in the file, Hz.
    label: the signal's label as found in the file.
    unit: the signal's physical dimension as found in the file.
    duration_s: length of the recording (data records x record duration), seconds.
    start_s: time of signal[0] from the start of the recording, seconds (0 unless a
      span was asked for).
  """
  signal: np.ndarray
  fs: float
  original_fs: float
  label: str
  unit: str
  duration_s: float
  start_s: float = 0.0


# ---------------------------------------------------------------------------------------
# Header


def _text(raw: bytes) -> str:
  """A header field as text: UTF-8 where valid (EDF+ allows it in some fields), else Latin-1."""
  try:
    return raw.decode("utf-8").strip()
  except UnicodeDecodeError:
    return raw.decode("latin-1").strip()


def _number(raw: bytes, path: str, field: str, integer: bool = False, signal: Optional[str] = None):
  text = _text(raw)
  if not (_INTEGER if integer else _DECIMAL).fullmatch(text):
    of_signal = "" if signal is None else f" of signal {signal!r}"
    raise errors.EdfFormatError(path,
                                f"header field {field!r}{of_signal} is not a number: {text!r}")
  return int(text) if integer else float(text)


def _signal_header(columns: dict[str, list[bytes]], i: int, path: str) -> SignalHeader:
  """Signal i's header from the per-field columns of raw bytes."""
  label = _text(columns["label"][i])

  def number(field: str, integer: bool = False):
    return _number(columns[field][i], path, field.replace("_", " "), integer, label)

  signal = SignalHeader(label=label,
                        transducer=_text(columns["transducer"][i]),
                        physical_dim=_text(columns["physical_dim"][i]),
                        physical_min=number("physical_min"),
                        physical_max=number("physical_max"),
                        digital_min=number("digital_min", True),
                        digital_max=number("digital_max", True),
                        prefilter=_text(columns["prefilter"][i]),
                        samples_per_record=number("samples_per_record", True))
  if signal.samples_per_record < 1:
    raise errors.EdfFormatError(
        path, f"signal {label!r} has {signal.samples_per_record} samples per "
        "data record; at least 1 is needed")
  return signal


def _signal_headers(raw: bytes, num_signals: int, path: str) -> tuple[SignalHeader, ...]:
  """Parses the 256 * ns bytes of per-signal fields (stored field by field: all labels,
  then all transducers, ...)."""
  columns, offset = {}, 0
  for name, width in _SIGNAL_FIELDS:
    columns[name] = [raw[offset + i * width:offset + (i + 1) * width] for i in range(num_signals)]
    offset += width * num_signals
  return tuple(_signal_header(columns, i, path) for i in range(num_signals))


def _read_header_bytes(path: str) -> tuple[bytes, bytes, int, int]:
  """(fixed 256 bytes, per-signal bytes, number of signals, file size)."""
  try:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
      fixed = f.read(256)
      if len(fixed) < 256:
        raise errors.EdfFormatError(path,
                                    f"only {len(fixed)} bytes; an EDF header needs at least 256")
      num_signals = _number(fixed[252:256], path, "number of signals", integer=True)
      if num_signals < 1:
        raise errors.EdfFormatError(path, f"the header declares {num_signals} signals")
      rest = f.read(256 * num_signals)
  except OSError as e:
    raise errors.EdfFormatError(path, f"cannot be read: {e.strerror or e}") from e
  if len(rest) < 256 * num_signals:
    raise errors.EdfFormatError(
        path, f"truncated header: {num_signals} signals need "
        f"{256 * (num_signals + 1)} header bytes, the file has {size}")
  return fixed, rest, num_signals, size


def _count_records(declared: int, record_bytes: int, header_bytes: int, size: int,
                   path: str) -> int:
  """The number of data records: checked against the file size, or derived from it."""
  held = (size - header_bytes) // record_bytes
  if declared == -1:
    return held
  if declared < -1:
    raise errors.EdfFormatError(path, f"the header declares {declared} data records")
  if declared > held:
    raise errors.EdfFormatError(
        path, f"truncated: the header promises {declared} data records of "
        f"{record_bytes} bytes, the file holds {held} ({size} bytes, "
        f"{header_bytes + declared * record_bytes} expected)")
  return declared


def read_header(path: str) -> EdfHeader:
  """Parses and checks an EDF/EDF+ header (our own parser; pyedflib is not used).

  Args:
    path: the EDF file.

  Returns:
    The header, with `num_records` checked against the file size (derived from it when
    the header says -1).

  Raises:
    errors.EdfFormatError: the file is missing or unreadable, shorter than its header,
      not EDF (version other than "0"), has a non-numeric number field, a header size
      that does not match its number of signals, a negative record count or duration, a
      signal without samples, or fewer data records than the header promises
      (truncated: the message says how many it promises and how many the file holds).
  """
  path = str(path)
  fixed, rest, num_signals, size = _read_header_bytes(path)
  version = BDF_VERSION if fixed[0:8] == b"\xffBIOSEMI" else _text(fixed[0:8])
  if version not in ("0", BDF_VERSION):
    raise errors.EdfFormatError(
        path, f"version field is {version!r}, neither '0' (EDF) nor 0xFF 'BIOSEMI' "
        "(BDF): not an EDF or BDF file")
  header_bytes = _number(fixed[184:192], path, "number of header bytes", integer=True)
  if header_bytes != 256 * (num_signals + 1):
    raise errors.EdfFormatError(
        path, f"header size field says {header_bytes} bytes, but "
        f"{num_signals} signals make {256 * (num_signals + 1)}")
  record_duration = _number(fixed[244:252], path, "duration of a data record")
  if record_duration < 0:
    raise errors.EdfFormatError(path, f"negative data record duration {record_duration:g} s")
  signals = _signal_headers(rest, num_signals, path)
  declared = _number(fixed[236:244], path, "number of data records", integer=True)
  num_records = _count_records(declared, (3 if version == BDF_VERSION else 2) *
                               sum(s.samples_per_record for s in signals), header_bytes, size, path)
  return EdfHeader(path=path,
                   version=version,
                   patient=_text(fixed[8:88]),
                   recording=_text(fixed[88:168]),
                   startdate=_text(fixed[168:176]),
                   starttime=_text(fixed[176:184]),
                   header_bytes=header_bytes,
                   reserved=_text(fixed[192:236]),
                   num_records=num_records,
                   record_duration=record_duration,
                   signals=signals)


_DATE = re.compile(r"(\d\d)\.(\d\d)\.(\d\d)")
# EDF wants "hh.mm.ss"; "hh:mm:ss", a flaw EDFlib refuses and `read_header` reads, is accepted.
_TIME = re.compile(r"(\d\d)[.:](\d\d)[.:](\d\d)")


def start_datetime(header: EdfHeader) -> datetime.datetime:
  """When the recording started, from the header's start date and start time.

  The start date is "dd.mm.yy" with EDF's clipping rule (yy 85-99 is 1985-1999, 00-84 is
  2000-2084); the start time is "hh.mm.ss" (or "hh:mm:ss", which `read_header` reads too).

  Args:
    header: the file's header (read_header).

  Returns:
    The start, a naive datetime to the second.

  Raises:
    errors.EdfFormatError: a start date or time that is not in that form or is not a
      real date or time (the message names the file and the field).
  """
  fields = (("start date", "dd.mm.yy", _DATE, header.startdate), ("start time", "hh.mm.ss", _TIME,
                                                                  header.starttime))
  parts = []
  for name, form, pattern, text in fields:
    match = pattern.fullmatch(text)
    if match is None:
      raise errors.EdfFormatError(header.path, f"header {name} {text!r} is not {form}")
    parts.append([int(group) for group in match.groups()])
  (day, month, year), (hour, minute, second) = parts
  year += 1900 if year >= 85 else 2000
  try:
    return datetime.datetime(year, month, day, hour, minute, second)
  except ValueError as e:
    raise errors.EdfFormatError(
        header.path, f"header start {header.startdate!r} {header.starttime!r} "
        f"is not a real date and time ({e})") from e


# ---------------------------------------------------------------------------------------
# Signals


def _normalise_label(label: str) -> str:
  label = re.sub(r"\s+", "", label.lower())
  return label[3:] if label.startswith("eeg") else label


def find_signal(header: EdfHeader, channel: str) -> int:
  """Index of the signal `channel` names (`find_label` over the file's labels).

  Raises:
    errors.ChannelError: no signal matches, or several match equally (names the file).
  """
  return find_label([s.label for s in header.signals], channel, header.path)


def find_label(labels: Sequence[str],
               channel: str,
               source: Optional[str] = None,
               holder: str = "the file") -> int:
  """Index of the label `channel` names among `labels` (a file's signals, a stream's channels).

  An exact label match wins; otherwise case, whitespace and an "EEG" prefix are ignored
  ("Fpz-Cz", "EEG FPZ-CZ" and "eeg fpz-cz" all find "EEG Fpz-Cz").

  Args:
    labels: the channel labels.
    channel: the label asked for.
    source: what holds them (a file's path, a stream's name), for the message.
    holder: how the message names it ("no channel 'X'; the file has ...").

  Raises:
    errors.ChannelError: no label matches, or several match equally.
  """
  labels = list(labels)
  if channel in labels:
    return labels.index(channel)
  matches = [
      i for i, label in enumerate(labels) if _normalise_label(label) == _normalise_label(channel)
  ]
  if len(matches) == 1:
    return matches[0]
  if matches:
    raise errors.ChannelError(
        source, f"channel {channel!r} is ambiguous: it matches " +
        ", ".join(repr(labels[i]) for i in matches))
  raise errors.ChannelError(
      source, f"no channel {channel!r}; {holder} has " + ", ".join(repr(l) for l in labels))


def read_digital(header: EdfHeader,
                 index: int,
                 first_record: int = 0,
                 num_records: Optional[int] = None) -> np.ndarray:
  """Our own reader: one signal's digital samples (int16; int32 for BDF's 24-bit ones), from
  some data records.

  Args:
    header: the file's header (read_header).
    index: the signal's index in the header.
    first_record, num_records: the data records to read (default: all); only their bytes
      are read from the file.
  """
  if num_records is None:
    num_records = header.num_records - first_record
  record_bytes = header.bytes_per_sample * header.record_samples
  start = sum(s.samples_per_record for s in header.signals[:index])
  if header.is_bdf:
    raw = np.fromfile(header.path,
                      dtype=np.uint8,
                      offset=header.header_bytes + first_record * record_bytes,
                      count=num_records * record_bytes).reshape(num_records, -1, 3)
    raw = raw[:, start:start + header.signals[index].samples_per_record].reshape(-1, 3)
    value = raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (
        raw[:, 2].astype(np.int8).astype(np.int32) << 16)
    return value
  data = np.fromfile(header.path,
                     dtype="<i2",
                     offset=header.header_bytes + first_record * record_bytes,
                     count=num_records * header.record_samples)
  records = data.reshape(num_records, header.record_samples)
  start = sum(s.samples_per_record for s in header.signals[:index])
  return records[:, start:start + header.signals[index].samples_per_record].ravel()


def digital_to_physical(digital: np.ndarray, signal: SignalHeader) -> np.ndarray:
  """Digital samples -> physical values (float64), the linear map the header defines."""
  gain = (signal.physical_max - signal.physical_min) / (signal.digital_max - signal.digital_min)
  return (np.asarray(digital, np.float64) - signal.digital_min) * gain + signal.physical_min


def _pyedflib_physical(header: EdfHeader, index: int, first_record: int,
                       num_records: int) -> np.ndarray:
  """One signal in physical units, read by pyedflib (raises OSError if it refuses the file)."""
  # pyedflib leaves EDF+ annotation signals out of its numbering.
  skipped = sum(
      s.label == ANNOTATIONS_LABEL for s in header.signals[:index]) if header.is_edf_plus else 0
  per_record = header.signals[index].samples_per_record
  with pyedflib.EdfReader(header.path) as reader:
    label = reader.getLabel(index - skipped).strip()
    if label != header.signals[index].label:
      raise errors.EdfFormatError(
          header.path, f"pyedflib's signal {index - skipped} is {label!r}, "
          f"our header parser's signal {index} is {header.signals[index].label!r}")
    return reader.readSignal(index - skipped,
                             start=first_record * per_record,
                             n=num_records * per_record,
                             digital=False)


def _physical(header: EdfHeader, index: int, use_pyedflib: bool, first_record: int,
              num_records: int) -> np.ndarray:
  """One signal in physical units: pyedflib, or our reader where pyedflib refuses the file."""
  if use_pyedflib:
    try:
      return _pyedflib_physical(header, index, first_record, num_records)
    except OSError as e:
      logging.warning("%s: pyedflib refused the file (%s); reading it with our own EDF parser",
                      header.path, e)
  return digital_to_physical(read_digital(header, index, first_record, num_records),
                             header.signals[index])


def check_signal_header(header: EdfHeader, signal: SignalHeader) -> float:
  """Checks what reading `signal` in microvolts needs; returns microvolts per unit."""
  if header.reserved.startswith(("EDF+D", "BDF+D")):
    raise errors.EdfFormatError(
        header.path, "is a discontinuous EDF+D recording; only continuous "
        "recordings can be cut into epochs")
  if header.num_records == 0 or header.record_duration <= 0:
    raise errors.EdfFormatError(
        header.path, f"holds no signal data ({header.num_records} data records "
        f"of {header.record_duration:g} s)")
  if signal.digital_max <= signal.digital_min or signal.physical_max == signal.physical_min:
    raise errors.EdfFormatError(
        header.path, f"signal {signal.label!r} has an empty range: digital "
        f"{signal.digital_min}..{signal.digital_max}, physical "
        f"{signal.physical_min:g}..{signal.physical_max:g}")
  return microvolts_per_unit(signal.physical_dim, header.path, signal.label)


def microvolts_per_unit(unit: str, source: Optional[str] = None, label: str = "") -> float:
  """Microvolts in one `unit` (uV, µV, mcV, mV, V, microvolts, volts; case and spaces ignored).

  Raises:
    errors.ChannelError: another unit (the message names `source` and the channel).
  """
  key = re.sub(r"\s+", "", unit.lower())
  key = {
      "microvolts": "uv",
      "microvolt": "uv",
      "millivolts": "mv",
      "volts": "v",
      "volt": "v"
  }.get(key, key)
  scale = _MICROVOLTS_PER_UNIT.get(key)
  if scale is None:
    raise errors.ChannelError(
        source, f"channel {label!r} has unit {unit!r}; expected uV (µV, mcV), mV or V")
  return scale


def _check_samples(path: str, label: str, signal: np.ndarray) -> None:
  if not np.all(np.isfinite(signal)):
    raise errors.ChannelError(path, f"channel {label!r} contains NaN or infinite samples")
  if np.ptp(signal) == 0:
    raise errors.ChannelError(
        path, f"channel {label!r} is flat (every sample equals "
        f"{signal[0]:g}); electrode disconnected?")


def _physical_span(header: EdfHeader, index: int, use_pyedflib: bool, start_s: float,
                   stop_s: float) -> np.ndarray:
  """The samples of a span at the file's own rate: only the data records holding it are read."""
  per_record = header.signals[index].samples_per_record
  fs = per_record / header.record_duration
  start, stop = int(round(start_s * fs)), int(round(stop_s * fs))
  first_record = start // per_record
  num_records = -(-stop // per_record) - first_record
  signal = _physical(header, index, use_pyedflib, first_record, num_records)
  offset = first_record * per_record
  return signal[start - offset:stop - offset]


def read_channel(path: str,
                 channel: str = "EEG Fpz-Cz",
                 *,
                 target_fs: float = 100.0,
                 use_pyedflib: bool = False,
                 start_s: float = 0.0,
                 stop_s: Optional[float] = None,
                 dtype: np.dtype = np.float32) -> Channel:
  """Reads one channel in microvolts, resampled to target_fs.

  Args:
    path: EDF file.
    channel: label to look for (see `find_signal` for the aliases accepted).
    target_fs: output sampling rate, Hz.
    use_pyedflib: read the samples with pyedflib (falling back to our parser where it
      refuses the file); False (default, the same samples, tested, and faster) reads
      them with our parser.
    start_s, stop_s: the part of the recording to return, seconds from its start
      (default: all of it). At the file's own rate only the data records holding it are
      read (a Sleep-EDF build keeps ~40% of each night); a channel to be resampled is
      read whole, resampled, then cut, so that the filter sees the span's context.
    dtype: the signal's type; resampling is done in float64 whatever it is (float64 with
      target_fs the file's own rate: the physical samples as the file holds them, what a
      device streaming the recording would send).

  Returns:
    The channel, with the label and unit as the file spells them; `start_s` says where
    the signal starts.

  Raises:
    errors.EdfFormatError: the file is unreadable, malformed, truncated, discontinuous
      (EDF+D) or holds no data records.
    errors.ChannelError: the channel is missing, in a unit other than uV/mV/V, or has
      NaN/infinite samples or only one value in the span read.
    ValueError: a span outside the recording.
  """
  header = read_header(path)
  index = find_signal(header, channel)
  spec = header.signals[index]
  scale = check_signal_header(header, spec)
  stop_s = header.duration_s if stop_s is None else stop_s
  if not 0 <= start_s <= stop_s <= header.duration_s + 1e-9:
    raise ValueError(f"{header.path}: span {start_s:g}..{stop_s:g} s is not inside the "
                     f"recording's {header.duration_s:g} s")
  fs = spec.samples_per_record / header.record_duration
  if fs == target_fs:
    signal = _physical_span(header, index, use_pyedflib, start_s, stop_s)
  else:  # read whole: the resampling filter sees the span's context
    signal = _physical(header, index, use_pyedflib, 0, header.num_records)
  if scale != 1.0:
    signal *= scale  # a new float64 array (or a slice of one): scaled in place
  if len(signal):
    _check_samples(header.path, spec.label, signal)  # before a filter spreads a NaN
  if fs != target_fs:
    signal = resample(signal, fs, target_fs)
    signal = signal[int(round(start_s * target_fs)):int(round(stop_s * target_fs))]
  return Channel(signal=np.asarray(signal, dtype),
                 fs=float(target_fs),
                 original_fs=fs,
                 label=spec.label,
                 unit=spec.physical_dim,
                 duration_s=header.duration_s,
                 start_s=float(start_s))


# ---------------------------------------------------------------------------------------
# Resampling


def resample(signal: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
  """Resamples a signal with scipy's zero-phase polyphase filter (`resample_poly`).

  Output sample k is the signal at time k / rate_out. The rate ratio is approximated by a
  fraction with a denominator of at most 1000 (exact for whole-number rates such as 128,
  200, 250 or 256 Hz to 100 Hz). scipy.signal is imported here, so that reading a channel
  already at its target rate never imports it.

  Args:
    signal: 1-D samples at rate_in.
    rate_in: input rate, Hz.
    rate_out: output rate, Hz.

  Returns:
    float32 samples at rate_out, floor(len(signal) * rate_out / rate_in) of them.
  """
  # Lazy: scipy.signal is slow to import (BUILD_NOTES.md "Start-up"); only resampling needs it.
  import scipy.signal  # pylint: disable=g-import-not-at-top
  ratio = (fractions.Fraction(rate_out).limit_denominator(10**6) /
           fractions.Fraction(rate_in).limit_denominator(10**6)).limit_denominator(1000)
  num_out = int(math.floor(len(signal) * rate_out / rate_in + 1e-9))
  out = scipy.signal.resample_poly(signal, ratio.numerator, ratio.denominator)
  return np.asarray(out[:num_out], np.float32)


# ---------------------------------------------------------------------------------------
# Annotations


def _parse_tal(tal: bytes, path: Optional[str]) -> tuple[float, float, list[str]]:
  """One TAL "+onset[\\x15duration]\\x14text\\x14...\\x14" -> (onset, duration, texts)."""
  parts = tal.split(b"\x14")
  timing = parts[0].split(b"\x15")
  if len(parts) < 2 or len(timing) > 2:
    raise errors.EdfFormatError(path, f"malformed annotation list {tal!r}")
  try:
    onset = float(timing[0])
    duration = float(timing[1]) if len(timing) > 1 and timing[1] else -1.0
  except ValueError as e:
    raise errors.EdfFormatError(path, f"malformed annotation timing {parts[0]!r}") from e
  texts = parts[1:-1] if parts[-1] == b"" else parts[1:]
  return onset, duration, [t.decode("utf-8", "replace") for t in texts]


def parse_tals(records: Sequence[bytes], path: Optional[str] = None) -> list[Annotation]:
  """Our own EDF+ annotation parser: the "EDF Annotations" bytes of each data record -> annotations.

  Each record holds TALs ending in NUL bytes; its first TAL is the time-keeping one
  ("+onset\\x14\\x14", an empty text marking the record's start), skipped. Onsets are made
  relative to the first record's start, as EDFlib does (it is 0 unless the file starts
  at a fraction of a second).

  Args:
    records: per data record, the bytes of the annotation signal.
    path: the file, for error messages.

  Returns:
    The annotations in file order.

  Raises:
    errors.EdfFormatError: a TAL that cannot be parsed.
  """
  out, start = [], None
  for raw in records:
    for i, tal in enumerate(t for t in raw.split(b"\x00") if t):
      onset, duration, texts = _parse_tal(tal, path)
      if i == 0 and texts and not texts[0]:  # time-keeping TAL
        start = onset if start is None else start
        texts = texts[1:]
      out += [Annotation(onset, duration, text) for text in texts if text]
  start = start or 0.0
  return [Annotation(a.onset - start, a.duration, a.description) for a in out]


def _own_annotations(header: EdfHeader) -> list[Annotation]:
  out = []
  for index, signal in enumerate(header.signals):
    if signal.label == ANNOTATIONS_LABEL and not header.is_bdf:
      digital = read_digital(header, index).reshape(header.num_records, -1)
      out += parse_tals([record.astype("<i2").tobytes() for record in digital], header.path)
  return out


def _pyedflib_annotations(path: str) -> list[Annotation]:
  with pyedflib.EdfReader(path) as reader:
    onsets, durations, texts = reader.readAnnotations()
  return [Annotation(float(o), float(d), str(t)) for o, d, t in zip(onsets, durations, texts)]


def read_annotations(path: str, *, use_pyedflib: bool = True) -> list[Annotation]:
  """Reads an EDF+ file's annotations (a Sleep-EDF hypnogram), sorted by onset.

  Args:
    path: EDF+ file with an "EDF Annotations" signal.
    use_pyedflib: read with pyedflib (falling back to our parser where it refuses the
      file, or where the file does not say it is EDF+); False uses our parser only.

  Returns:
    The annotations, sorted by onset (ties keep file order).

  Raises:
    errors.EdfFormatError: unreadable, malformed or truncated file, a malformed
      annotation, or no "EDF Annotations" signal.
  """
  header = read_header(path)
  if not any(s.label == ANNOTATIONS_LABEL for s in header.signals):
    raise errors.EdfFormatError(
        header.path, f"no {ANNOTATIONS_LABEL!r} signal: not an EDF+ hypnogram "
        "(signals: " + ", ".join(repr(s.label) for s in header.signals) + ")")
  annotations = None
  if use_pyedflib and not header.is_edf_plus:
    logging.warning(
        "%s: reserved field %r does not say EDF+, so pyedflib would ignore its "
        "annotations; reading them with our own EDF parser", header.path, header.reserved)
  elif use_pyedflib:
    try:
      annotations = _pyedflib_annotations(header.path)
    except OSError as e:
      logging.warning("%s: pyedflib refused the file (%s); parsing its annotations ourselves",
                      header.path, e)
  if annotations is None:
    annotations = _own_annotations(header)
  return sorted(annotations, key=lambda a: a.onset)
