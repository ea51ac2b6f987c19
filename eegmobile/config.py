"""Typed, frozen configs for the data path. Entry points build them from flags.

Variants derive from the defaults with `dataclasses.replace`, never by copying fields.
"""

import dataclasses
from typing import Optional

from eegmobile import sleep_edf


@dataclasses.dataclass(frozen=True)
class SpectrogramConfig:
  """How one 30 s epoch becomes an image (defaults: the EEGMobile paper).

  Attributes:
    fs: sampling rate of the epoch, Hz.
    nperseg: samples per STFT segment (scipy.signal.spectrogram).
    noverlap: samples shared by consecutive segments.
    nfft: FFT length (zero padding beyond nperseg).
    window: scipy window spec; scipy's default is a Tukey window with alpha 0.25.
    window_param: the window's parameter (alpha for tukey); ignored for windows without one.
    image_height: rows of the stored image (frequency, low at the bottom).
    image_width: columns of the stored image (time, left to right).
    power_floor: power added before taking dB, so that an exactly-zero bin is finite.
    dynamic_range_db: the colour scale spans at most this far below an image's highest
      power; lower powers show as its lowest colour (None: down to the lowest power, as
      image version 1 did, where float32 rounding could set the scale). A power 100 dB
      below the peak still moves by less than half a colour index under float32 rounding
      (BUILD_NOTES.md, "Same images on every machine").
  """
  fs: float = 100.0
  nperseg: int = 30
  noverlap: int = 16
  nfft: int = 1024
  window: str = "tukey"
  window_param: float = 0.25
  image_height: int = 224
  image_width: int = 224
  power_floor: float = 1e-20
  dynamic_range_db: Optional[float] = 100.0

  def __post_init__(self):
    if not 0 <= self.noverlap < self.nperseg:
      raise ValueError(f"noverlap must be in [0, nperseg), got {self.noverlap} and {self.nperseg}")
    if self.nfft < self.nperseg:
      raise ValueError(f"nfft ({self.nfft}) must be >= nperseg ({self.nperseg})")
    if self.image_height < 2 or self.image_width < 2:
      raise ValueError(f"image size must be at least 2x2, got "
                       f"{self.image_height}x{self.image_width}")
    if self.dynamic_range_db is not None and not self.dynamic_range_db > 0:
      raise ValueError(f"dynamic_range_db must be positive or None, got {self.dynamic_range_db}")

  @classmethod
  def from_dict(cls, recorded: dict) -> "SpectrogramConfig":
    """A recorded config (a manifest's, an export's); fields it lacks take the value the
    version that wrote it had (`RECORDED_BEFORE`), not today's default."""
    return cls(**{**RECORDED_BEFORE, **recorded})


# What a build's images are, beyond their parameters (recorded in its manifest, "image"):
# 1: log10, products over chunks of 4 epochs, no colour-scale floor (builds before
#    2026-12-06; their bytes could depend on the chunk and the BLAS threads);
# 2: natural logs, each epoch's products alone on one BLAS thread, and the config's
#    colour-scale floor (`SpectrogramConfig.dynamic_range_db`, recorded with the config).
IMAGE_VERSION = 2

# Fields added to SpectrogramConfig after builds were recorded without them, with the value
# those builds were made with (image version 1 had no colour-scale floor).
RECORDED_BEFORE = {"dynamic_range_db": None}


@dataclasses.dataclass(frozen=True)
class EpochConfig:
  """How a night is cut into labelled 30 s epochs.

  Attributes:
    channel: EEG channel label to read (aliases are resolved by `edf_reader`).
    target_fs: the rate every recording is resampled to before epoching, Hz.
    epoch_seconds: epoch length (the scoring unit of the hypnograms).
    wake_edge_minutes: minutes of wake kept before the first and after the last sleep
      epoch (None: the whole recording).
  """
  channel: str = "EEG Fpz-Cz"
  target_fs: float = 100.0
  epoch_seconds: float = 30.0
  wake_edge_minutes: Optional[float] = dataclasses.field(default=30.0,
                                                         metadata={"none_word": "all"})

  @property
  def samples_per_epoch(self) -> int:
    return int(round(self.target_fs * self.epoch_seconds))


@dataclasses.dataclass(frozen=True)
class BuildConfig:
  """Everything that determines the bytes of a build (recorded in its manifest).

  Attributes:
    subset: which recordings (`sleep_edf.SUBSETS`).
    epochs: epoching and labelling.
    spectrogram: image computation.
    compression: shard compression ('' for none).
  """
  subset: str = dataclasses.field(default="sleep-edf-20",
                                  metadata={"choices": tuple(sleep_edf.SUBSETS)})
  epochs: EpochConfig = EpochConfig()
  spectrogram: SpectrogramConfig = SpectrogramConfig()
  compression: str = dataclasses.field(default="", metadata={"choices": ("", "GZIP")})

  def __post_init__(self):
    if self.spectrogram.fs != self.epochs.target_fs:
      raise ValueError(f"spectrogram.fs ({self.spectrogram.fs}) must equal epochs.target_fs "
                       f"({self.epochs.target_fs}): epochs are resampled to target_fs first")
    if self.subset not in sleep_edf.SUBSETS:
      raise ValueError(f"unknown subset {self.subset!r}; choose one of "
                       f"{', '.join(sleep_edf.SUBSETS)}")
    if self.compression not in ("", "GZIP"):
      raise ValueError(f"compression must be '' or 'GZIP', got {self.compression!r}")

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> "BuildConfig":
    return cls(subset=d["subset"],
               epochs=EpochConfig(**d["epochs"]),
               spectrogram=SpectrogramConfig.from_dict(d["spectrogram"]),
               compression=d["compression"])
