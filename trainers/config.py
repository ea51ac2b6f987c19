"""Training configs: a frozen dataclass and named experiments derived from the default.

  paper(): the EEGMobile paper's settings: batch 16, 5 epochs training everything, then
           15 epochs training only the top of the backbone and the head, Adam 1e-3
           (Keras' default; the paper names Adam and no rate), ImageNet weights.
  smoke(): one step per phase on whatever build it is given, random weights (tests, CI).

`trainers.cv`'s flags are made from TrainConfig's fields (`eegmobile.cli.define_flags`):
each default and help text is written here once.
"""

import dataclasses
from typing import Optional

KERAS_BATCH_NORM_MOMENTUM = 0.999  # Keras' MobileNetV3 default
RANDOM_WEIGHTS_BATCH_NORM_MOMENTUM = 0.9  # see TrainConfig.batch_norm_momentum


def _choices(default: str, *choices: str):
  return dataclasses.field(default=default, metadata={"choices": choices})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one fold's training depends on.

  Attributes:
    build_dir: output of beam_pipelines.build (its image size is the model's input size:
      to train at another size, build at it).
    workdir: checkpoints, logs, predictions and metrics (a local path or an s3:// URL).
    fold: the fold to train (0-based; -1 is the model to ship, `fold_results.FINAL`).
    num_folds: number of folds (None: one fold per subject of the build).
    num_validation_subjects: subjects held out of training to validate on (never the test
      subject).
    weights: 'imagenet', a weights file, or None (random).
    batch_size: examples per batch.
    phase1_epochs: epochs training every layer.
    phase2_epochs: epochs training the top only.
    learning_rate: Adam learning rate.
    cache: 'memory', a file path prefix, or None.
    mixed_precision: auto: on only when a GPU is present (on a CPU it is many times slower).
    color: colour map.
    seed: random seed (initialisation and shuffling).
    steps_per_epoch: limit steps per epoch, training and validation (smoke runs; None:
      whole sets).
    validation_steps: limit validation steps (None: the whole validation set).
    shuffle: auto: full with the memory cache, else stream. full: every epoch a uniform
      random permutation of the training set, held in memory (needs cache 'memory');
      stream: shard interleave and a shuffle buffer, for data that does not fit in memory.
    shuffle_buffer: examples held for shuffling (stream only).
    colormap_on: where the colour map is applied: in tf.data (host) or as the model's first
      layer on the accelerator (device; 12x fewer bytes to feed).
    batch_norm_momentum: batch-norm moving-average momentum (None: Keras' 0.999 with
      ImageNet weights, 0.9 with random weights, whose statistics must follow weights that
      change fast; BUILD_NOTES.md "Training decisions").
    context: context across epochs after the per-epoch model (trainers/context_lib.py),
      fitted per fold on the training subjects: none; smoother (a hidden Markov smoother
      over the probabilities, transitions counted from the training hypnograms); head (a
      temporal convolution over the per-epoch features, and the smoother beside it).
      Staging applies this one. The per-epoch model is the same either way.
    context_lag: epochs after the decided one that the causal (live) variants read.
    context_window: epochs each output of the sequence head sees (1 + a multiple of 4).
    context_head_steps: Adam steps training each sequence head (centred and causal).
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
  mixed_precision: str = _choices("auto", "auto", "on", "off")
  color: str = _choices("viridis", "viridis", "grey")
  seed: int = 0
  steps_per_epoch: Optional[int] = None
  validation_steps: Optional[int] = None
  shuffle: str = _choices("auto", "auto", "full", "stream")
  shuffle_buffer: int = 4096
  colormap_on: str = _choices("host", "host", "device")
  batch_norm_momentum: Optional[float] = None
  context: str = _choices("none", "none", "smoother", "head")
  context_lag: int = 0
  context_window: int = 21
  context_head_steps: int = 1500

  def __post_init__(self):
    for field in dataclasses.fields(self):
      choices = field.metadata.get("choices")
      if choices and getattr(self, field.name) not in choices:
        raise ValueError(f"{field.name} must be one of {', '.join(choices)}, got "
                         f"{getattr(self, field.name)!r}")
    if self.shuffle == "full" and self.cache != "memory":
      raise ValueError(
          "shuffle 'full' holds the training set in memory: it needs cache "
          f"'memory', not {self.cache!r}; use --shuffle stream for a file cache or none")
    if self.phase1_epochs < 0 or self.phase2_epochs < 0:
      raise ValueError("epochs per phase must be >= 0")
    if self.batch_norm_momentum is not None and not 0 <= self.batch_norm_momentum < 1:
      raise ValueError(f"batch_norm_momentum must be in [0, 1), got {self.batch_norm_momentum}")
    if self.context_lag < 0 or self.context_head_steps < 1:
      raise ValueError("context_lag must be >= 0 and context_head_steps >= 1")
    if self.context_window < 5 or (self.context_window - 1) % 4:
      raise ValueError(f"context_window must be 1 + a multiple of 4 (e.g. 17, 21, 25), got "
                       f"{self.context_window}")

  @property
  def shuffle_mode(self) -> str:
    """"full" or "stream": what `shuffle` means with this cache."""
    if self.shuffle == "auto":
      return "full" if self.cache == "memory" else "stream"
    return self.shuffle

  @property
  def total_epochs(self) -> int:
    return self.phase1_epochs + self.phase2_epochs

  @property
  def effective_batch_norm_momentum(self) -> float:
    """The momentum the model trains with (`batch_norm_momentum`, or its default)."""
    if self.batch_norm_momentum is not None:
      return self.batch_norm_momentum
    if self.weights is None:
      return RANDOM_WEIGHTS_BATCH_NORM_MOMENTUM
    return KERAS_BATCH_NORM_MOMENTUM


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
