"""Export a trained model for serving: a SavedModel and TFLite files that take raw EEG.

Flag-free; `trainers/export.py` is its command line. From a saved Keras model
(`checkpoint.keras`, RGB input or uint8 colour-map indices with its `ColorMap` layer) and
the build's preprocessing parameters (manifest `config.spectrogram` and the epoch length),
`export` writes into one directory:

  saved_model/                  tf.saved_model.save of a module holding the model, with
                                three signatures:
      serving_default           epochs float32 [n, samples] (uV at fs) -> probabilities
                                float32 [n, 5]: the front end (`eegmobile.frontend`) inside
      images                    colormap_indices uint8 [n, H, W] (a build's records)
                                -> probabilities [n, 5]
      frontend                  epochs -> images uint8 [n, H, W]
  eegmobile_float32.tflite      serving_default, float32
  images_float16.tflite         images, weights stored as float16
  images_int8.tflite            images, full integer (int8 weights and activations),
                                calibrated on a build's images; float32 probabilities out
  frontend_float32.tflite       frontend, float32 (with float16 or int8): run before an
                                image model, the raw-epoch path of a quantised model
  export.json                   what was exported: preprocessing, model source, input
                                and output of each file, sizes, calibration

and, when the model's directory holds a context stage (`trainers.context_lib`: its
context/ beside the model, written by trainers.cv --context), export.json's "context"
(the stage staging applies, its lag, the smoother's transitions and priors) and, for a
sequence head, the images_features signature and `images_features_float32.tflite`
(probabilities and the Dense-224 features in one output) and the heads as
`context_head_float32.tflite` and `context_head_causal_float32.tflite`
(`eegmobile.export_format`).

Every TFLite file is converted from the SavedModel's signatures (one graph): converting a
`tf.function` that wraps a live Keras 3 model aborts the process in TF 2.17. The module
is saved with `tf.saved_model.save` and explicit signatures, not `model.export()`, which
stores the weights twice, and it tracks the model's tf.Variables, not the Keras model
(see `_serving_module`). A reloaded SavedModel must stay referenced while its
signatures are called.

Why float16 and int8 only for the image model: the front end's log and per-image min-max
span some 200 dB of power; quantised to 256 levels per tensor, the colour scale of every
image would be wrong, and even its constant matrices stored as float16 move the colour
scale enough to change many predictions (bench/export_table.py). The classifier
quantises well, so the quantised files take the image (as a build stores it) and a
device runs the float32 front end before them (or reads images).
"""

import dataclasses
import json
import os
import tempfile
from typing import Iterable, Optional, Sequence

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from eegmobile import colormaps
from eegmobile import export_format
from eegmobile import frontend
from eegmobile import model as model_lib
from eegmobile import sequence_head
from eegmobile import stages
from eegmobile import storage
from eegmobile.config import BuildConfig
from eegmobile.config import SpectrogramConfig
from tfrecords import datasets
from tfrecords import manifest as manifest_lib
from trainers import context_lib
from trainers import model_card as model_card_lib

EXPORT_FILE = export_format.EXPORT_FILE
FORMATS = export_format.FORMATS
TFLITE_FILES = export_format.TFLITE_FILES
EPOCHS_SIGNATURE = export_format.EPOCHS_SIGNATURE
IMAGES_SIGNATURE = export_format.IMAGES_SIGNATURE
FRONTEND_SIGNATURE = export_format.FRONTEND_SIGNATURE
IMAGES_FEATURES_SIGNATURE = export_format.IMAGES_FEATURES_SIGNATURE
Preprocessing = export_format.Preprocessing


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e


def _from_manifest(path: str) -> Preprocessing:
  manifest = _read_json(path)
  try:
    config = BuildConfig.from_dict(manifest["config"])
  except (KeyError, TypeError, ValueError) as e:
    raise ValueError(f"{path}: no usable build config (config.spectrogram and config.epochs): "
                     f"{type(e).__name__}: {e}") from e
  return Preprocessing(config.spectrogram, config.epochs.samples_per_epoch, path)


