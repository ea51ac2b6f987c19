"""Training configs: a frozen dataclass and named experiments derived from the default.

  paper(): the EEGMobile paper's settings: batch 16, 5 epochs training everything, then
           15 epochs training only the top of the backbone and the head, Adam 1e-3
           (Keras' default; the paper names Adam and no rate), ImageNet weights.
  smoke(): one step per phase on whatever build it is given, random weights (tests, CI).
"""

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one fold's training depends on.

  Attributes:
    build_dir: the build (output of beam_pipelines.build).
    workdir: where folds write checkpoints, logs, predictions and metrics.
    fold: the fold to train (0-based).
    num_folds: None = one fold per subject of the build (Sleep-EDF-20: 20).
    num_validation_subjects: held out of training to monitor it; never the test subject.
    weights: "imagenet", a path to backbone weights, or None (random).
    batch_size, phase1_epochs, phase2_epochs, learning_rate: the fine-tune.
    cache: "memory", a file path prefix, or None.
    mixed_precision: "auto" (only with a GPU; on CPU it is many times slower), "on", "off".
    image_size: None = the build's size; else images are resized to it.
    color: "viridis" or "grey".
    seed: initialisation and shuffling.
    steps_per_epoch, validation_steps: None = whole sets (tests use a few steps).
    shuffle: "auto" (full with the memory cache, else stream), "full" (every epoch a uniform random permutation of the training set, held
      in memory as uint8; needs cache "memory") or "stream" (shard interleave and a
      shuffle buffer, for data that does not fit in memory).
    shuffle_buffer: examples held for shuffling (stream only).
    colormap_on: "host" (tf.data yields RGB floats) or "device" (tf.data yields the uint8
      indices and the model's first layer applies the colour map: 12x fewer bytes to feed).
    batch_norm_momentum: None = Keras' 0.999; lower for very short runs (see model.py).
  """
  build_dir: str = "out/sleep-edf-20"
  workdir: str = "runs/paper"
  fold: int = 0
  num_folds: Optional[int] = None
  num_validation_subjects: int = 1
  weights: Optional[str] = "imagenet"
  batch_size: int = 16
  phase1_epochs: int = 5
  phase2_epochs: int = 15
  learning_rate: float = 1e-3
  cache: Optional[str] = "memory"
  mixed_precision: str = "auto"
  image_size: Optional[int] = None
  color: str = "viridis"
  seed: int = 0
  steps_per_epoch: Optional[int] = None
  validation_steps: Optional[int] = None
  shuffle: str = "auto"
  shuffle_buffer: int = 4096
  colormap_on: str = "host"
  batch_norm_momentum: Optional[float] = None

  def __post_init__(self):
    if self.mixed_precision not in ("auto", "on", "off"):
      raise ValueError(f"mixed_precision must be auto, on or off, got {self.mixed_precision!r}")
    if self.colormap_on not in ("host", "device"):
      raise ValueError(f"colormap_on must be host or device, got {self.colormap_on!r}")
    if self.shuffle not in ("auto", "full", "stream"):
      raise ValueError(f"shuffle must be auto, full or stream, got {self.shuffle!r}")
    if self.shuffle == "full" and self.cache != "memory":
      raise ValueError(
          "shuffle 'full' holds the training set in memory: it needs cache "
          f"'memory', not {self.cache!r}; use --shuffle stream for a file cache or none")
    if self.phase1_epochs < 0 or self.phase2_epochs < 0:
      raise ValueError("epochs per phase must be >= 0")

  @property
  def shuffle_mode(self) -> str:
    """"full" or "stream": what `shuffle` means with this cache."""
    if self.shuffle == "auto":
      return "full" if self.cache == "memory" else "stream"
    return self.shuffle

  @property
  def total_epochs(self) -> int:
    return self.phase1_epochs + self.phase2_epochs


def paper(**overrides) -> TrainConfig:
  """The paper's settings (the defaults), with overrides."""
  return dataclasses.replace(TrainConfig(), **overrides)


def smoke(**overrides) -> TrainConfig:
  """One step per phase, random weights: proves the whole path runs."""
  return dataclasses.replace(
      paper(weights=None,
            phase1_epochs=1,
            phase2_epochs=1,
            steps_per_epoch=1,
            validation_steps=1,
            batch_size=4,
            shuffle_buffer=64), **overrides)
