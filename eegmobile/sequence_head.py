"""The learned context stage: a small temporal convolution over the per-epoch features.

    features [1, T, F]  (the per-epoch model's Dense-224 "head_dense" output, a whole night
                         or a crop of one, in time order; T any length)
      -> Normalization (the training features' mean and variance)
      -> Dense(width, relu) -> Dropout
      -> `layers` x Conv1D(width, kernel, relu) -> Dropout   ("same" or "causal" padding)
      -> Dense(5, softmax)  ->  probabilities [1, T, 5]

Each output sees `window` = 1 + layers x (kernel - 1) epochs: centred on its epoch (a
finished night), or the epoch and the window - 1 before it (`causal`, for a live night).
A causal head with `lag` k is trained to give epoch t - k's stage at position t: it reads k
epochs after the one it decides. At the end of a night the causal head is fed k rows of
zeros (`night_inputs`), in training as at staging. Plain convolutions, no recurrence: the
head converts to TFLite as it is and runs in any of staging's runtimes.

Training data are whole nights on the epoch grid (`grid_night`: an epoch the build does
not have gets zero features and no label); a batch is random crops of nights, and an
output is trained on only where the crop gives it the same inputs as the whole night
would (`crop_weights`), so a head trained on crops gives the same outputs on a night.
`trainers/context_lib.py` fits it per fold on the training subjects only.
"""

import dataclasses
from typing import Optional, Sequence

import keras
import numpy as np

from eegmobile import stages

FEATURE_LAYER = "head_dense"  # the per-epoch model's layer whose output the head reads
NO_LABEL = -1


@dataclasses.dataclass(frozen=True)
class HeadConfig:
  """The sequence head's shape.

  Attributes:
    window: epochs each output sees (odd; 1 + a multiple of kernel - 1).
    kernel: temporal kernel size of each convolution.
    width: channels of every layer.
    dropout: dropout rate after each layer (training only).
    causal: see only the present and past (live staging); else centred.
    lag: causal only: epochs after the decided one that it reads.
  """
  window: int = 21
  kernel: int = 5
  width: int = 64
  dropout: float = 0.2
  causal: bool = False
  lag: int = 0

  def __post_init__(self):
    if self.kernel < 2 or self.window < self.kernel or (self.window - 1) % (self.kernel - 1):
      raise ValueError(f"window must be 1 + a multiple of kernel - 1 ({self.kernel - 1}), "
                       f"got window {self.window}, kernel {self.kernel}")
    if self.window % 2 == 0:
      raise ValueError(f"window must be odd, got {self.window}")
    if self.lag < 0 or (self.lag and not self.causal):
      raise ValueError(f"lag must be >= 0 and only for a causal head, got {self.lag}")

  @property
  def layers(self) -> int:
    """Number of convolutions."""
    return (self.window - 1) // (self.kernel - 1)


def build_head(config: HeadConfig,
               feature_mean: np.ndarray,
               feature_variance: np.ndarray,
               *,
               name: str = "sequence_head") -> keras.Model:
  """Builds the head (uncompiled).

  Args:
    config: its shape.
    feature_mean, feature_variance: [F] of the training features (normalisation).
    name: the model's name.

  Returns:
    A keras.Model: float32 features [B, T, F] -> probabilities [B, T, 5], any T.
  """
  size = len(feature_mean)
  inputs = keras.Input((None, size), dtype="float32", name="features")
  x = keras.layers.Normalization(axis=-1,
                                 mean=np.asarray(feature_mean, np.float32),
                                 variance=np.maximum(np.asarray(feature_variance, np.float32),
                                                     1e-6),
                                 name="normalise")(inputs)
  x = keras.layers.Dense(config.width, activation="relu", name="project")(x)
  x = keras.layers.Dropout(config.dropout)(x)
  for i in range(config.layers):
    x = keras.layers.Conv1D(config.width,
                            config.kernel,
                            padding="causal" if config.causal else "same",
                            activation="relu",
                            name=f"conv_{i}")(x)
    x = keras.layers.Dropout(config.dropout)(x)
  outputs = keras.layers.Dense(stages.NUM_STAGES, activation="softmax", name="stages")(x)
  return keras.Model(inputs, outputs, name=name)


def grid_night(epoch_index: Sequence[int],
               features: np.ndarray,
               labels: Optional[Sequence[int]] = None) -> tuple[np.ndarray, np.ndarray]:
  """A night's epochs on its grid, from its first epoch to its last.

  Args:
    epoch_index: increasing indices of the epochs given.
    features: [n, F] their features.
    labels: their stages (default: none known).

  Returns:
    (features [m, F] float32, zero where an epoch is missing; labels int64 [m],
    NO_LABEL where missing or unknown), m = last index - first index + 1.

  Raises:
    ValueError: indices not increasing, or lengths that differ.
  """
  index = np.asarray(epoch_index, np.int64)
  if len(index) != len(features) or (labels is not None and len(labels) != len(index)):
    raise ValueError("epoch indices, features and labels must have one entry per epoch")
  if (np.diff(index) <= 0).any():
    raise ValueError("epoch indices must increase")
  position = index - index[0]
  grid_features = np.zeros((position[-1] + 1, features.shape[1]), np.float32)
  grid_features[position] = features
  grid_labels = np.full(position[-1] + 1, NO_LABEL, np.int64)
  if labels is not None:
    grid_labels[position] = labels
  return grid_features, grid_labels


