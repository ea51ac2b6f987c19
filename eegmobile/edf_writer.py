"""Writing EDF files: PSGs in the Sleep-EDF layout and EDF+ hypnograms like Sleep-EDF's.

Written by hand (numpy) rather than with pyedflib so that every header byte is under our
control: `SLEEP_EDF_SC_LAYOUT` is the signal header of SC4001E0-PSG.edf field by field,
and `write_hypnogram` reproduces the real Sleep-EDF hypnograms byte for byte (all 39 of
Sleep-EDF-20, checked in `tests/edf_writer_test.py`), including their padding: the
annotation record holds ceil(1.05 * L / 2) two-byte samples for L bytes of annotation
text (the last TAL's closing NUL not counted), the rest zeros.

Header fields are ASCII, left-justified and space-padded as EDF requires; numbers are
written in the shortest form that fits the field, and samples are converted to digital
values with the numbers as written (what every reader will use):
digital = round((physical - pmin) / (pmax - pmin) * (dmax - dmin) + dmin), clipped.
Every file is written through `storage.create`: the final name never holds a
half-written file.
"""

import dataclasses
import re
from typing import Sequence

import numpy as np

from eegmobile import storage
from eegmobile.edf_reader import Annotation
from eegmobile.edf_reader import SignalHeader

ANNOTATIONS_LABEL = "EDF Annotations"
SLEEP_EDF_RECORD_SECONDS = 30.0

_CASSETTE = "HP:0.5Hz LP:100Hz [enhanced cassette BW]"
# The 7 signals of a Sleep-EDF cassette PSG (SC4001E0-PSG.edf), 30 s data records.
SLEEP_EDF_SC_LAYOUT: tuple[SignalHeader, ...] = (
    SignalHeader("EEG Fpz-Cz", "Ag-AgCl electrodes", "uV", -192, 192, -2048, 2047, _CASSETTE, 3000),
    SignalHeader("EEG Pz-Oz", "Ag-AgCl electrodes", "uV", -197, 196, -2048, 2047, _CASSETTE, 3000),
    SignalHeader("EOG horizontal", "Ag-AgCl electrodes", "uV", -1009, 1009, -2048, 2047, _CASSETTE,
                 3000),
    SignalHeader("Resp oro-nasal", "Oral-nasal thermistors", "", -2048, 2047, -2048, 2047,
                 "HP:0.03Hz LP:0.9Hz", 30),
    SignalHeader("EMG submental", "Ag-AgCl electrodes", "uV", -5, 5, -2500, 2500,
                 "HP:16Hz Rectification LP:0.7Hz", 30),
    SignalHeader("Temp rectal", "Rectal thermistor", "DegC", 34, 40, -2849, 2731, "", 30),
    SignalHeader("Event marker", "Marker button", "", -2047, 2048, -2047, 2048,
                 "Hold during 2 seconds", 30),
)

# Per-signal header fields in file order: (SignalHeader attribute, width in bytes).
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("physical_dim", 8), ("physical_min", 8),
                  ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefilter", 80),
                  ("samples_per_record", 8))
_DATE_OR_TIME = re.compile(r"\d\d\.\d\d\.\d\d")


@dataclasses.dataclass(frozen=True, eq=False)
class Signal:
  """One signal to write: its header and its physical samples (header.physical_dim units).

  Attributes:
    header: label, transducer, unit, physical and digital range, prefilter and samples per
      data record.
    data: physical values, a whole number of data records of header.samples_per_record.
  """
  header: SignalHeader
  data: np.ndarray


def format_number(value: float, width: int = 8) -> str:
  """The most precise decimal text of value that fits an EDF header field.

  Args:
    value: the number.
    width: the field's width in characters.

  Returns:
    An integer's digits, or a plain decimal (no exponent) rounded to fit.

  Raises:
    ValueError: not finite, or its integer part alone does not fit.
  """
  value = float(value)
  if not np.isfinite(value):
    raise ValueError(f"EDF header numbers must be finite, got {value}")
  if value.is_integer():
    text = str(int(value))
  else:
    text = ""
    for decimals in range(width, -1, -1):
      text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
      if len(text) <= width:
        break
  text = "0" if text == "-0" else text
  if len(text) > width:
    raise ValueError(f"{value} does not fit an EDF header field of {width} characters")
  return text


def _field(value, width: int, name: str) -> bytes:
  """One header field: printable ASCII, left-justified, space-padded."""
  text = value if isinstance(value, str) else format_number(value, width)
  if not all(32 <= ord(c) < 127 for c in text):
    raise ValueError(f"EDF header field {name} must be printable ASCII, got {text!r}")
  if len(text) > width:
    raise ValueError(f"EDF header field {name} holds {width} characters, got {text!r}")
  return text.encode("ascii").ljust(width)


