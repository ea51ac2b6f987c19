"""Where live samples come from: an LSL stream or a BrainFlow board, behind one interface.

    source = sources.open_source("lsl:NAME", channel="Fpz-Cz")   # or "board:synthetic", ...
    samples, timestamps = source.read(timeout=1.0)   # [n, 1 or 2] float64, [n] unix seconds
    source.close()

A source reads the columns `channel` names (one label, or a pair "A-B" staged A minus B:
`stage_lib.channel_columns`) and gives them with each sample's time on the Unix clock, so
that a night's timeline is wall-clock time whatever the device's own clock (an LSL stream's
timestamps are on `local_clock`, which is moved to the Unix clock once at opening; a
BrainFlow board's timestamp channel is Unix time already). `read` returns what has
arrived (possibly nothing) within `timeout`; it raises `SourceLost` when the stream or
board is gone (an LSL stream that is quiet for `LOST_AFTER_SECONDS` and no longer on the
network, a broken connection, a BrainFlow error), and `reopen()` tries to get it back (the
live loop retries and logs it).

Specs (the command's `--stream` and `--board`):
  lsl:NAME                     an LSL stream by name (resolved on the local network)
  board:synthetic              BrainFlow's synthetic board (250 Hz, 16 channels)
  board:playback:FILE          a file recorded with BrainFlow (by default from the synthetic
                               board: `board_params` {"master_board": "muse_s"} for others)
  board:muse_s, board:cyton... any BrainFlow board by its BoardIds name, lower case, without
                               "_BOARD"; `board_params` set BrainFlowInputParams fields
                               (serial_port, mac_address, ip_address, ...)

mne-lsl and brainflow are optional (`pip install eegmobile[stream]`); a missing one is
named with that command (`MissingDependency`).

LSL units: a stream's channel unit is read as "microvolts"/"uV"/"mV"/"V"..., or, as
mne-lsl's player writes them, as a power of ten of volts ("0" is V, "-6" is µV). A stream
without units is taken to be in microvolts, as the XDF convention for EEG is, and says so.
BrainFlow gives EEG in microvolts.
"""

import abc
import os
import re
import tempfile
import time
from typing import Optional

import numpy as np

from eegmobile import edf_reader
from eegmobile.staging import stage_lib

INSTALL_HINT = "pip install 'eegmobile[stream]'"
# A quiet LSL stream is looked for on the network this often (seconds).
LOST_AFTER_SECONDS = 5.0


class MissingDependency(ImportError):
  """An optional package a source needs is not installed (the message says how to)."""


class SourceError(ValueError):
  """A source that cannot be opened or used (no such stream or board, no such channel)."""


class SourceLost(RuntimeError):
  """The stream or board went away while it was being read."""


class Source(abc.ABC):
  """Samples of the staged channel (or pair), timestamped on the Unix clock.

  Attributes:
    description: what it is, for messages ("LSL stream 'NAME' on HOST", "BrainFlow ...").
    rate: the nominal rate, Hz.
    unit: the samples' unit (scaled to microvolts by the stager).
    labels: every channel's label.
    columns: the staged ones' indices in `labels` (one, or a pair staged first - second).
    notes: things the user should know about how the source was read (e.g. an assumed unit).
  """
  description: str = ""
  rate: float = 0.0
  unit: str = "uV"
  labels: tuple = ()
  columns: list = []
  notes: list = []

  @property
  def channel_label(self) -> str:
    return " - ".join(self.labels[c] for c in self.columns)

  @abc.abstractmethod
  def read(self, timeout: float) -> tuple[np.ndarray, np.ndarray]:
    """What arrived within `timeout` seconds: samples [n, len(columns)] float64, Unix times [n].

    Raises:
      SourceLost: the stream or board is gone.
    """

  @abc.abstractmethod
  def reopen(self) -> None:
    """Connects again after `SourceLost`.

    Raises:
      SourceLost: still gone.
    """

  @abc.abstractmethod
  def close(self) -> None:
    """Lets the stream or board go (safe to call twice)."""


def _pick(source: Source, channel: str) -> None:
  source.columns = stage_lib.channel_columns(source.labels, channel, source.description, "it")


# ---------------------------------------------------------------------------------- LSL


def _quiet_liblsl() -> None:
  """liblsl logs INFO lines to stderr unless a config file says otherwise; keep its errors
  (a broken connection is logged by the live loop, in our words)."""
  if "LSLAPICFG" in os.environ:
    return
  path = os.path.join(tempfile.gettempdir(), "eegmobile-lsl_api.cfg")
  if not os.path.exists(path):
    with open(path + f".{os.getpid()}", "w", encoding="utf-8") as f:
      f.write("[log]\nlevel = -3\n")
    os.replace(path + f".{os.getpid()}", path)
  os.environ["LSLAPICFG"] = path


