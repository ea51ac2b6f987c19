"""Tests for eegmobile.staging.openvino_runtime: a tiny exported model run by OpenVINO and tf.lite.

Skipped where OpenVINO is not installed (it is optional: pip install openvino).
"""

import numpy as np
import pytest
import tensorflow as tf

from eegmobile import model as model_lib
from eegmobile import spectrogram
from eegmobile.config import SpectrogramConfig
from tests import fakes
from trainers import export_lib

pytest.importorskip("openvino")
from eegmobile.staging import openvino_runtime  # pylint: disable=g-import-not-at-top,g-bad-import-order

SPEC = SpectrogramConfig(image_height=32, image_width=32)


def _epochs(n: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  t = np.arange(3000) / 100.0
  brown = np.cumsum(rng.normal(size=(n, 3000)), axis=1)
  rhythm = 30 * np.sin(2 * np.pi * rng.uniform(1, 12, size=(n, 1)) * t)
  return (2 * (brown - brown.mean(axis=1, keepdims=True)) + rhythm).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """The export directory of a random 32x32 model whose outputs depend on the input."""
  directory = tmp_path_factory.mktemp("ov")
  build = str(directory / "build")
  fakes.make_fake_build(build, subjects=("SC00",), nights=(1,), epochs_per_night=12)
  model = model_lib.build_model(model_lib.ModelConfig(image_size=32,
                                                      input_colormap="viridis",
                                                      batch_norm_momentum=0.0),
                                weights=None)
  # One training-mode call sets batch-norm statistics, so rows differ (see export_test).
  model(spectrogram.spectrogram_images(_epochs(16, seed=5), SPEC), training=True)
  model.save(str(directory / "m.keras"))
  export_lib.export(str(directory / "m.keras"),
                    str(directory / "out"),
                    preprocessing=export_lib.load_preprocessing(build),
                    formats=("float32", "float16"))
  return str(directory / "out")


def _tflite(path: str, batch: np.ndarray) -> np.ndarray:
  runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
  return next(iter(runner(**{runner.get_input_details().popitem()[0]: batch}).values()))


def test_image_model_agrees_with_tflite(exported):
  images = spectrogram.spectrogram_images(_epochs(7, seed=1), SPEC)
  path = f"{exported}/images_float16.tflite"
  expected = _tflite(path, images)
  got = openvino_runtime.load(path, threads=1, precision="f32")(images)
  assert got.dtype == np.float32 and got.shape == (7, 5)
  np.testing.assert_allclose(got, expected, atol=1e-3)
  assert np.ptp(expected, axis=0).max() > 1e-3  # the rows differ: the check means something


def test_front_end_agrees_with_tflite_within_one_level(exported):
  epochs = _epochs(5, seed=2)
  path = f"{exported}/frontend_float32.tflite"
  got = openvino_runtime.load(path, precision="f32")(epochs)
  differ = np.abs(got - _tflite(path, epochs).astype(np.float32))
  assert differ.max() <= 1 and (differ > 0).mean() < 0.02


def test_raw_epoch_model_gives_probability_rows(exported):
  # Not compared row by row with tf.lite: the front end's rounding differs by one colour
  # level on some pixels (as tf.lite's own does from NumPy's), and a random model moves
  # its probabilities by up to ~0.2 for that; the front end is compared above.
  got = openvino_runtime.load(f"{exported}/eegmobile_float32.tflite",
                              precision="f32")(_epochs(5, seed=2))
  assert got.shape == (5, 5)
  np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)


def test_bf16_gives_probability_rows(exported):
  # Not compared with f32 row by row: on a random model bf16 moves probabilities a lot
  # (bench/runtimes.py measures it); a trained model is the real check.
  images = spectrogram.spectrogram_images(_epochs(6, seed=3), SPEC)
  bf16 = openvino_runtime.load(f"{exported}/images_float16.tflite", threads=1,
                               precision="bf16")(images)
  assert bf16.shape == (6, 5) and np.isfinite(bf16).all()
  np.testing.assert_allclose(bf16.sum(axis=1), 1.0, atol=1e-2)


def test_variable_batch_sizes(exported):
  images = spectrogram.spectrogram_images(_epochs(9, seed=4), SPEC)
  predict = openvino_runtime.load(f"{exported}/images_float16.tflite", precision="f32")
  whole = predict(images)
  for n in (1, 4, 9, 2):
    np.testing.assert_allclose(predict(images[:n]), whole[:n], atol=1e-5)


def test_bad_input_and_files_are_named(exported, tmp_path):
  path = f"{exported}/images_float16.tflite"
  predict = openvino_runtime.load(path, precision="f32")
  with pytest.raises(ValueError, match="images_float16.tflite: input must be uint8"):
    predict(np.zeros((2, 32, 32), np.float32))
  with pytest.raises(ValueError, match=r"uint8 \[n>=1, 32, 32\]"):
    predict(np.zeros((2, 16, 32), np.uint8))
  bad = tmp_path / "junk.tflite"
  bad.write_bytes(b"not a model")
  with pytest.raises(ValueError, match="junk.tflite: OpenVINO cannot read"):
    openvino_runtime.load(str(bad))
  with pytest.raises(ValueError, match="precision"):
    openvino_runtime.load(path, precision="int4")


def test_the_staging_runtime_runs_openvino_at_the_asked_precision(exported):
  from eegmobile.staging import runtimes  # pylint: disable=g-import-not-at-top
  images = spectrogram.spectrogram_images(_epochs(5, seed=2), SPEC)
  path = f"{exported}/images_float16.tflite"
  staged = runtimes.load(path, runtime="openvino", precision="f32")
  assert (staged.runtime, staged.precision, staged.input_kind) == ("openvino", "f32", "images")
  np.testing.assert_allclose(staged.predict(images), _tflite(path, images), atol=1e-3)
  bf16 = runtimes.load(path, runtime="openvino", precision="bf16")
  assert bf16.precision == "bf16" and bf16.predict(images).shape == (5, 5)
  default = runtimes.load(path, runtime="openvino")  # bf16 where the CPU has it
  assert default.precision == ("bf16" if openvino_runtime.native_bf16() else "f32")
  with pytest.raises(runtimes.ModelError, match="needs runtime openvino"):
    runtimes.load(path, runtime="litert", precision="bf16")


def test_bf16_where_the_cpu_has_none_computes_f32(exported, monkeypatch):
  """As OpenVINO itself does on a CPU without bf16; asked for it with oneDNN capped at AVX2
  (an AVX2-only CPU's kernels forced on this one), compiling crashed the process."""
  images = spectrogram.spectrogram_images(_epochs(4, seed=5), SPEC)
  f32 = openvino_runtime.load(f"{exported}/images_float16.tflite", threads=1,
                              precision="f32")(images)
  monkeypatch.setattr(openvino_runtime, "native_bf16", lambda: False)
  bf16 = openvino_runtime.load(f"{exported}/images_float16.tflite", threads=1,
                               precision="bf16")(images)
  np.testing.assert_array_equal(bf16, f32)