def night_inputs(config: HeadConfig,
                 features: np.ndarray,
                 labels: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
  """What the head reads for a night and what its outputs are trained to say.

  Centred: the night as it is. Causal with lag k: the night then k rows of zeros, and the
  labels k positions later (output t says epoch t - k).

  Returns:
    (features [m + lag, F], targets [m + lag], NO_LABEL where none).
  """
  labels = np.full(len(features), NO_LABEL) if labels is None else np.asarray(labels)
  if not config.lag:
    return np.asarray(features, np.float32), labels.astype(np.int64)
  pad = np.zeros((config.lag, features.shape[1]), np.float32)
  return (np.concatenate([features, pad]).astype(np.float32),
          np.concatenate([np.full(config.lag, NO_LABEL), labels]).astype(np.int64))


def night_probabilities(config: HeadConfig, outputs: np.ndarray) -> np.ndarray:
  """The night's [m, 5] probabilities from the head's outputs on `night_inputs`."""
  return np.asarray(outputs)[config.lag:]


def crop_weights(config: HeadConfig, start: int, length: int, night_length: int) -> np.ndarray:
  """1 where an output of the crop [start, start + length) of a night sees what it would see
  in the whole night, else 0.

  An output near a crop edge that is not the night's edge would see the convolutions'
  zero padding instead of the epochs beyond the crop.
  """
  position = np.arange(length)
  reach = config.window - 1 if config.causal else (config.window - 1) // 2
  valid = (position >= reach) | (start == 0)
  if not config.causal:
    valid &= (position < length - reach) | (start + length == night_length)
  return valid.astype(np.float32)


def sample_crops(config: HeadConfig, nights: Sequence[tuple[np.ndarray, np.ndarray]],
                 batch_size: int, length: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A training batch: random crops of random nights.

  Args:
    config: the head's shape.
    nights: (features [m, F], targets [m]) per night (`night_inputs`), each at least
      `length` long.
    batch_size: crops.
    length: epochs per crop.
    rng: random generator.

  Returns:
    (features [B, length, F], targets [B, length] (NO_LABEL -> 0), weights [B, length]:
    0 for no label and for outputs the crop edge changes).
  """
  chosen = rng.integers(0, len(nights), size=batch_size)
  x, y, w = [], [], []
  for i in chosen:
    features, targets = nights[i]
    start = int(rng.integers(0, len(features) - length + 1))
    crop_targets = targets[start:start + length]
    x.append(features[start:start + length])
    y.append(np.maximum(crop_targets, 0))
    w.append(crop_weights(config, start, length, len(features)) * (crop_targets != NO_LABEL))
  return np.stack(x), np.stack(y), np.stack(w).astype(np.float32)


def feature_model(model: keras.Model) -> keras.Model:
  """The per-epoch model with two outputs: its probabilities and its features
  (`FEATURE_LAYER`), from the same layers and weights."""
  return keras.Model(model.input, [model.output, model.get_layer(FEATURE_LAYER).output])


def fit_head(config: HeadConfig,
             nights: Sequence[tuple[np.ndarray, np.ndarray]],
             *,
             steps: int,
             batch_size: int = 16,
             crop_length: int = 128,
             learning_rate: float = 1e-3,
             seed: int = 0) -> keras.Model:
  """Trains a head on nights (features on the grid and their stages).

  A fixed schedule (no validation, no early stopping): nothing is chosen from held-out
  data.

  Args:
    config: the head's shape.
    nights: (features [m, F], labels [m], NO_LABEL where none) per night, on the grid
      (`grid_night`); only training subjects' nights belong here.
    steps: Adam steps.
    batch_size: crops per step.
    crop_length: epochs per crop (at most the shortest night's length plus the lag).
    learning_rate: Adam's.
    seed: weights and crops.

  Returns:
    The trained head.

  Raises:
    ValueError: no labelled epoch.
  """
  inputs = [night_inputs(config, f, y) for f, y in nights]
  present = np.concatenate([f[y != NO_LABEL] for f, y in nights])
  if not len(present):
    raise ValueError("no labelled epoch to train the sequence head on")
  keras.utils.set_random_seed(seed)
  head = build_head(config, present.mean(axis=0), present.var(axis=0))
  head.compile(optimizer=keras.optimizers.Adam(learning_rate),
               loss="sparse_categorical_crossentropy")
  length = min(crop_length, min(len(f) for f, _ in inputs))
  rng = np.random.default_rng(seed)
  for _ in range(steps):
    x, y, w = sample_crops(config, inputs, batch_size, length, rng)
    head.train_on_batch(x, y, sample_weight=w)
  return head


def predict_night(head: keras.Model, config: HeadConfig, features: np.ndarray) -> np.ndarray:
  """[m, 5] probabilities of a night's epochs (features on the grid, [m, F])."""
  x, _ = night_inputs(config, features)
  # A direct call, not predict_on_batch: nights differ in length, and predict's compiled
  # function would be traced again for each.
  return night_probabilities(config, np.asarray(head(x[None], training=False))[0])
