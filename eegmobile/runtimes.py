"""Loading an exported EEGMobile model to stage with: one small interface, several runtimes.

`load(path)` takes an export directory (`trainers.export`: export.json and saved_model/)
or one of its .tflite files (its export.json beside it says the preprocessing and what the
file takes) and gives a `StagingModel`: `.preprocessing`, `.input_kind` ("epochs": float32
[n, samples] microvolts; "images": uint8 colour-map indices [n, H, W]) and
`.predict(batch) -> float32 [n, 5]`.

Runtimes:

* "tensorflow": a SavedModel (its "images" signature) or a .tflite file through tf.lite.
* "litert": a .tflite file through `ai_edge_litert` (Google's stand-alone TFLite runtime);
  TensorFlow is never imported.
* "openvino": a .tflite file through `eegmobile.openvino_runtime` (imported lazily).
* "auto": for a .tflite file, litert where `ai_edge_litert` is importable, else
  tensorflow; for a directory, tensorflow.

This module imports neither TensorFlow nor Keras (nor `trainers`).
"""

import dataclasses
import json
import os
from typing import Callable, Optional

import numpy as np

from eegmobile.config import SpectrogramConfig

EXPORT_FILE = "export.json"  # trainers.export_lib.EXPORT_FILE
EXPORT_FORMAT = "eegmobile-export"  # trainers.export_lib.EXPORT_FORMAT
SAVED_MODEL_DIR = "saved_model"
EPOCHS_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "images"
FRONTEND_SIGNATURE = "frontend"
RUNTIMES = ("auto", "tensorflow", "litert", "openvino")


class ModelError(ValueError):
  """A model path that is not one of our exported models (the message names it)."""


@dataclasses.dataclass(frozen=True)
class ExportedPreprocessing:
  """What the model expects: the spectrogram parameters and samples per epoch."""
  spectrogram: SpectrogramConfig
  samples_per_epoch: int


@dataclasses.dataclass
class StagingModel:
  """A loaded model.

  Attributes:
    path: what was loaded.
    runtime: "tensorflow", "litert" or "openvino".
    preprocessing: from export.json.
    input_kind: "epochs" or "images".
    predict: batch -> float32 [n, 5] probabilities.
  """
  path: str
  runtime: str
  preprocessing: ExportedPreprocessing
  input_kind: str
  predict: Callable[[np.ndarray], np.ndarray]


def _read_export(directory: str, asked: str) -> dict:
  path = os.path.join(directory, EXPORT_FILE)
  if not os.path.exists(path):
    raise ModelError(f"{asked}: not an EEGMobile export: no {EXPORT_FILE} "
                     f"{'in it' if os.path.isdir(asked) else 'beside it'} "
                     "(make one with python -m trainers.export)")
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ModelError(f"{path}: unreadable export record ({e})") from e
  if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
    raise ModelError(f"{path}: not an EEGMobile export record (format is not {EXPORT_FORMAT!r})")
  return record


def _preprocessing(record: dict, path: str) -> ExportedPreprocessing:
  try:
    recorded = record["preprocessing"]
    return ExportedPreprocessing(SpectrogramConfig(**recorded["spectrogram"]),
                                 int(recorded["samples_per_epoch"]))
  except (KeyError, TypeError, ValueError) as e:
    raise ModelError(f"{path}: no usable preprocessing recorded ({type(e).__name__}: {e})") from e


def _tflite_input_kind(record: dict, path: str) -> str:
  name = os.path.basename(path)
  for entry in (record.get("tflite") or {}).values():
    if entry.get("file") == name:
      signature = entry.get("signature")
      if signature == EPOCHS_SIGNATURE:
        return "epochs"
      if signature == IMAGES_SIGNATURE:
        return "images"
      raise ModelError(f"{path}: its export.json says it is the {signature!r} model "
                       "(images, not stage probabilities); pick a model file")
  raise ModelError(f"{path}: not listed in the {EXPORT_FILE} beside it: not one of that "
                   "export's models")