def load_preprocessing(source: str) -> Preprocessing:
  """The preprocessing parameters of a build, or the ones a model was trained with.

  Args:
    source: a build directory (its manifest.json), a manifest.json file, a fold directory
      of `trainers.train_lib` (its config.json names the build), or an export directory
      (its export.json).

  Returns:
    The Preprocessing, with `source` naming the file read.

  Raises:
    FileNotFoundError: none of those files is there.
    ValueError: the file holds no usable parameters.
  """
  if os.path.isfile(source):
    if os.path.basename(source) == EXPORT_FILE:
      return _from_export(source)
    return _from_manifest(source)
  for name, read in ((manifest_lib.MANIFEST_FILE, _from_manifest), (EXPORT_FILE, _from_export),
                     ("config.json", _from_train_config)):
    path = os.path.join(source, name)
    if os.path.exists(path):
      return read(path)
  raise FileNotFoundError(f"{source}: no {manifest_lib.MANIFEST_FILE} (a build), config.json "
                          f"(a fold directory) or {EXPORT_FILE} (an export) to read the "
                          "preprocessing parameters from")


def _from_export(path: str) -> Preprocessing:
  recorded = _read_json(path).get("preprocessing")
  if not recorded:
    raise ValueError(f"{path}: no preprocessing recorded")
  return Preprocessing.from_dict(recorded, path)


def _from_train_config(path: str) -> Preprocessing:
  build_dir = _read_json(path).get("build_dir")
  if not build_dir:
    raise ValueError(f"{path}: names no build_dir")
  manifest = os.path.join(build_dir, manifest_lib.MANIFEST_FILE)
  if not os.path.exists(manifest):
    raise FileNotFoundError(f"{path}: its build {build_dir} has no {manifest_lib.MANIFEST_FILE} "
                            "(a relative build_dir is read from the current directory)")
  return _from_manifest(manifest)


CARD_FILE = model_card_lib.CARD_JSON


def model_file(model_path: str) -> str:
  """The .keras file: `model_path` itself, or the one a model directory's card names."""
  if os.path.isdir(model_path):
    card = os.path.join(model_path, CARD_FILE)
    if not os.path.exists(card):
      raise FileNotFoundError(f"{model_path}: a directory without {CARD_FILE}; pass the .keras "
                              "file, or a finished trainers.cv --fold final directory")
    return os.path.join(model_path, _read_json(card).get("model_file", "checkpoint.keras"))
  return model_path


def model_card(model_path: str) -> Optional[dict]:
  """The model card beside the model (a trainers.cv `final` directory), if any."""
  path = os.path.join(os.path.dirname(os.path.abspath(model_file(model_path))), CARD_FILE)
  return _read_json(path) if os.path.exists(path) else None


def _from_card(path: str) -> Preprocessing:
  try:
    return Preprocessing.from_dict(_read_json(path).get("preprocessing", {}), path)
  except (KeyError, TypeError, ValueError) as e:
    raise ValueError(f"{path}: no usable preprocessing: {type(e).__name__}: {e}") from e


def recorded_preprocessing(model_path: str) -> Optional[Preprocessing]:
  """The preprocessing the model records: its model card, else its fold's config.json."""
  model_path = model_file(model_path)
  card = os.path.join(os.path.dirname(os.path.abspath(model_path)), CARD_FILE)
  if os.path.exists(card):
    return _from_card(card)
  config = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
  if not os.path.exists(config):
    return None
  return _from_train_config(config)


def _differences(a: SpectrogramConfig, b: SpectrogramConfig) -> list[str]:
  left, right = dataclasses.asdict(a), dataclasses.asdict(b)
  return [f"{k} {left[k]!r} vs {right[k]!r}" for k in left if left[k] != right[k]]


def resolve_preprocessing(model_path: str, given: Optional[Preprocessing]) -> Preprocessing:
  """The parameters to export with: those given, checked against the model's record.

  Raises:
    ValueError: none given and none recorded beside the model, or the given ones differ
      from the recorded ones (the message names both files and every differing field).
  """
  try:
    recorded = recorded_preprocessing(model_path)
  except FileNotFoundError as e:
    if given is None:
      raise
    logging.warning("not checked against the model's record: %s", e)
    recorded = None
  if given is None:
    if recorded is None:
      raise ValueError(f"{model_path}: no config.json beside the model records its build; "
                       "pass the build directory (its manifest.json) to read the "
                       "preprocessing parameters from")
    return recorded
  if recorded is not None:
    differ = _differences(given.spectrogram, recorded.spectrogram)
    if given.samples_per_epoch != recorded.samples_per_epoch:
      differ.append(f"samples_per_epoch {given.samples_per_epoch} vs "
                    f"{recorded.samples_per_epoch}")
    if differ:
      raise ValueError(f"{model_path}: the preprocessing in {given.source} differs from the "
                       f"one the model was trained with ({recorded.source}): " + "; ".join(differ))
  return given


