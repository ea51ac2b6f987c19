"""Tests for trainers.export_lib and trainers.export: a tiny random-weights model exported
to a SavedModel and TFLite files, compared with the Keras model it came from."""

import dataclasses
import json
import os
import subprocess
import sys

from typing import Optional

import numpy as np
import pytest
import tensorflow as tf

from eegmobile import frontend
from eegmobile import model as model_lib
from eegmobile import spectrogram
from eegmobile.config import SpectrogramConfig
from tests import fakes
from trainers import export_lib

SPEC = SpectrogramConfig(image_height=32, image_width=32)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _epochs(n: int = 6, seed: int = 0) -> np.ndarray:
  """EEG-like epochs: 1/f background, white noise and a rhythm, in microvolts."""
  rng = np.random.default_rng(seed)
  t = np.arange(3000) / 100.0
  brown = np.cumsum(rng.normal(size=(n, 3000)), axis=1)
  brown -= brown.mean(axis=1, keepdims=True)
  rhythm = 30 * np.sin(2 * np.pi * rng.uniform(1, 12, size=(n, 1)) * t)
  return (2 * brown + 5 * rng.normal(size=(n, 3000)) + rhythm).astype(np.float32)


def _save_model(path: str, colormap, soften_on: Optional[np.ndarray] = None) -> str:
  """A random-weights model whose batch-norm statistics are those of some spectrograms.

  With Keras' initial statistics a random MobileNetV3 gives the same probabilities for
  every input; one training-mode call with momentum 0 makes them depend on the input.
  Its outputs are then nearly one-hot, so a pixel one colour index off can flip an epoch
  from 0 to 1; `soften_on` scales the last layer's weights down until no probability so small input differences give small output ones.
  """
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)  # the same model every run: a failure can be reproduced
  model = model_lib.build_model(model_lib.ModelConfig(image_size=32,
                                                      input_colormap=colormap,
                                                      batch_norm_momentum=0.0),
                                weights=None)
  images = spectrogram.spectrogram_images(_epochs(16, seed=5), SPEC)
  if not colormap:
    images = np.asarray(model_lib.ColorMap("viridis")(images))
  model(images, training=True)
  if soften_on is not None:
    head = model.layers[-1]
    while np.asarray(model(soften_on)).max() > 0.9:
      head.set_weights([w / 2 for w in head.get_weights()])
  model.save(path)
  return path


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(directory, subjects=("SC00",), nights=(1,), epochs_per_night=12)
  return directory


@pytest.fixture(scope="module")
def exported(tmp_path_factory, build_dir):
  """(keras model, export directory, record): the indices model, every format."""
  directory = tmp_path_factory.mktemp("export")
  path = _save_model(str(directory / "checkpoint.keras"), "viridis")
  record = export_lib.export(path,
                             str(directory / "out"),
                             preprocessing=export_lib.load_preprocessing(build_dir),
                             calibration_images=export_lib.build_images(build_dir, 12))
  return export_lib.load_keras_model(path), str(directory / "out"), record


def _tflite(path: str, signature: str):
  interpreter = tf.lite.Interpreter(model_path=path)
  runner = interpreter.get_signature_runner(signature)
  return lambda **inputs: next(iter(runner(**inputs).values()))


def test_saved_model_takes_raw_epochs(exported):
  keras_model, out, _ = exported
  loaded = tf.saved_model.load(os.path.join(out, "saved_model"))  # keep it referenced
  epochs = _epochs()
  probabilities = loaded.signatures["serving_default"](epochs=tf.constant(epochs))
  expected = keras_model(frontend.spectrogram_images(epochs, SPEC))
  assert probabilities["probabilities"].shape == (6, 5)
  np.testing.assert_allclose(probabilities["probabilities"], expected, rtol=1e-4, atol=1e-4)
  # and not trivially: other epochs give other probabilities
  assert np.abs(np.asarray(expected) - np.asarray(expected)[::-1]).max() > 1e-4


def test_saved_model_image_and_frontend_signatures(exported):
  keras_model, out, _ = exported
  loaded = tf.saved_model.load(os.path.join(out, "saved_model"))
  epochs = _epochs(seed=1)
  images = spectrogram.spectrogram_images(epochs, SPEC)  # as a build stores them
  probabilities = loaded.signatures["images"](colormap_indices=tf.constant(images))
  np.testing.assert_allclose(probabilities["probabilities"],
                             keras_model(images),
                             rtol=1e-4,
                             atol=1e-4)
  ours = loaded.signatures["frontend"](epochs=tf.constant(epochs))["images"].numpy()
  assert ours.dtype == np.uint8 and ours.shape == images.shape
  assert np.abs(ours.astype(int) - images).max() <= 1