def _as_written(header: SignalHeader) -> SignalHeader:
  """The header with its numbers as a reader will parse them from the file."""
  return dataclasses.replace(header,
                             physical_min=float(format_number(header.physical_min)),
                             physical_max=float(format_number(header.physical_max)))


def _check_signal_header(header: SignalHeader) -> None:
  written = _as_written(header)
  if written.physical_min == written.physical_max:
    raise ValueError(f"signal {header.label!r}: physical minimum equals maximum")
  if not -32768 <= header.digital_min < header.digital_max <= 32767:
    raise ValueError(f"signal {header.label!r}: need -32768 <= digital min < digital max "
                     f"<= 32767, got {header.digital_min} and {header.digital_max}")
  if header.samples_per_record < 1:
    raise ValueError(f"signal {header.label!r}: samples per record must be >= 1")


def header_bytes(headers: Sequence[SignalHeader],
                 *,
                 num_records: int,
                 record_duration: float,
                 patient: str = "X X X X",
                 recording: str = "Startdate X X X X",
                 startdate: str = "01.01.85",
                 starttime: str = "00.00.00",
                 reserved: str = "") -> bytes:
  """The EDF header: 256 bytes, then 256 bytes per signal.

  Args:
    headers: one per signal, in file order.
    num_records: number of data records.
    record_duration: seconds per data record (0 for an annotation-only EDF+ file).
    patient: local patient identification (80 characters at most).
    recording: local recording identification (80 characters at most).
    startdate: "dd.mm.yy".
    starttime: "hh.mm.ss".
    reserved: "" for EDF, "EDF+C" or "EDF+D" for EDF+.

  Returns:
    256 * (len(headers) + 1) bytes.

  Raises:
    ValueError: a field that is not printable ASCII or does not fit, a malformed date or
      time, or an inconsistent signal header.
  """
  for name, value in (("startdate", startdate), ("starttime", starttime)):
    if not _DATE_OR_TIME.fullmatch(value):
      raise ValueError(f"EDF {name} must look like 'dd.mm.yy' / 'hh.mm.ss', got {value!r}")
  for header in headers:
    _check_signal_header(header)
  fixed = b"".join(
      (_field("0", 8, "version"), _field(patient, 80,
                                         "patient"), _field(recording, 80, "recording"),
       _field(startdate, 8, "startdate"), _field(starttime, 8, "starttime"),
       _field(256 * (len(headers) + 1), 8,
              "header bytes"), _field(reserved, 44,
                                      "reserved"), _field(num_records, 8, "number of records"),
       _field(record_duration, 8, "record duration"), _field(len(headers), 4, "number of signals")))
  columns = b"".join(
      _field(getattr(h, name), width, f"{name} of {h.label!r}")
      for name, width in _SIGNAL_FIELDS
      for h in headers)
  return fixed + columns + b" " * (32 * len(headers))


def to_digital(physical: np.ndarray, header: SignalHeader) -> np.ndarray:
  """Physical values -> little-endian int16 digital values, clipped to the digital range.

  Args:
    physical: samples in the signal's physical unit.
    header: the signal's header (its numbers are used as written to the file).

  Returns:
    "<i2" array of the same length.

  Raises:
    ValueError: a sample that is NaN or infinite.
  """
  written = _as_written(header)
  physical = np.asarray(physical, np.float64)
  if not np.isfinite(physical).all():
    raise ValueError(f"signal {header.label!r} holds NaN or infinite samples")
  gain = (written.digital_max - written.digital_min) / (written.physical_max - written.physical_min)
  digital = (physical - written.physical_min) * gain
  digital += written.digital_min
  np.round(digital, out=digital)
  np.clip(digital, written.digital_min, written.digital_max, out=digital)
  return digital.astype("<i2")


def _write_atomically(path: str, *chunks) -> None:
  """Writes the chunks (bytes or arrays) one after the other, whole or not at all."""
  with storage.create(path) as f:
    for chunk in chunks:
      f.write(np.ascontiguousarray(chunk) if isinstance(chunk, np.ndarray) else chunk)