def _litert_available() -> bool:
  try:
    import ai_edge_litert.interpreter  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def _tflite_predict(path: str, interpreter_class, threads: Optional[int]):
  """A predict function over a TFLite file's single signature."""
  try:
    interpreter = interpreter_class(model_path=path, num_threads=threads)
  except (ValueError, RuntimeError) as e:
    raise ModelError(f"{path}: not a TFLite model the runtime can load ({e})") from e
  signatures = interpreter.get_signature_list()
  if len(signatures) != 1:
    raise ModelError(f"{path}: expected one signature, found {sorted(signatures)}")
  name, spec = next(iter(signatures.items()))
  runner = interpreter.get_signature_runner(name)
  (input_name,) = spec["inputs"]
  (output_name,) = spec["outputs"]
  dtype = interpreter.get_input_details()[0]["dtype"]

  def predict(batch: np.ndarray) -> np.ndarray:
    out = runner(**{input_name: np.ascontiguousarray(batch, dtype)})[output_name]
    return np.asarray(out, np.float32)

  return predict


def _saved_model_predict(directory: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    loaded = tf.saved_model.load(os.path.join(directory, SAVED_MODEL_DIR))
    function = loaded.signatures[IMAGES_SIGNATURE]
  except (OSError, KeyError, ValueError) as e:
    raise ModelError(f"{directory}: no loadable {SAVED_MODEL_DIR}/ with an "
                     f"{IMAGES_SIGNATURE!r} signature ({type(e).__name__}: {e})") from e
  (input_name,) = function.structured_input_signature[1]

  def predict(batch: np.ndarray) -> np.ndarray:
    outputs = function(**{input_name: tf.constant(np.asarray(batch, np.uint8))})
    return np.asarray(next(iter(outputs.values())), np.float32)

  predict.keep = loaded  # the signature needs its object alive
  return predict


def load(path: str,
         *,
         runtime: str = "auto",
         threads: Optional[int] = None,
         precision: str = "f32") -> StagingModel:
  """Loads an exported model.

  Args:
    path: an export directory or a .tflite file of one.
    runtime: one of RUNTIMES.
    threads: CPU threads for the runtime (None: its default).
    precision: "f32" or "bf16", OpenVINO's inference precision; other runtimes take "f32"
      only (bf16 is not a drop-in: see BUILD_NOTES.md, "Runtimes").

  Returns:
    The StagingModel.

  Raises:
    ModelError: not one of our models, or a runtime that cannot run it (named).
    FileNotFoundError: no such path.
  """
  path = str(path)
  if runtime not in RUNTIMES:
    raise ModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
  if precision not in ("f32", "bf16"):
    raise ModelError(f"unknown precision {precision!r}; choose f32 or bf16")
  if precision != "f32" and runtime != "openvino":
    raise ModelError(f"precision {precision} needs runtime openvino (got {runtime})")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such model file or export directory")
  if os.path.isdir(path):
    record = _read_export(path, path)
    if runtime not in ("auto", "tensorflow"):
      raise ModelError(f"{path}: an export directory runs on tensorflow (its SavedModel); "
                       f"for {runtime} give one of its .tflite files")
    return StagingModel(path, "tensorflow", _preprocessing(record, path), "images",
                        _saved_model_predict(path))
  if not path.endswith(".tflite"):
    raise ModelError(f"{path}: not an EEGMobile model: give an export directory or one of "
                     "its .tflite files")
  record = _read_export(os.path.dirname(os.path.abspath(path)), path)
  preprocessing = _preprocessing(record, path)
  input_kind = _tflite_input_kind(record, path)
  if runtime == "auto":
    runtime = "litert" if _litert_available() else "tensorflow"
  if runtime == "litert":
    try:
      from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ModelError("runtime litert needs the ai-edge-litert package "
                       f"(pip install ai-edge-litert): {e}") from e
    predict = _tflite_predict(path, litert.Interpreter, threads)
  elif runtime == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    predict = _tflite_predict(path, tf.lite.Interpreter, threads)
  else:
    try:
      from eegmobile import openvino_runtime  # pylint: disable=g-import-not-at-top
      predict = openvino_runtime.load(path, threads=threads, precision=precision)
    except ImportError as e:
      raise ModelError("runtime openvino needs eegmobile.openvino_runtime and the openvino "
                       f"package (pip install openvino): {e}") from e
  return StagingModel(path, runtime, preprocessing, input_kind, predict)