def load_keras_model(path: str):
  """Loads a saved Keras model (.keras) for inference.

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file is not a Keras model, or not a 5-stage classifier.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such model file")
  try:
    model = keras.saving.load_model(path, compile=False)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{path}: not a saved Keras model (.keras): {type(e).__name__}: {e}") from e
  if tuple(model.output.shape[1:]) != (stages.NUM_STAGES,):
    raise ValueError(f"{path}: the model outputs {tuple(model.output.shape)}, not "
                     f"[n, {stages.NUM_STAGES}] stage probabilities")
  return model


@dataclasses.dataclass(frozen=True)
class ModelInput:
  """What the Keras model takes.

  Attributes:
    height, width: image size.
    colormap: the colour map of its ColorMap layer (it takes uint8 indices), or None (it
      takes RGB in 0..255).
  """
  height: int
  width: int
  colormap: Optional[str]


def model_input(model, path: str) -> ModelInput:
  """Reads the input of a model `eegmobile.model.build_model` made.

  Raises:
    ValueError: an input that is neither [n, H, W] indices nor [n, H, W, 3] RGB.
  """
  shape = tuple(model.input.shape)
  if len(shape) == 3:
    layers = [l for l in model.layers if type(l).__name__ == "ColorMap"]
    if not layers:
      raise ValueError(f"{path}: the model takes {shape} without a ColorMap layer")
    return ModelInput(shape[1], shape[2], layers[0].colormap)
  if len(shape) == 4 and shape[3] == 3:
    return ModelInput(shape[1], shape[2], None)
  raise ValueError(f"{path}: the model takes {shape}, neither [n, H, W] colour-map indices "
                   "nor [n, H, W, 3] RGB images")


def check_compatible(path: str, model_in: ModelInput, preprocessing: Preprocessing) -> None:
  """Raises ValueError (naming the model file and the parameters' file) on a size mismatch."""
  spec = preprocessing.spectrogram
  if (model_in.height, model_in.width) != (spec.image_height, spec.image_width):
    raise ValueError(f"{path}: the model takes {model_in.height}x{model_in.width} images but "
                     f"the preprocessing in {preprocessing.source} makes "
                     f"{spec.image_height}x{spec.image_width} (image_height x image_width); "
                     "export with the build the model was trained on")
  if preprocessing.samples_per_epoch < spec.nperseg:
    raise ValueError(f"{preprocessing.source}: {preprocessing.samples_per_epoch} samples per "
                     f"epoch is shorter than one STFT segment ({spec.nperseg})")


def _serving_module(model,
                    model_in: ModelInput,
                    preprocessing: Preprocessing,
                    colormap: str,
                    features: bool = False):
  """A tf.Module holding the model, with the three signature functions (and the
  images_features one, with `features`)."""
  spec, samples = preprocessing.spectrogram, preprocessing.samples_per_epoch
  images_of = frontend.images_fn(spec, samples)
  table = (colormaps.lookup_table(colormap) * 255.0).astype(np.float32)

  def model_inputs(indices):
    if model_in.colormap:
      return indices  # the model's ColorMap layer colours them
    return tf.gather(tf.constant(table), tf.cast(indices, tf.int32))

  def classify(indices):
    return {"probabilities": model(model_inputs(indices), training=False)}

  module = tf.Module()
  # Track the model's tf.Variables themselves, not the Keras model: with the model as an
  # attribute the SavedModel saves, but TF 2.17's converter then aborts on it (LLVM
  # "missing attribute 'value'" on a ReadVariableOp).
  module.weights = [v.value for v in model.variables]
  epochs_spec = tf.TensorSpec([None, samples], tf.float32, name="epochs")
  images_spec = tf.TensorSpec([None, spec.image_height, spec.image_width],
                              tf.uint8,
                              name="colormap_indices")
  module.epochs = tf.function(lambda epochs: classify(images_of(epochs)),
                              input_signature=[epochs_spec])
  module.images = tf.function(classify, input_signature=[images_spec])
  module.frontend = tf.function(lambda epochs: {"images": images_of(epochs)},
                                input_signature=[epochs_spec])
  if features:
    both = sequence_head.feature_model(model)  # the same layers and variables

    def classify_with_features(indices):
      probabilities, values = both(model_inputs(indices), training=False)
      return {export_format.FEATURES_OUTPUT: tf.concat([probabilities, values], axis=-1)}

    module.images_features = tf.function(classify_with_features, input_signature=[images_spec])
  return module


def write_saved_model(model,
                      model_in: ModelInput,
                      preprocessing: Preprocessing,
                      directory: str,
                      *,
                      colormap: str,
                      features: bool = False) -> str:
  """Writes the SavedModel (signatures serving_default, images, frontend, and
  images_features with `features`); returns its path."""
  module = _serving_module(model, model_in, preprocessing, colormap, features)
  path = os.path.join(directory, export_format.SAVED_MODEL_DIR)
  signatures = {
      EPOCHS_SIGNATURE: module.epochs,
      IMAGES_SIGNATURE: module.images,
      FRONTEND_SIGNATURE: module.frontend
  }
  if features:
    signatures[IMAGES_FEATURES_SIGNATURE] = module.images_features
  tf.saved_model.save(module, path, signatures=signatures)
  return path


def _convert(saved_model: str, signature: str, quantise: Optional[str],
             calibration: Optional[np.ndarray]) -> bytes:
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[signature])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex (TF) ops
  if quantise == "float16":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif quantise == "int8":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # Full integer: fail rather than leave an op in float.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    def representative():
      for image in calibration:
        yield {"colormap_indices": image[None]}

    converter.representative_dataset = representative
  return converter.convert()


