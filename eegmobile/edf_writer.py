"""Writing EDF files: PSGs in the Sleep-EDF layout and EDF+ hypnograms.

Written by hand (numpy) rather than with pyedflib so that every header field matches the
real Sleep-EDF files (`SLEEP_EDF_SC_LAYOUT` is the header of SC4001E0-PSG.edf, field by
field); `edf_writer_test` reads our files back with pyedflib and compares the layout with
the real excerpt. Files are written to `<path>.part` and renamed when complete.
"""

import os
from typing import Sequence

import numpy as np

from eegmobile.edf_reader import SignalHeader

_CASSETTE = "HP:0.5Hz LP:100Hz [enhanced cassette BW]"
# The 7 signals of a Sleep-EDF cassette PSG, 30 s data records (from SC4001E0-PSG.edf).
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
SLEEP_EDF_RECORD_SECONDS = 30.0


def _ascii(value, width: int) -> bytes:
  text = value if isinstance(value, str) else f"{value:g}"
  raw = text.encode("ascii")
  if len(raw) > width:
    raise ValueError(f"EDF header field {text!r} is longer than {width} characters")
  return raw.ljust(width)


def header_bytes(specs: Sequence[SignalHeader],
                 *,
                 num_records: int,
                 record_duration: float,
                 patient: str,
                 recording: str,
                 startdate: str,
                 starttime: str,
                 reserved: str = "") -> bytes:
  """The EDF header (256 + 256 * signals bytes)."""
  fixed = (_ascii("0", 8) + _ascii(patient, 80) + _ascii(recording, 80) + _ascii(startdate, 8) +
           _ascii(starttime, 8) + _ascii(str(256 * (len(specs) + 1)), 8) + _ascii(reserved, 44) +
           _ascii(str(num_records), 8) + _ascii(f"{record_duration:g}", 8) +
           _ascii(str(len(specs)), 4))
  fields = [("label", 16), ("transducer", 80), ("physical_dim", 8), ("physical_min", 8),
            ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefilter", 80),
            ("samples_per_record", 8)]
  columns = b"".join(
      b"".join(_ascii(getattr(s, name), width) for s in specs) for name, width in fields)
  return fixed + columns + b" " * (32 * len(specs))


def to_digital(signal: np.ndarray, spec: SignalHeader) -> np.ndarray:
  """Physical values -> int16 digital values (clipped to the digital range)."""
  gain = (spec.digital_max - spec.digital_min) / (spec.physical_max - spec.physical_min)
  digital = np.round((np.asarray(signal, np.float64) - spec.physical_min) * gain + spec.digital_min)
  return np.clip(digital, spec.digital_min, spec.digital_max).astype("<i2")


def write_edf(path: str,
              specs: Sequence[SignalHeader],
              signals: Sequence[np.ndarray],
              *,
              record_duration: float,
              patient: str = "X X X X",
              recording: str = "Startdate X X X X",
              startdate: str = "01.01.85",
              starttime: str = "00.00.00",
              reserved: str = "") -> None:
  """Writes an EDF file; every signal must fill a whole number of data records.

  Raises:
    ValueError: signals of unequal length in records.
  """
  lengths = {len(sig) / spec.samples_per_record for spec, sig in zip(specs, signals)}
  if len(lengths) != 1 or not float(next(iter(lengths))).is_integer():
    raise ValueError(f"{path}: signals must fill the same whole number of records")
  num_records = int(lengths.pop())
  records = np.concatenate(
      [to_digital(sig, spec).reshape(num_records, -1) for spec, sig in zip(specs, signals)], axis=1)
  with open(path + ".part", "wb") as f:
    f.write(
        header_bytes(specs,
                     num_records=num_records,
                     record_duration=record_duration,
                     patient=patient,
                     recording=recording,
                     startdate=startdate,
                     starttime=starttime,
                     reserved=reserved))
    records.tofile(f)
  os.replace(path + ".part", path)


def write_hypnogram(path: str,
                    annotations: Sequence,
                    *,
                    patient: str = "X X X X",
                    recording: str = "Startdate X X X X",
                    startdate: str = "01.01.85",
                    starttime: str = "00.00.00") -> None:
  """Writes an EDF+C annotation-only file laid out like Sleep-EDF's hypnograms.

  One data record of duration 0 holding one "EDF Annotations" signal: the time-keeping
  TAL "+0", then one TAL "+onset<21>duration<20>description<20>" per annotation.
  """
  tals = b"+0\x14\x14\x00" + b"".join(
      f"+{a.onset:g}\x15{a.duration:g}\x14{a.description}\x14\x00".encode("ascii")
      for a in annotations)
  tals += b"\x00" * (len(tals) % 2)
  spec = SignalHeader("EDF Annotations", "", "", 0, 1, -32768, 32767, "", len(tals) // 2)
  with open(path + ".part", "wb") as f:
    f.write(
        header_bytes([spec],
                     num_records=1,
                     record_duration=0,
                     patient=patient,
                     recording=recording,
                     startdate=startdate,
                     starttime=starttime,
                     reserved="EDF+C"))
    f.write(tals)
  os.replace(path + ".part", path)
