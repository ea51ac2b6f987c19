"""Loading an exported EEGMobile model to stage with: one small interface, several runtimes.

`load(path)` takes an export directory (`trainers.export`; its layout: `eegmobile.export_format`)
or one of its .tflite files (its export.json beside it says the preprocessing and what the
file takes) and gives a `StagingModel`: `.preprocessing`, `.input_kind` ("epochs": float32
[n, samples] microvolts; "images": uint8 colour-map indices [n, H, W]) and
`.predict(batch) -> float32 [n, 5]`.

Runtimes:

* "tensorflow": a SavedModel (its "images" signature) or a .tflite file through tf.lite.
* "litert": a .tflite file through `ai_edge_litert` (Google's stand-alone TFLite runtime);
  TensorFlow is never imported.
* "openvino": a .tflite file through `eegmobile.staging.openvino_runtime` (imported lazily).
* "auto": for a .tflite file, openvino in bf16 where it is installed and the CPU computes
  bf16 natively, else litert where `ai_edge_litert` is importable, else tensorflow; for a
  directory, tensorflow (`resolve`).

Each runtime's package is imported only when that runtime is asked for (lazily): LiteRT,
OpenVINO and TensorFlow are optional (the lite install has LiteRT alone), and TensorFlow
is slow to import (BUILD_NOTES.md "Start-up"). This module imports neither TensorFlow
nor Keras (nor `trainers`) itself.
"""

import dataclasses
import json
import logging
import os
from typing import Callable, Optional

import numpy as np

from eegmobile import export_format
from eegmobile import stages
from eegmobile.staging import openvino_runtime

RUNTIMES = ("auto", "tensorflow", "litert", "openvino")
PRECISIONS = ("auto", "f32", "bf16")


class ModelError(ValueError):
  """A model path that is not one of our exported models (the message names it)."""


@dataclasses.dataclass
class StagingModel:
  """A loaded model.

  Attributes:
    path: what was loaded.
    runtime: "tensorflow", "litert" or "openvino".
    preprocessing: from export.json.
    input_kind: "epochs" or "images".
    predict: batch -> float32 [n, 5] probabilities.
    threads: the CPU threads the runtime was given.
    precision: "f32" or "bf16" (OpenVINO), what the runtime computes in.
    feature_size: F, for a model that also gives the per-epoch features (an export's
      images_features file or signature, loaded with `load(..., features=True)` for a
      sequence head); else 0.
    predict_features: such a model's batch -> float32 [n, 5 + F] (probabilities, then
      features); `predict` then gives the probabilities alone.
  """
  path: str
  runtime: str
  preprocessing: export_format.Preprocessing
  input_kind: str
  predict: Callable[[np.ndarray], np.ndarray]
  threads: int = 1
  precision: str = "f32"
  feature_size: int = 0
  predict_features: Optional[Callable[[np.ndarray], np.ndarray]] = None