def test_tflite_float32_agrees_with_keras(exported):
  """Compared on TFLite's own images: its front end may put a pixel one index off the numpy
  path's (frontend_test), and this random model magnifies any change of its input."""
  keras_model, out, record = exported
  epochs = _epochs(seed=2)
  images = _tflite(os.path.join(out, record["tflite"]["frontend"]["file"]),
                   "frontend")(epochs=epochs)
  assert np.abs(images.astype(int) - spectrogram.spectrogram_images(epochs, SPEC)).max() <= 1
  run = _tflite(os.path.join(out, record["tflite"]["float32"]["file"]), "serving_default")
  probabilities = run(epochs=epochs)
  expected = np.asarray(keras_model(images))
  assert probabilities.shape == (6, 5)
  np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-4)
  assert np.abs(expected - expected[::-1]).max() > 1e-3  # inputs matter


def _assert_probability_rows(probabilities, n, atol):
  assert probabilities.shape == (n, 5) and probabilities.dtype == np.float32
  assert (probabilities >= 0).all()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=atol)


def test_float16_and_int8_give_probability_rows(exported):
  _, out, record = exported
  epochs = _epochs(seed=3)
  files = {name: os.path.join(out, entry["file"]) for name, entry in record["tflite"].items()}
  assert set(files) == {"float32", "float16", "int8", "frontend"}
  # float16 and int8 take the image: on a device, the float32 front end runs before them.
  images = _tflite(files["frontend"], "frontend")(epochs=epochs)
  assert images.dtype == np.uint8 and images.shape == (6, 32, 32)
  _assert_probability_rows(_tflite(files["float16"], "images")(colormap_indices=images), 6, 1e-5)
  _assert_probability_rows(_tflite(files["int8"], "images")(colormap_indices=images), 6, 0.05)
  sizes = {name: os.path.getsize(path) for name, path in files.items()}
  assert sizes["int8"] < sizes["float16"] < sizes["float32"]
  interpreter = tf.lite.Interpreter(model_path=files["int8"])
  assert {d["dtype"] for d in interpreter.get_tensor_details()} >= {np.int8}


def test_export_record(exported, build_dir):
  _, out, record = exported
  with open(os.path.join(out, "export.json")) as f:
    assert json.load(f) == record
  assert record["preprocessing"]["spectrogram"] == dataclasses.asdict(SPEC)
  assert record["preprocessing"]["samples_per_epoch"] == 3000
  assert record["preprocessing"]["source"] == os.path.join(build_dir, "manifest.json")
  assert record["colormap"] == "viridis" and record["model"]["input"] == "colormap_indices"
  assert record["int8_calibration_images"] == 12
  for entry in record["tflite"].values():
    assert entry["bytes"] == os.path.getsize(os.path.join(out, entry["file"]))
  # An export directory is itself a source of the parameters.
  assert export_lib.load_preprocessing(out).spectrogram == SPEC
  # No context stage beside the model: nothing of one in the export (issue 17).
  assert "context" not in record and "features" not in record["tflite"]
  assert set(record["saved_model"]["signatures"]) == {"serving_default", "images", "frontend"}
  assert not any(name.startswith(("context_", "images_features")) for name in os.listdir(out))


def test_rgb_model_gets_the_colour_map_in_its_image_signature(tmp_path, build_dir):
  path = _save_model(str(tmp_path / "rgb.keras"), None)
  keras_model = export_lib.load_keras_model(path)
  record = export_lib.export(path,
                             str(tmp_path / "out"),
                             preprocessing=export_lib.load_preprocessing(build_dir),
                             formats=())
  assert record["model"]["input"] == "rgb" and record["tflite"] == {}
  loaded = tf.saved_model.load(str(tmp_path / "out" / "saved_model"))
  images = spectrogram.spectrogram_images(_epochs(seed=4), SPEC)
  rgb = np.asarray(model_lib.ColorMap("viridis")(images))
  probabilities = loaded.signatures["images"](colormap_indices=tf.constant(images))
  np.testing.assert_allclose(probabilities["probabilities"], keras_model(rgb), rtol=1e-4, atol=1e-4)


