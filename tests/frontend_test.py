"""Tests for eegmobile.frontend: the TensorFlow front end against the numpy build path,
eagerly, inside tf.data, inside a tf.function, and converted to TFLite."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from eegmobile import edf_reader
from eegmobile import frontend
from eegmobile import spectrogram
from eegmobile.config import SpectrogramConfig

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")
EXCERPT = os.path.join(SHARED, "excerpt", "SC4001E0-PSG.first300s.edf")

PAPER = SpectrogramConfig()
# Two hops per segment, a plain Hann window, nperseg > 8: numpy's 8-way partial sums.
OTHER = dataclasses.replace(PAPER,
                            nperseg=64,
                            noverlap=32,
                            nfft=256,
                            window="hann",
                            image_height=48,
                            image_width=40)
# No overlap, a segment shorter than numpy's 8 partial sums, an odd nfft.
SHORT = dataclasses.replace(PAPER,
                            nperseg=6,
                            noverlap=0,
                            nfft=63,
                            window="hamming",
                            image_height=20,
                            image_width=30)
CONFIGS = [PAPER, OTHER, SHORT]
IDS = ["paper", "other", "short"]


def _synthetic_epochs(samples: int = 3000, seed: int = 0) -> np.ndarray:
  """Noise, tones, a flat-ish epoch, a large DC offset, a tiny and a huge amplitude.

  The tones carry a trace of noise (0.05 uV, below any amplifier's): a noiseless tone can
  have exact zeros in its spectrum, and then the image's colour scale (its smallest power)
  is float32 rounding noise in any float32 implementation, the numpy path's included (see
  test_noiseless_tones).
  """
  rng = np.random.default_rng(seed)
  t = np.arange(samples) / 100.0
  brown = np.cumsum(rng.normal(size=samples))
  epochs = [
      rng.normal(0, 20, samples),  # white noise
      50 * np.sin(2 * np.pi * 7 * t) + 20 * np.sin(2 * np.pi * 31 * t) +
      0.05 * rng.normal(size=samples),  # tones
      2 * (brown - brown.mean()) + 5 * rng.normal(size=samples),  # EEG-like 1/f background
      3.0 + 1e-3 * rng.normal(size=samples),  # flat-ish: a constant and tiny noise
      1e4 + rng.normal(0, 5, samples) + 30 * np.sin(2 * np.pi * 2 * t),  # large DC offset
      -2e3 + 10 * np.sin(2 * np.pi * 12 * t) + rng.normal(0, 1, samples),
      1e-4 * rng.normal(size=samples),  # microscopic amplitude
      5e3 * np.sin(2 * np.pi * 0.5 * t) + rng.normal(0, 1, samples),  # huge slow wave
  ]
  return np.stack(epochs).astype(np.float32)


def _assert_matches_numpy(images, epochs, config, *, equal_share=0.999):
  """The accepted tolerance between two fast paths: >= 99.9% equal, none off by > 1."""
  expected = spectrogram.spectrogram_images(epochs, config)
  images = np.asarray(images)
  assert images.dtype == np.uint8 and images.shape == expected.shape
  difference = np.abs(images.astype(int) - expected.astype(int))
  assert difference.max() <= 1, difference.max(axis=(1, 2))
  assert (difference == 0).mean() >= equal_share, (difference == 0).mean(axis=(1, 2))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_eager_equals_the_numpy_path(config):
  epochs = _synthetic_epochs()
  _assert_matches_numpy(frontend.spectrogram_images(epochs, config), epochs, config)


def test_noiseless_tones():
  """The paper's window: the tones' smallest power is well above rounding; equal images."""
  t = np.arange(3000) / 100.0
  epochs = np.stack([
      50 * np.sin(2 * np.pi * 7 * t) + 20 * np.sin(2 * np.pi * 31 * t),
      100 * np.sin(2 * np.pi * 40 * t), 30 * np.sin(2 * np.pi * 1.5 * t + 0.3)
  ]).astype(np.float32)
  _assert_matches_numpy(frontend.spectrogram_images(epochs, PAPER), epochs, PAPER)


def test_images_are_not_trivially_equal():
  """The comparison can fail: a different epoch's image is far off."""
  epochs = _synthetic_epochs()
  images = frontend.spectrogram_images(epochs, PAPER).numpy()
  expected = spectrogram.spectrogram_images(epochs, PAPER)
  assert np.abs(images[::-1].astype(int) - expected.astype(int)).max() > 100
  assert int(images.max()) - int(images.min()) > 128


