"""The EEGMobile model: MobileNetV3Large backbone + a small classification head.

    images [B, 224, 224, 3] in 0..255
      -> keras.applications.MobileNetV3Large(include_top=False, include_preprocessing=True)
      -> GlobalAveragePooling2D -> Dense(224, relu) -> Dense(5, softmax, float32)

The backbone's built-in preprocessing rescales 0..255 to the range its ImageNet weights
expect, so images must arrive in 0..255 (what `tfrecords.datasets` yields).

Fine-tuning phases (the paper): phase 1 trains everything; phase 2 trains "the final
fifteen layers of the pre-trained model, along with the fine-tuning layers", 525,829
trainable parameters. In today's Keras the last 15 layers hold far more than that; the
paper's count is exactly the backbone from `expanded_conv_14_project` onward (that 1x1
projection and its batch norm, the final 1x1 conv and its batch norm) plus the head, so
phase 2 is implemented by that named boundary (`model_test` pins both counts).

The head has no dropout: the paper describes none. Note that in Keras 3 a
BatchNormalization layer whose `trainable` is False also runs in inference mode (it
normalises with its moving statistics and stops updating them), so the frozen part of the
backbone in phase 2 is fully frozen (as it already was in the Keras 2 of TF 2.x).
"""

import dataclasses
import os
from typing import Optional

import keras

from eegmobile import colormaps