def default_threads() -> int:
  """The CPU threads a runtime gets when none are asked for: every core this process may
  run on (ai-edge-litert's and tf.lite's own default is one thread: half the speed on 2
  cores, BUILD_NOTES.md "Runtimes")."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # not on Linux
    return max(1, os.cpu_count() or 1)


def _read_export(directory: str, asked: str) -> dict:
  path = os.path.join(directory, export_format.EXPORT_FILE)
  if not os.path.exists(path):
    raise ModelError(f"{asked}: not an EEGMobile export: no {export_format.EXPORT_FILE} "
                     f"{'in it' if os.path.isdir(asked) else 'beside it'} "
                     "(make one with python -m trainers.export)")
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ModelError(f"{path}: unreadable export record ({e})") from e
  if not isinstance(record, dict) or record.get("format") != export_format.FORMAT:
    raise ModelError(
        f"{path}: not an EEGMobile export record (format is not {export_format.FORMAT!r})")
  return record


def _preprocessing(record: dict, path: str) -> export_format.Preprocessing:
  try:
    return export_format.Preprocessing.from_dict(record["preprocessing"], path)
  except (KeyError, TypeError, ValueError) as e:
    raise ModelError(f"{path}: no usable preprocessing recorded ({type(e).__name__}: {e})") from e


def _tflite_input_kind(record: dict, path: str) -> str:
  name = os.path.basename(path)
  for entry in (record.get("tflite") or {}).values():
    if entry.get("file") == name:
      signature = entry.get("signature")
      if signature == export_format.EPOCHS_SIGNATURE:
        return "epochs"
      if signature in (export_format.IMAGES_SIGNATURE, export_format.IMAGES_FEATURES_SIGNATURE):
        return "images"
      raise ModelError(f"{path}: its export.json says it is the {signature!r} model "
                       "(images, not stage probabilities); pick a model file")
  raise ModelError(
      f"{path}: not listed in the {export_format.EXPORT_FILE} beside it: not one of that "
      "export's models")


def _litert_available() -> bool:
  try:
    import ai_edge_litert.interpreter  # pylint: disable=g-import-not-at-top,unused-import  # lazy: module doc
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


def _saved_model_predict(directory: str,
                         threads: int,
                         signature: str = export_format.IMAGES_SIGNATURE):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  # lazy: module docstring
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
  except RuntimeError as e:  # TensorFlow already ran something in this process
    logging.warning("%s: TensorFlow keeps the threads it started with, not %d (%s)", directory,
                    threads, e)
  try:
    loaded = tf.saved_model.load(os.path.join(directory, export_format.SAVED_MODEL_DIR))
    function = loaded.signatures[signature]
  except (OSError, KeyError, ValueError) as e:
    raise ModelError(f"{directory}: no loadable {export_format.SAVED_MODEL_DIR}/ with an "
                     f"{signature!r} signature ({type(e).__name__}: {e})") from e
  (input_name,) = function.structured_input_signature[1]

  def predict(batch: np.ndarray) -> np.ndarray:
    outputs = function(**{input_name: tf.constant(np.asarray(batch, np.uint8))})
    return np.asarray(next(iter(outputs.values())), np.float32)

  predict.keep = loaded  # the signature needs its object alive
  return predict


def _openvino_bf16() -> bool:
  """OpenVINO is installed and the CPU computes bf16 natively (AMX or AVX-512 BF16)."""
  try:
    return openvino_runtime.native_bf16()
  except ImportError:
    return False


# The model files of an export, fastest first (BUILD_NOTES.md, "Runtimes"): the image model
# with numpy's images (numpy's front end is faster than TFLite's), then the raw-epoch file.
FILE_PREFERENCE = (export_format.TFLITE_FILES["float16"], export_format.TFLITE_FILES["float32"])


def fastest_file(directory: str) -> str:
  """The .tflite file of an export directory that stages fastest (`FILE_PREFERENCE`), or
  the directory itself (its SavedModel, on TensorFlow) when it holds none of them.

  Raises:
    ModelError: not an export directory (no export.json).
  """
  record = _read_export(directory, directory)
  listed = {entry.get("file") for entry in (record.get("tflite") or {}).values()}
  for name in FILE_PREFERENCE:
    if name in listed and os.path.exists(os.path.join(directory, name)):
      return os.path.join(directory, name)
  return directory


def resolve(runtime: str, precision: str, is_tflite: bool = True) -> tuple[str, str]:
  """The (runtime, precision) that `load` uses for what was asked ("auto" resolved).

  For a .tflite file, runtime "auto" is OpenVINO in bf16 where it is installed and the CPU
  computes bf16 natively (faster than LiteRT there, the same top class as float32 on a
  trained model, probabilities close but not equal: BUILD_NOTES.md, "Runtimes"), unless
  f32 is asked for; else ai-edge-litert where installed, else tf.lite. Precision "auto" is
  bf16 on OpenVINO where the CPU has it, else f32. An export directory stages with its
  fastest .tflite file (`fastest_file`), or its SavedModel on TensorFlow when it has none
  or runtime "tensorflow" is asked for.

  Raises:
    ModelError: an unknown runtime or precision, or bf16 asked of a runtime without it.
  """
  if runtime not in RUNTIMES:
    raise ModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
  if precision not in PRECISIONS:
    raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
  if runtime == "auto":
    if not is_tflite:
      runtime = "tensorflow"
    elif precision != "f32" and _openvino_bf16():
      runtime = "openvino"
    elif precision == "bf16":
      raise ModelError("precision bf16 needs runtime openvino (pip install openvino) on a CPU "
                       "with bf16 (AMX or AVX-512 BF16)")
    else:
      runtime = "litert" if _litert_available() else "tensorflow"
  if precision == "auto":
    precision = "bf16" if runtime == "openvino" and _openvino_bf16() else "f32"
  if precision == "bf16" and runtime != "openvino":
    raise ModelError(f"precision bf16 needs runtime openvino (got {runtime})")
  return runtime, precision


def _with_features(model: StagingModel, record: dict) -> StagingModel:
  """A model loaded from an images_features file or signature: `predict` gives the
  probabilities, `predict_features` the probabilities and features."""
  both = model.predict
  size = int((record.get(export_format.CONTEXT_KEY) or {}).get("feature_size", 0))
  if not size:
    raise ModelError(f"{model.path}: its export records no feature size (context.feature_size)")
  return dataclasses.replace(model,
                             predict=lambda batch: both(batch)[:, :stages.NUM_STAGES],
                             predict_features=both,
                             feature_size=size)


def tflite_function(path: str, *, runtime: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
  """Any single-signature .tflite file of an export (e.g. a context head) as a function of
  its input, on one of the runtimes (not "auto"), in float32.

  Raises:
    ModelError: an unknown runtime, or one whose package is missing.
  """
  if runtime == "litert":
    try:
      # Lazy: see the module docstring.
      from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ModelError(f"runtime litert needs the ai-edge-litert package: {e}") from e
    return _tflite_predict(path, litert.Interpreter, threads)
  if runtime == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  # lazy: module docstring
    return _tflite_predict(path, tf.lite.Interpreter, threads)
  if runtime == "openvino":
    try:
      return openvino_runtime.load(path, threads=threads, precision="f32")
    except ImportError as e:
      raise ModelError(f"runtime openvino needs the openvino package: {e}") from e
  raise ModelError(f"unknown runtime {runtime!r} for {path}")


def load(path: str,
         *,
         runtime: str = "auto",
         threads: Optional[int] = None,
         precision: str = "auto",
         features: bool = False) -> StagingModel:
  """Loads an exported model.

  Args:
    path: an export directory (its fastest file: `fastest_file`) or a .tflite file of one.
    runtime: one of RUNTIMES ("auto": see `resolve`; "tensorflow" on a directory: its
      SavedModel).
    threads: CPU threads for the runtime (None: `default_threads()`, every core).
    precision: one of PRECISIONS: "f32"; "bf16" (OpenVINO only; close to f32's
      probabilities, not bit for bit); "auto" (see `resolve`).
    features: also give the per-epoch features (`StagingModel.predict_features`), for a
      sequence head: an export directory loads its images_features file (or signature),
      a .tflite file must be that file.

  Returns:
    The StagingModel.

  Raises:
    ModelError: not one of our models, or a runtime that cannot run it (named).
    FileNotFoundError: no such path.
  """
  path = str(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such model file or export directory")
  if os.path.isdir(path) and runtime != "tensorflow":
    path = _features_file(path) if features else fastest_file(path)
  runtime, precision = resolve(runtime, precision, is_tflite=not os.path.isdir(path))
  if threads is None:
    threads = default_threads()
  elif threads < 1:
    raise ModelError(f"threads must be at least 1, got {threads}")
  if os.path.isdir(path):
    record = _read_export(path, path)
    if runtime != "tensorflow":
      raise ModelError(f"{path}: an export directory runs on tensorflow (its SavedModel); "
                       f"for {runtime} give one of its .tflite files")
    signature = (export_format.IMAGES_FEATURES_SIGNATURE
                 if features else export_format.IMAGES_SIGNATURE)
    model = StagingModel(path, "tensorflow", _preprocessing(record, path), "images",
                         _saved_model_predict(path, threads, signature), threads, precision)
    return _with_features(model, record) if features else model
  if not path.endswith(".tflite"):
    raise ModelError(f"{path}: not an EEGMobile model: give an export directory or one of "
                     "its .tflite files")
  record = _read_export(os.path.dirname(os.path.abspath(path)), path)
  preprocessing = _preprocessing(record, path)
  input_kind = _tflite_input_kind(record, path)
  is_features = os.path.basename(path) == export_format.TFLITE_FILES["features"]
  if features != is_features:
    raise ModelError(f"{path}: " +
                     ("the sequence head needs the per-epoch features: give the export "
                      f"directory or its {export_format.TFLITE_FILES['features']} (or stage "
                      "with the smoother or no context stage)" if features else
                      "this file gives probabilities and features; stage with its export's "
                      "sequence head, or give another file"))
  if runtime == "litert":
    try:
      # Lazy: see the module docstring.
      from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ModelError("runtime litert needs the ai-edge-litert package "
                       f"(pip install ai-edge-litert): {e}") from e
    predict = _tflite_predict(path, litert.Interpreter, threads)
  elif runtime == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  # lazy: module docstring
    predict = _tflite_predict(path, tf.lite.Interpreter, threads)
  else:
    try:
      predict = openvino_runtime.load(path, threads=threads, precision=precision)
    except ImportError as e:
      raise ModelError("runtime openvino needs eegmobile.staging.openvino_runtime and the openvino "
                       f"package (pip install openvino): {e}") from e
  model = StagingModel(path, runtime, preprocessing, input_kind, predict, threads, precision)
  return _with_features(model, record) if features else model


def _features_file(directory: str) -> str:
  """An export directory's images_features file.

  Raises:
    ModelError: the export has none (no sequence head was exported).
  """
  path = os.path.join(directory, export_format.TFLITE_FILES["features"])
  if not os.path.exists(path):
    raise ModelError(f"{directory}: no {export_format.TFLITE_FILES['features']}: the export "
                     "has no sequence head")
  return path