def test_inside_dataset_map():
  epochs = _synthetic_epochs(seed=1)
  images_of = frontend.images_fn(PAPER, 3000)
  ds = tf.data.Dataset.from_tensor_slices(epochs).batch(3).map(images_of)
  _assert_matches_numpy(np.concatenate(list(ds.as_numpy_iterator())), epochs, PAPER)


def test_one_epoch_at_a_time_inside_dataset_map():
  epochs = _synthetic_epochs(seed=2)
  images_of = frontend.images_fn(OTHER, 3000)
  ds = tf.data.Dataset.from_tensor_slices(epochs).map(lambda e: images_of(e[None])[0])
  _assert_matches_numpy(np.stack(list(ds.as_numpy_iterator())), epochs, OTHER)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_inside_a_tf_function_with_a_fixed_signature(config):
  images_of = tf.function(frontend.images_fn(config, 3000),
                          input_signature=[tf.TensorSpec([None, 3000], tf.float32)])
  epochs = _synthetic_epochs(seed=3)
  _assert_matches_numpy(images_of(epochs), epochs, config)
  _assert_matches_numpy(images_of(epochs[:1]), epochs[:1], config)  # another batch size
  assert images_of.get_concrete_function().structured_outputs.shape.as_list() == [
      None, config.image_height, config.image_width
  ]


def test_converts_to_tflite_builtin_ops_and_runs_there(tmp_path):
  """TFLite's matrix kernels sum in yet another order. The smallest power of an epoch whose
  slow wave is thousands of times its noise comes from heavy cancellation, so its colour
  scale moves by a fraction of an index: a few more pixels (under 1%) are one index off."""
  module = tf.Module()
  module.images = tf.function(frontend.images_fn(PAPER, 3000),
                              input_signature=[tf.TensorSpec([None, 3000], tf.float32)])
  tf.saved_model.save(module,
                      str(tmp_path / "frontend"),
                      signatures={"serving_default": module.images})
  converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "frontend"))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
  interpreter = tf.lite.Interpreter(model_content=converter.convert())
  run = interpreter.get_signature_runner()
  epochs = _synthetic_epochs(seed=4)
  (images,) = run(epochs=epochs).values()
  _assert_matches_numpy(images, epochs, PAPER, equal_share=0.99)


def test_real_excerpt_equals_the_numpy_path():
  if not os.path.exists(EXCERPT):
    pytest.skip("../shared/sleep-edf not present")
  channel = edf_reader.read_channel(EXCERPT, "EEG Fpz-Cz")
  epochs = channel.signal.reshape(-1, 3000).astype(np.float32)
  assert epochs.shape == (10, 3000)
  _assert_matches_numpy(frontend.spectrogram_images(epochs, PAPER), epochs, PAPER)


def test_constant_epoch_gives_a_black_image():
  images = frontend.spectrogram_images(np.full((2, 3000), 7.0, np.float32), PAPER).numpy()
  assert (images == 0).all()


def test_bad_shapes_are_refused():
  with pytest.raises(ValueError, match=r"\[n, samples\]"):
    frontend.spectrogram_images(np.zeros(3000, np.float32), PAPER)
  with pytest.raises(ValueError, match="shorter than one STFT segment"):
    frontend.spectrogram_images(np.zeros((2, 10), np.float32), PAPER)
  with pytest.raises(ValueError, match="static number of samples"):
    tf.function(lambda e: frontend.spectrogram_images(e, PAPER),
                input_signature=[tf.TensorSpec([None, None], tf.float32)]).get_concrete_function()