def _lsl():
  _quiet_liblsl()
  try:
    # Lazy: the stream extra is optional (a missing one is named, not an import error).
    from mne_lsl import lsl  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingDependency(f"--stream lsl:... needs mne-lsl: {INSTALL_HINT}") from e
  return lsl


def lsl_unit(unit: Optional[str]) -> Optional[str]:
  """A unit the stager scales (`edf_reader.microvolts_per_unit`), from an LSL channel unit:
  mne-lsl's powers of ten of volts ("0", "-6") or a name. None where none is given."""
  if unit is None or not str(unit).strip():
    return None
  unit = str(unit).strip()
  if re.fullmatch(r"[+-]?\d+", unit):
    return {0: "V", -3: "mV", -6: "uV"}.get(int(unit), f"1e{int(unit)} V")
  return unit


class LslSource(Source):
  """An LSL stream, by name (see the module docstring)."""

  def __init__(self,
               name: str,
               channel: str,
               resolve_timeout: float = 10.0,
               lost_after: float = LOST_AFTER_SECONDS):
    self._lsl = _lsl()
    self._name = name
    self._resolve_timeout = resolve_timeout
    self._lost_after = lost_after
    self._quiet_since = self._checked_at = time.monotonic()
    self._inlet = None
    self.notes = []
    self._connect(first=True)
    _pick(self, channel)
    units = self._info.get_channel_units() or [None] * len(self.labels)
    picked = {lsl_unit(units[c]) for c in self.columns}
    if len(picked) != 1:
      raise SourceError(f"{self.description}: channels {self.channel_label} have different units")
    unit = picked.pop()
    if unit is None:
      unit = "uV"
      self.notes.append(f"{self.description} gives no unit for {self.channel_label}: taken to "
                        "be microvolts")
    edf_reader.microvolts_per_unit(unit, self.description, self.channel_label)
    self.unit = unit

  def _connect(self, first: bool = False) -> None:
    lsl = self._lsl
    found = lsl.resolve_streams(name=self._name, timeout=self._resolve_timeout)
    if not found:
      if first:
        raise SourceError(f"no LSL stream named {self._name!r} found within "
                          f"{self._resolve_timeout:g} s")
      raise SourceLost(f"LSL stream {self._name!r} not found")
    if len(found) > 1 and first:
      hosts = ", ".join(sorted(f"{s.hostname} ({s.source_id or 'no source id'})" for s in found))
      raise SourceError(f"{len(found)} LSL streams are named {self._name!r}: {hosts}")
    inlet = lsl.StreamInlet(found[0],
                            max_buffered=360,
                            processing_flags=["clocksync"],
                            recover=False)
    try:
      inlet.open_stream(timeout=self._resolve_timeout)
      info = inlet.get_sinfo(timeout=self._resolve_timeout)
    except Exception as e:  # pylint: disable=broad-except  # liblsl's timeout and lost errors
      raise (SourceError
             if first else SourceLost)(f"LSL stream {self._name!r}: cannot open it: {e}") from e
    if first:
      if info.sfreq <= 0:
        raise SourceError(f"LSL stream {self._name!r} has an irregular rate; staging needs a "
                          "nominal one")
      self.rate = float(info.sfreq)
      self.labels = tuple(info.get_channel_names() or
                          [f"ch{i + 1}" for i in range(info.n_channels)])
      self.description = f"LSL stream {self._name!r} on {info.hostname}"
      self._info = info
    self._inlet = inlet
    # local_clock() is seconds since an arbitrary origin (boot): moved to the Unix clock.
    self._to_unix = time.time() - lsl.local_clock()

  def read(self, timeout: float) -> tuple[np.ndarray, np.ndarray]:
    try:
      data, stamps = self._inlet.pull_chunk(timeout=timeout)
    except Exception as e:  # pylint: disable=broad-except  # liblsl's LostError
      raise SourceLost(f"{self.description}: {e}") from e
    if not len(stamps):
      self._check_present()
      return np.zeros((0, len(self.columns))), np.zeros(0)
    self._quiet_since = time.monotonic()
    # mne-lsl returns views of its own buffers, reused by the next pull: copied.
    samples = np.array(np.asarray(data)[:, self.columns], np.float64)
    return samples, np.asarray(stamps, np.float64) + self._to_unix

  def _check_present(self) -> None:
    """An inlet whose outlet went away is not always told (liblsl reports a broken
    connection, not a closed one): a quiet stream is looked for on the network."""
    now = time.monotonic()
    if now - self._quiet_since < self._lost_after or now - self._checked_at < self._lost_after:
      return
    self._checked_at = now
    if not self._lsl.resolve_streams(name=self._name, timeout=min(2.0, self._resolve_timeout)):
      raise SourceLost(f"{self.description}: no samples for {now - self._quiet_since:.0f} s and "
                       "the stream is no longer on the network")

  def reopen(self) -> None:
    self.close()
    self._connect()
    self._quiet_since = self._checked_at = time.monotonic()

  def close(self) -> None:
    if self._inlet is not None:
      try:
        self._inlet.close_stream()
      except Exception:  # pylint: disable=broad-except  # already gone
        pass
      self._inlet = None