def write_tflite(saved_model: str,
                 directory: str,
                 *,
                 formats: Sequence[str] = FORMATS,
                 calibration_images: Optional[np.ndarray] = None,
                 features: bool = False) -> dict[str, str]:
  """Converts the SavedModel's signatures to TFLite files.

  Args:
    saved_model: a SavedModel written by `write_saved_model`.
    directory: where the files go.
    formats: any of "float32" (raw epochs in), "float16" and "int8" (images in); the
      float32 front end is written with either of the last two.
    calibration_images: uint8 [n, H, W] images of a build (needed for "int8").
    features: also the images_features signature, float32 (a SavedModel written with
      features).

  Returns:
    {format: path} ("frontend" too with float16 or int8, "features" with features).

  Raises:
    ValueError: an unknown format, or int8 without calibration images.
  """
  unknown = set(formats) - set(FORMATS)
  if unknown:
    raise ValueError(f"unknown TFLite formats {sorted(unknown)}; choose from {FORMATS}")
  jobs = []
  if "float32" in formats:
    jobs.append(("float32", EPOCHS_SIGNATURE, None))
  if "float16" in formats:
    jobs.append(("float16", IMAGES_SIGNATURE, "float16"))
  if "int8" in formats:
    if calibration_images is None or not len(calibration_images):
      raise ValueError("int8 needs calibration images (a build's images)")
    jobs.append(("int8", IMAGES_SIGNATURE, "int8"))
  if "float16" in formats or "int8" in formats:
    jobs.append(("frontend", FRONTEND_SIGNATURE, None))
  if features:
    jobs.append(("features", IMAGES_FEATURES_SIGNATURE, None))
  paths = {}
  for name, signature, quantise in jobs:
    paths[name] = os.path.join(directory, TFLITE_FILES[name])
    content = _convert(saved_model, signature, quantise, calibration_images)
    storage.write_bytes(paths[name], content)
    logging.info("wrote %s (%d bytes)", paths[name], len(content))
  return paths


def context_directory(model_path: str) -> Optional[str]:
  """The context stage beside a model (<its directory>/context/context.json), or None."""
  directory = context_lib.context_dir(os.path.dirname(os.path.abspath(model_file(model_path))))
  return directory if os.path.exists(os.path.join(directory, context_lib.RECORD_FILE)) else None