def write_edf(path: str,
              signals: Sequence[Signal],
              *,
              patient: str = "X X X X",
              recording: str = "Startdate X X X X",
              startdate: str = "01.01.85",
              starttime: str = "00.00.00",
              record_duration: float = SLEEP_EDF_RECORD_SECONDS,
              reserved: str = "") -> None:
  """Writes an EDF file.

  Args:
    path: the file to write (whole or not at all).
    signals: the signals in file order; each must fill the same whole number of records.
    patient: local patient identification.
    recording: local recording identification.
    startdate: "dd.mm.yy".
    starttime: "hh.mm.ss".
    record_duration: seconds per data record.
    reserved: the header's reserved field ("" for plain EDF).

  Raises:
    ValueError: no signals, signals that do not fill the same whole number of data
      records, NaN samples, or a header field that is not valid EDF.
  """
  if not signals:
    raise ValueError(f"{path}: an EDF file needs at least one signal")
  records = {len(s.data) / s.header.samples_per_record for s in signals}
  if len(records) != 1 or not float(next(iter(records))).is_integer():
    lengths = ", ".join(f"{s.header.label} {len(s.data)}" for s in signals)
    raise ValueError(f"{path}: signals must fill the same whole number of records "
                     f"(samples: {lengths})")
  num_records = int(records.pop())
  header = header_bytes([s.header for s in signals],
                        num_records=num_records,
                        record_duration=record_duration,
                        patient=patient,
                        recording=recording,
                        startdate=startdate,
                        starttime=starttime,
                        reserved=reserved)
  # Data record r holds each signal's r-th block of samples_per_record samples in turn.
  data = np.empty((num_records, sum(s.header.samples_per_record for s in signals)), "<i2")
  offset = 0
  for s in signals:
    width = s.header.samples_per_record
    data[:, offset:offset + width] = to_digital(s.data, s.header).reshape(num_records, width)
    offset += width
  _write_atomically(path, header, data)


def format_seconds(seconds: float) -> str:
  """Seconds as EDF+ TAL text: plain decimal, no exponent, integers without a point."""
  seconds = float(seconds)
  if seconds.is_integer():
    return str(int(seconds))
  return np.format_float_positional(seconds, trim="-")


def annotation_tals(annotations: Sequence[Annotation]) -> bytes:
  """The annotation bytes of a one-record hypnogram: the time-keeping TAL, then one TAL per
  annotation ("+onset\\x15duration\\x14description\\x14\\x00"; a negative duration means
  none and is left out).

  Raises:
    ValueError: a description holding the TAL separators \\x00, \\x14 or \\x15.
  """
  tals = [b"+0\x14\x14\x00"]
  for a in annotations:
    if any(c in a.description for c in "\x00\x14\x15"):
      raise ValueError(f"annotation text {a.description!r} holds an EDF+ TAL separator")
    onset = format_seconds(a.onset)
    duration = "" if a.duration < 0 else "\x15" + format_seconds(a.duration)
    sign = "" if onset.startswith("-") else "+"
    tals.append(f"{sign}{onset}{duration}\x14{a.description}\x14\x00".encode("utf-8"))
  return b"".join(tals)


def sleep_edf_annotation_samples(tals: bytes) -> int:
  """Samples in the annotation record of a Sleep-EDF hypnogram holding these TALs.

  The real files reserve 5% more than the text needs: ceil(1.05 * L / 2) samples for L
  bytes without the closing NUL (true of all 39 Sleep-EDF-20 hypnograms).
  """
  text = len(tals) - 1
  return max(-(-text * 105 // 200), -(-len(tals) // 2))


def write_hypnogram(path: str,
                    annotations: Sequence[Annotation],
                    *,
                    patient: str = "X X X X",
                    recording: str = "Startdate X X X X",
                    startdate: str = "01.01.85",
                    starttime: str = "00.00.00") -> None:
  """Writes an EDF+C annotation-only file laid out like Sleep-EDF's hypnograms.

  One data record of duration 0 holding one "EDF Annotations" signal: the time-keeping
  TAL "+0", then one TAL per annotation, then zeros (see `sleep_edf_annotation_samples`).
  Given a real hypnogram's annotations and header fields, the bytes equal the real file's.

  Args:
    path: the file to write (whole or not at all).
    annotations: onset, duration (seconds; negative for none) and description of each,
      written in the given order.
    patient: local patient identification (EDF+: "code sex birthdate name").
    recording: local recording identification (EDF+: "Startdate dd-MMM-yyyy ...").
    startdate: "dd.mm.yy".
    starttime: "hh.mm.ss".

  Raises:
    ValueError: a description holding a TAL separator, or an invalid header field.
  """
  tals = annotation_tals(annotations)
  samples = sleep_edf_annotation_samples(tals)
  header = SignalHeader(ANNOTATIONS_LABEL, "", "", 0, 1, -32768, 32767, "", samples)
  _write_atomically(
      path,
      header_bytes([header],
                   num_records=1,
                   record_duration=0,
                   patient=patient,
                   recording=recording,
                   startdate=startdate,
                   starttime=starttime,
                   reserved="EDF+C"), tals.ljust(2 * samples, b"\x00"))