# ----------------------------------------------------------------------------- BrainFlow


def _brainflow():
  try:
    # Lazy: the stream extra is optional (a missing one is named, not an import error).
    from brainflow import board_shim  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingDependency(f"--board needs brainflow: {INSTALL_HINT}") from e
  return board_shim


def board_id(name: str) -> int:
  """A BrainFlow board's id from its name ("synthetic", "muse_s", "cyton_daisy", ...).

  Raises:
    SourceError: no such board (the message lists them).
  """
  ids = _brainflow().BoardIds
  key = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
  for candidate in (f"{key}_BOARD", key):
    if candidate in ids.__members__:
      return int(ids[candidate])
  known = sorted(n[:-len("_BOARD")].lower() for n in ids.__members__ if n.endswith("_BOARD"))
  raise SourceError(f"no BrainFlow board {name!r}; boards: {', '.join(known)}")


class BoardSource(Source):
  """A BrainFlow board (see the module docstring)."""

  def __init__(self, spec: str, channel: str, params: Optional[dict] = None):
    self._bf = _brainflow()
    params = dict(params or {})
    input_params = self._bf.BrainFlowInputParams()
    name = spec
    if spec.startswith("playback:"):
      path = spec[len("playback:"):]
      if not os.path.isfile(path):
        raise SourceError(f"board playback:{path}: no such file")
      input_params.file = os.path.abspath(path)
      master = params.pop("master_board", "synthetic")
      input_params.master_board = board_id(master)
      self._id = board_id("playback_file")
      self._data_id = input_params.master_board  # its channels are the master board's
      name = f"playback of {path} ({master})"
    else:
      self._id = self._data_id = board_id(spec)
    for key, value in params.items():
      if not hasattr(input_params, key):
        raise SourceError(f"board {spec}: no BrainFlow input parameter {key!r}")
      setattr(input_params, key, int(value) if key in ("ip_port", "timeout") else value)
    self._params = input_params
    self._playback = spec.startswith("playback:")
    descr = self._bf.BoardShim.get_board_descr(self._data_id)
    self.rate = float(descr["sampling_rate"])
    eeg = list(descr.get("eeg_channels", []))
    names = descr.get("eeg_names", "").split(",") if descr.get("eeg_names") else []
    if len(names) != len(eeg):
      names = [f"EEG{i + 1}" for i in range(len(eeg))]
    self.labels = tuple(names)
    self._rows = eeg
    self._timestamp_row = descr["timestamp_channel"]
    self.description = f"BrainFlow board {name}"
    self.unit = "uV"
    self.notes = []
    _pick(self, channel)
    self._board = None
    self._connect(first=True)

  def _connect(self, first: bool = False) -> None:
    self._bf.BoardShim.disable_board_logger()
    board = self._bf.BoardShim(self._id, self._params)
    try:
      board.prepare_session()
      if self._playback:
        board.config_board("loopback_false")  # the file once, then the stream ends
      board.start_stream()
    except self._bf.BrainFlowError as e:
      try:
        board.release_session()
      except self._bf.BrainFlowError:
        pass
      raise (SourceError if first else SourceLost)(f"{self.description}: {e}") from e
    self._board = board

  def read(self, timeout: float) -> tuple[np.ndarray, np.ndarray]:
    deadline = time.monotonic() + timeout
    while True:
      try:
        data = self._board.get_board_data()
      except self._bf.BrainFlowError as e:
        raise SourceLost(f"{self.description}: {e}") from e
      if data.shape[1] or time.monotonic() >= deadline:
        break
      time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    samples = np.array(data[[self._rows[c] for c in self.columns]].T, np.float64)
    return samples, np.array(data[self._timestamp_row], np.float64)

  def reopen(self) -> None:
    self.close()
    self._connect()

  def close(self) -> None:
    if self._board is not None:
      try:
        self._board.stop_stream()
      except self._bf.BrainFlowError:
        pass
      try:
        self._board.release_session()
      except self._bf.BrainFlowError:
        pass
      self._board = None


def open_source(spec: str, channel: str, board_params: Optional[dict] = None) -> Source:
  """The source a spec names ("lsl:NAME" or "board:..."; see the module docstring).

  Raises:
    MissingDependency: mne-lsl or brainflow is not installed.
    SourceError: no such stream, board or channel.
  """
  if spec.startswith("lsl:") and len(spec) > 4:
    if board_params:
      raise SourceError("board parameters go with a board, not an LSL stream")
    return LslSource(spec[4:], channel)
  if spec.startswith("board:") and len(spec) > 6:
    return BoardSource(spec[6:], channel, board_params)
  raise SourceError(f"{spec!r}: a source is lsl:NAME or board:NAME (synthetic, playback:FILE, "
                    "muse_s, ...)")