def head_tflite(head) -> bytes:
  """A sequence head as TFLite: float32 features [1, T, F] -> probabilities [1, T, 5].

  Converted from a SavedModel of its variables, as the image model is (`_serving_module`).
  """
  module = tf.Module()
  module.weights = [v.value for v in head.variables]
  spec = tf.TensorSpec([1, None, head.input.shape[-1]], tf.float32, name="features")
  module.run = tf.function(lambda features: {"probabilities": head(features, training=False)},
                           input_signature=[spec])
  with tempfile.TemporaryDirectory() as saved:
    tf.saved_model.save(module, saved, signatures={EPOCHS_SIGNATURE: module.run})
    return _convert(saved, EPOCHS_SIGNATURE, None, None)


def write_context(directory: str, output_dir: str) -> dict:
  """Writes a fitted context stage (`trainers.context_lib.save`'s directory) into an export.

  Returns:
    export.json's "context": {"stage" (what staging applies), "lag", "window",
    "feature_layer", "smoother" (transitions and priors), "training_subjects", and with a
    head "head": {variant: {"file", "bytes", "causal", "lag", "input"}},
    "features_file"}.
  """
  config, fitted = context_lib.load(directory)
  record = {
      "stage": config.stage,
      "lag": config.lag,
      "window": config.window,
      "feature_layer": sequence_head.FEATURE_LAYER,
      "smoother": fitted["smoother"].to_dict(),
      "training_subjects": fitted["training_subjects"],
  }
  if config.stage == "head":
    record["head"] = {}
    for name, causal in (("head", False), ("head_causal", True)):
      path = os.path.join(output_dir, export_format.CONTEXT_HEAD_FILES[name])
      content = head_tflite(fitted[name])
      storage.write_bytes(path, content)
      size = fitted[name].input.shape[-1]
      record["head"][name] = {
          "file": os.path.basename(path),
          "bytes": len(content),
          "causal": causal,
          "lag": config.lag if causal else 0,
          "input": f"features float32 [1, T, {size}] -> probabilities float32 [1, T, 5]",
      }
    record["features_file"] = export_format.TFLITE_FILES["features"]
    record["feature_size"] = int(fitted["head"].input.shape[-1])
  return record


def build_images(build_dir: str,
                 limit: int,
                 subjects: Optional[Iterable[str]] = None,
                 with_labels: bool = False):
  """Up to `limit` stored images (uint8 [n, H, W]) of a build, in file order.

  Args:
    build_dir: a build directory.
    limit: how many images at most.
    subjects: which subjects (default: all, in order).
    with_labels: also return the labels (int32 [n]).
  """
  info = datasets.dataset_info(build_dir, subjects)
  ds = datasets.make_dataset(build_dir,
                             info.subjects,
                             training=False,
                             color=None,
                             cache=None,
                             batch_size=min(limit, 256))
  images, labels = [], []
  for batch_images, batch_labels in ds:
    images.append(batch_images.numpy())
    labels.append(batch_labels.numpy())
    if sum(len(i) for i in images) >= limit:
      break
  images, labels = np.concatenate(images)[:limit], np.concatenate(labels)[:limit]
  return (images, labels) if with_labels else images


def _file_entry(path: str, signature: str, inputs: str, weights: str) -> dict:
  return {
      "file": os.path.basename(path),
      "bytes": os.path.getsize(path),
      "signature": signature,
      "input": inputs,
      "weights": weights
  }