def test_a_file_that_is_not_a_model_is_named(tmp_path, build_dir):
  bad = tmp_path / "checkpoint.keras"
  bad.write_text("not a model")
  with pytest.raises(ValueError, match=f"{bad}: not a saved Keras model"):
    export_lib.export(str(bad),
                      str(tmp_path / "out"),
                      preprocessing=export_lib.load_preprocessing(build_dir))
  with pytest.raises(FileNotFoundError, match="nope.keras: no such model file"):
    export_lib.load_keras_model(str(tmp_path / "nope.keras"))
  assert not (tmp_path / "out").exists()


def test_preprocessing_that_does_not_fit_the_model_is_refused(exported, tmp_path):
  keras_model, _, _ = exported
  path = str(tmp_path / "model.keras")
  keras_model.save(path)
  bigger = tmp_path / "bigger"
  fakes.make_fake_build(str(bigger),
                        subjects=("SC00",),
                        nights=(1,),
                        epochs_per_night=5,
                        image_size=48)
  with pytest.raises(ValueError,
                     match=f"{path}: the model takes 32x32 images but the "
                     f"preprocessing in {bigger}/manifest.json makes 48x48"):
    export_lib.export(path,
                      str(tmp_path / "out"),
                      preprocessing=export_lib.load_preprocessing(str(bigger)))


def test_preprocessing_that_differs_from_the_models_record_is_refused(exported, tmp_path,
                                                                      build_dir):
  keras_model, _, _ = exported
  fold = tmp_path / "fold_00"
  fold.mkdir()
  path = str(fold / "checkpoint.keras")
  keras_model.save(path)
  (fold / "config.json").write_text(json.dumps({"build_dir": build_dir, "color": "viridis"}))
  assert export_lib.resolve_preprocessing(path, None).spectrogram == SPEC  # the record
  # Another build of the same image size, with another FFT length.
  other = tmp_path / "other"
  fakes.make_fake_build(str(other), subjects=("SC00",), nights=(1,), epochs_per_night=5)
  manifest = json.loads((other / "manifest.json").read_text())
  manifest["config"]["spectrogram"]["nfft"] = 512
  (other / "manifest.json").write_text(json.dumps(manifest))
  with pytest.raises(ValueError,
                     match=r"differs from the one the model was trained with "
                     r".*: nfft 512 vs 1024"):
    export_lib.export(path,
                      str(tmp_path / "out"),
                      preprocessing=export_lib.load_preprocessing(str(other)))


def test_no_preprocessing_given_or_recorded_is_a_clear_error(tmp_path):
  path = str(tmp_path / "model.keras")
  with pytest.raises(ValueError, match="no config.json beside the model"):
    export_lib.resolve_preprocessing(path, None)
  with pytest.raises(FileNotFoundError, match="no manifest.json"):
    export_lib.load_preprocessing(str(tmp_path))
  (tmp_path / "manifest.json").write_text(json.dumps({"config": {"spectrogram": {}}}))
  with pytest.raises(ValueError, match="manifest.json: no usable build config"):
    export_lib.load_preprocessing(str(tmp_path))


def test_a_record_whose_build_is_gone(tmp_path, build_dir):
  (tmp_path / "config.json").write_text(json.dumps({"build_dir": str(tmp_path / "moved")}))
  path = str(tmp_path / "checkpoint.keras")
  with pytest.raises(FileNotFoundError, match="config.json: its build .*moved has no manifest"):
    export_lib.resolve_preprocessing(path, None)
  given = export_lib.load_preprocessing(build_dir)
  assert export_lib.resolve_preprocessing(path, given) == given  # nothing to check against


def test_int8_without_calibration_and_unknown_formats_are_refused(exported, tmp_path):
  _, out, _ = exported
  with pytest.raises(ValueError, match="int8 needs calibration images"):
    export_lib.write_tflite(os.path.join(out, "saved_model"), str(tmp_path), formats=["int8"])
  with pytest.raises(ValueError, match="unknown TFLite formats"):
    export_lib.write_tflite(os.path.join(out, "saved_model"), str(tmp_path), formats=["int4"])


def test_command_line_names_the_bad_file(tmp_path):
  bad = tmp_path / "checkpoint.keras"
  bad.write_text("not a model")
  out = subprocess.run([
      sys.executable, "-m", "trainers.export", f"--model={bad}", f"--output_dir={tmp_path}/out",
      f"--preprocessing={tmp_path}"
  ],
                       capture_output=True,
                       text=True,
                       cwd=ROOT,
                       check=False)
  assert out.returncode == 2, out.stderr
  assert f"error: {tmp_path}: no manifest.json" in out.stderr
