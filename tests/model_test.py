"""Tests for eegmobile.model: exact parameter counts, phases, weights handling."""

import dataclasses

import keras
import numpy as np
import pytest

from eegmobile import model as model_lib
from tests import kernels


@pytest.fixture(scope="module")
def paper_model():
  return model_lib.build_model(model_lib.ModelConfig(), weights=None)


def test_exact_parameter_counts(paper_model):
  assert paper_model.count_params() == 3_212_741
  model_lib.set_trainable_phase(paper_model, 2)
  assert model_lib.trainable_count(paper_model) == 525_829
  model_lib.set_trainable_phase(paper_model, 1)
  assert model_lib.trainable_count(paper_model) == 3_188_341  # all but BN moving statistics


def test_phase_two_trains_exactly_the_named_top(paper_model):
  model_lib.set_trainable_phase(paper_model, 2)
  trainable = [l.name for l in paper_model.layers if l.trainable and l.weights]
  assert trainable == [
      "expanded_conv_14_project", "expanded_conv_14_project_bn", "conv_1", "conv_1_bn",
      "head_dense", "head_softmax"
  ]
  model_lib.set_trainable_phase(paper_model, 1)


def test_output_shape_and_probabilities():
  model = model_lib.build_model(model_lib.ModelConfig(image_size=32), weights=None)
  out = model(np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32"))
  assert out.shape == (3, 5)
  np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.skipif(
    kernels.onednn_capped_below_avx512(),
    reason="oneDNN capped at AVX2 on an AVX-512 CPU: TensorFlow picks oneDNN's float16 "
    "convolution from the CPU's own flags and oneDNN refuses it; an AVX2-only CPU runs "
    "Eigen's (TensorFlow's IsDataTypeSupportedByOneDNNOnThisCPU)")
def test_mixed_precision_output_stays_float32_and_the_global_policy_is_untouched():
  model = model_lib.build_model(model_lib.ModelConfig(image_size=32, mixed_precision=True),
                                weights=None)
  assert keras.mixed_precision.global_policy().name == "float32"
  assert model.get_layer("head_dense").compute_dtype == "float16"
  assert model.get_layer("conv_1").variable_dtype == "float32"
  assert model.output.dtype == "float32"
  out = model(np.zeros((2, 32, 32, 3), "float32"))
  assert out.dtype == "float32" and out.shape == (2, 5)
  model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
  assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # float16 gradients


def test_the_config_not_the_global_policy_decides():
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = model_lib.build_model(model_lib.ModelConfig(image_size=32), weights=None)
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert model.get_layer("head_dense").compute_dtype == "float32"


def test_weights_from_a_local_file_round_trip(tmp_path):
  config = model_lib.ModelConfig(image_size=32)
  source = keras.applications.MobileNetV3Large(input_shape=(32, 32, 3),
                                               include_top=False,
                                               weights=None)
  path = str(tmp_path / "backbone.weights.h5")
  source.save_weights(path)
  model = model_lib.build_model(config, weights=path)
  np.testing.assert_array_equal(
      model.get_layer("conv_1").get_weights()[0],
      source.get_layer("conv_1").get_weights()[0])


def test_missing_weights_file_and_offline_imagenet_are_clear(tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match="nope.h5: weights file does not exist"):
    model_lib.build_model(model_lib.ModelConfig(image_size=32), weights=str(tmp_path / "nope.h5"))
  real = keras.applications.MobileNetV3Large

  def offline(*args, weights=None, **kwargs):
    if weights == "imagenet":
      raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")
    return real(*args, weights=weights, **kwargs)

  monkeypatch.setattr(keras.applications, "MobileNetV3Large", offline)
  with pytest.raises(model_lib.WeightsUnavailableError, match="--weights /path/to/weights_"):
    model_lib.build_model(model_lib.ModelConfig(image_size=32), weights="imagenet")


def test_config_round_trip():
  config = model_lib.ModelConfig(image_size=64)
  assert model_lib.ModelConfig(**dataclasses.asdict(config)) == config
  with pytest.raises(ValueError, match="phase must be 1 or 2"):
    model_lib.set_trainable_phase(model_lib.build_model(config, weights=None), 3)


def test_colour_map_on_device_equals_colour_map_on_host():
  from eegmobile import colormaps
  on_device = model_lib.build_model(model_lib.ModelConfig(image_size=32, input_colormap="viridis"),
                                    weights=None)
  on_host = model_lib.build_model(model_lib.ModelConfig(image_size=32), weights=None)
  on_host.set_weights(on_device.get_weights())
  assert on_device.count_params() == on_host.count_params()
  indices = np.random.default_rng(0).integers(0, 256, (2, 32, 32)).astype("uint8")
  rgb = colormaps.rgb_table("viridis", "float32")[indices]
  np.testing.assert_allclose(np.asarray(on_device(indices)), np.asarray(on_host(rgb)), atol=1e-6)