def export(model_path: str,
           output_dir: str,
           *,
           preprocessing: Optional[Preprocessing] = None,
           colormap: Optional[str] = None,
           formats: Sequence[str] = FORMATS,
           calibration_images: Optional[np.ndarray] = None,
           context: bool = True) -> dict:
  """Exports a saved Keras model: SavedModel, TFLite files and export.json.

  Args:
    model_path: the .keras file (e.g. a fold's checkpoint.keras).
    output_dir: where the export goes (created; existing files of the same names are
      replaced).
    preprocessing: the build's parameters (`load_preprocessing`); default: the ones the
      model's fold directory records. Given ones must equal the recorded ones.
    colormap: for a model taking RGB, the colour map it was trained with (default: the
      fold's config.json `color`, else "viridis"); a model with a ColorMap layer uses
      its own, and another one given is an error.
    formats: TFLite files to write (see `write_tflite`).
    calibration_images: uint8 [n, H, W] images of a build, for int8.
    context: export the context stage beside the model (`context_directory`), if any.

  Returns:
    The export record (also written to <output_dir>/export.json).

  Raises:
    FileNotFoundError, ValueError: unreadable model or parameters, or parameters that do
      not fit the model (messages name the file and the problem).
  """
  card = model_card(model_path)
  model_path = model_file(model_path)
  model = load_keras_model(model_path)
  model_in = model_input(model, model_path)
  preprocessing = resolve_preprocessing(model_path, preprocessing)
  check_compatible(model_path, model_in, preprocessing)
  if model_in.colormap:
    if colormap and colormap != model_in.colormap:
      raise ValueError(f"{model_path}: the model applies its own colour map "
                       f"{model_in.colormap!r}; {colormap!r} was asked for")
    colormap = model_in.colormap
  elif not colormap:
    recorded = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    colormap = _read_json(recorded).get("color",
                                        "viridis") if os.path.exists(recorded) else "viridis"
  if calibration_images is not None:
    spec = preprocessing.spectrogram
    if tuple(calibration_images.shape[1:]) != (spec.image_height, spec.image_width):
      raise ValueError(f"calibration images are {tuple(calibration_images.shape[1:])}, the "
                       f"model takes {spec.image_height}x{spec.image_width}")
  os.makedirs(output_dir, exist_ok=True)
  context_dir = context_directory(model_path) if context else None
  context_record = write_context(context_dir, output_dir) if context_dir else None
  features = bool(context_record and context_record["stage"] == "head")
  saved_model = write_saved_model(model,
                                  model_in,
                                  preprocessing,
                                  output_dir,
                                  colormap=colormap,
                                  features=features)
  paths = write_tflite(saved_model,
                       output_dir,
                       formats=formats,
                       calibration_images=calibration_images,
                       features=features)
  record = _record(model_path, model_in, preprocessing, colormap, paths, calibration_images)
  record["model_card"] = card  # None for a bare .keras file
  if context_record:  # an export without a context stage has no such key, as before
    record[export_format.CONTEXT_KEY] = context_record
  if features:
    record["saved_model"]["signatures"][IMAGES_FEATURES_SIGNATURE] = (
        f"{record['tflite']['features']['input']} -> {export_format.FEATURES_OUTPUT} float32 "
        f"[n, 5 + {model.get_layer(sequence_head.FEATURE_LAYER).units}]")
  storage.write_text(os.path.join(output_dir, EXPORT_FILE),
                     json.dumps(record, indent=1, sort_keys=True))
  return record


def _record(model_path, model_in, preprocessing, colormap, paths, calibration_images) -> dict:
  spec = preprocessing.spectrogram
  epochs_in = f"epochs float32 [n, {preprocessing.samples_per_epoch}] (uV at {spec.fs:g} Hz)"
  images_in = f"colormap_indices uint8 [n, {spec.image_height}, {spec.image_width}]"
  described = {
      "float32": (EPOCHS_SIGNATURE, epochs_in, "float32"),
      "float16": (IMAGES_SIGNATURE, images_in, "float16"),
      "int8": (IMAGES_SIGNATURE, images_in, "int8 (weights and activations)"),
      "frontend": (FRONTEND_SIGNATURE, epochs_in, "float32"),
      "features": (IMAGES_FEATURES_SIGNATURE, images_in, "float32"),
  }
  return {
      "format": export_format.FORMAT,
      "format_version": export_format.FORMAT_VERSION,
      "model": {
          "source": os.path.abspath(model_path),
          "input": "colormap_indices" if model_in.colormap else "rgb",
          "image_size": [model_in.height, model_in.width]
      },
      "colormap": colormap,
      "preprocessing": preprocessing.to_dict(),
      "stages": list(stages.STAGES),
      "saved_model": {
          "dir": export_format.SAVED_MODEL_DIR,
          "signatures": {
              EPOCHS_SIGNATURE: f"{epochs_in} -> probabilities float32 [n, 5]",
              IMAGES_SIGNATURE: f"{images_in} -> probabilities float32 [n, 5]",
              FRONTEND_SIGNATURE: f"{epochs_in} -> images uint8 [n, H, W]"
          }
      },
      "tflite": {
          name: _file_entry(path, *described[name]) for name, path in paths.items()
      },
      "int8_calibration_images": 0 if calibration_images is None else int(len(calibration_images)),
  }