_WEIGHTS_FILE = "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Model shape, fine-tuning boundary and numerics.

  Attributes:
    image_size: height and width of the (square) input images.
    num_classes: output classes (the five AASM stages).
    head_units: units of the ReLU layer between pooling and the softmax (the paper: 224).
    phase2_first_layer: first backbone layer that phase 2 still trains.
    batch_norm_momentum: see below.
    input_colormap: see below.
    mixed_precision: build the layers under Keras' "mixed_float16" policy (float16
      compute, float32 variables and output). For GPUs: a CPU has no fast float16
      arithmetic, so there it makes training slower, not faster (BUILD_NOTES.md).
  """
  image_size: int = 224
  num_classes: int = 5
  head_units: int = 224
  phase2_first_layer: str = "expanded_conv_14_project"
  # None keeps Keras' 0.999. Short runs (tests, tiny data) need a faster-moving average:
  # at 0.999 the inference-mode statistics are still mostly their initial values after
  # a few hundred steps, so evaluation is at chance however well training went.
  batch_norm_momentum: Optional[float] = None
  # None: the model takes RGB images in 0..255. A colour map name ("viridis", "grey"):
  # it takes the stored uint8 colour-map indices [B, H, W] and maps them itself, on the
  # accelerator (no parameters), so the input pipeline moves 1 byte a pixel, not 12.
  input_colormap: Optional[str] = None
  mixed_precision: bool = False


class WeightsUnavailableError(RuntimeError):
  """ImageNet weights could not be downloaded and no local file was given."""


@keras.saving.register_keras_serializable(package="eegmobile")
class ColorMap(keras.layers.Layer):
  """uint8 colour-map indices [B, H, W] -> RGB [B, H, W, 3] in 0..255 (a table lookup).

  The table is `eegmobile.colormaps.rgb_table`, the one the input pipeline uses.
  """

  def __init__(self, colormap: str = "viridis", **kwargs):
    super().__init__(**kwargs)
    self.colormap = colormap
    self._table = colormaps.rgb_table(colormap, "float32")

  def call(self, indices):
    table = keras.ops.convert_to_tensor(self._table, dtype=self.compute_dtype)
    return keras.ops.take(table, keras.ops.cast(indices, "int32"), axis=0)

  def get_config(self):
    return {**super().get_config(), "colormap": self.colormap}


@keras.saving.register_keras_serializable(package="eegmobile")
class PredictedClasses(keras.metrics.Metric):
  """How many classes the model's predictions use over an epoch (a collapsed model: 1).

  Counted from the argmax of each prediction; costs nothing beyond the pass Keras makes.
  """

  def __init__(self, num_classes: int = 5, name: str = "predicted_classes", **kwargs):
    super().__init__(name=name, **kwargs)
    self.num_classes = num_classes
    self.counts = self.add_variable(shape=(num_classes,), initializer="zeros", name="counts")

  def update_state(self, y_true, y_pred, sample_weight=None):
    del y_true, sample_weight  # only what was predicted counts
    predicted = keras.ops.one_hot(keras.ops.argmax(y_pred, axis=-1), self.num_classes)
    self.counts.assign_add(keras.ops.sum(keras.ops.cast(predicted, self.counts.dtype), axis=0))

  def result(self):
    return keras.ops.sum(keras.ops.cast(self.counts > 0, "float32"))

  def reset_state(self):
    self.counts.assign(keras.ops.zeros((self.num_classes,), self.counts.dtype))

  def get_config(self):
    return {"num_classes": self.num_classes, "name": self.name}


def _backbone(config: ModelConfig, weights: Optional[str]) -> keras.Model:
  kwargs = dict(input_shape=(config.image_size, config.image_size, 3),
                include_top=False,
                include_preprocessing=True)
  if config.input_colormap:
    indices = keras.Input((config.image_size, config.image_size),
                          dtype="uint8",
                          name="colormap_indices")
    kwargs["input_tensor"] = ColorMap(config.input_colormap, name="colormap")(indices)
  if weights == "imagenet":
    try:
      return keras.applications.MobileNetV3Large(weights="imagenet", **kwargs)
    except Exception as e:  # pylint: disable=broad-except
      raise WeightsUnavailableError(
          "could not download the ImageNet weights of MobileNetV3Large "
          f"({type(e).__name__}: {e}). Offline, download {_WEIGHTS_FILE} elsewhere "
          "(from https://storage.googleapis.com/tensorflow/keras-applications/"
          "mobilenet_v3/), then either put it in ~/.keras/models/ or pass its path: "
          "--weights /path/to/" + _WEIGHTS_FILE) from e
  backbone = keras.applications.MobileNetV3Large(weights=None, **kwargs)
  if weights:
    if not os.path.exists(weights):
      raise FileNotFoundError(f"{weights}: weights file does not exist")
    backbone.load_weights(weights)
  return backbone


def build_model(config: ModelConfig = ModelConfig(), *,
                weights: Optional[str] = "imagenet") -> keras.Model:
  """Builds the classifier.

  Args:
    config: model shape.
    weights: "imagenet" (Keras' download and cache), a path to a backbone weights file
      (.h5 or .weights.h5, no top), or None for random initialisation.

  Returns:
    An uncompiled keras.Model: images [B, H, W, 3] in 0..255 (or colour-map indices
    [B, H, W] with `config.input_colormap`) -> float32 stage probabilities [B, classes].

  Raises:
    WeightsUnavailableError: "imagenet" but the download failed (message says what to do).
    FileNotFoundError: a weights path that does not exist.
  """
  previous = keras.mixed_precision.global_policy()
  # Layers take their dtype policy when built; the global policy is restored afterwards, so
  # building one mixed-precision model does not change what is built next.
  keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")
  try:
    return _classifier(config, weights)
  finally:
    keras.mixed_precision.set_global_policy(previous)


def _classifier(config: ModelConfig, weights: Optional[str]) -> keras.Model:
  backbone = _backbone(config, weights)
  if config.batch_norm_momentum is not None:
    for layer in backbone.layers:
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.momentum = config.batch_norm_momentum
  x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone.output)
  x = keras.layers.Dense(config.head_units, activation="relu", name="head_dense")(x)
  # float32 output even under mixed precision: a float16 softmax loses small probabilities.
  out = keras.layers.Dense(config.num_classes,
                           activation="softmax",
                           dtype="float32",
                           name="head_softmax")(x)
  return keras.Model(backbone.inputs[0], out, name="eegmobile")


def set_trainable_phase(model: keras.Model, phase: int,
                        config: ModelConfig = ModelConfig()) -> None:
  """Phase 1: everything trainable. Phase 2: only from the named boundary onward.

  Raises:
    ValueError: phase not 1 or 2, or the boundary layer is not in the model.
  """
  if phase not in (1, 2):
    raise ValueError(f"phase must be 1 or 2, got {phase}")
  names = [layer.name for layer in model.layers]
  if config.phase2_first_layer not in names:
    raise ValueError(f"layer {config.phase2_first_layer!r} is not in the model")
  boundary = names.index(config.phase2_first_layer)
  for i, layer in enumerate(model.layers):
    layer.trainable = phase == 1 or i >= boundary


def trainable_count(model: keras.Model) -> int:
  """Number of trainable parameters (what `set_trainable_phase` leaves trainable)."""
  return int(sum(keras.ops.size(w) for w in model.trainable_weights))
