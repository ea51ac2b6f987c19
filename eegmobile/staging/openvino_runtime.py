"""Runs an exported TFLite model with OpenVINO on the CPU (bf16 on AMX, or float32).

Flag-free. OpenVINO reads the `.tflite` files of `trainers/export_lib.py` directly (all
four: `images_float16`, `images_int8`, `eegmobile_float32` with its in-graph front end,
and `frontend_float32`), with a dynamic batch dimension, so one compiled model takes any
batch size. OpenVINO is optional: `pip install openvino` (2026.4 works beside numpy
1.26). `bench/runtimes.py` compares it with tf.lite and LiteRT.

  predict = openvino_runtime.load("export/images_float16.tflite", threads=2)
  probabilities = predict(colormap_indices)  # uint8 [n, H, W] -> float32 [n, 5]

Precision "f32" (this module's default) asks for float32, though with float16 weights in
the file the CPU plugin runs many convolutions in f16 on CPUs with AVX512-FP16, and slowly;
"bf16" computes in bfloat16 where the CPU has it (`native_bf16`: AMX or AVX-512 BF16),
faster than LiteRT there, with probabilities close to float32's but not equal
(BUILD_NOTES.md, "Runtimes"; `eegmobile.staging.runtimes.resolve` makes it the staging default
where available). On a CPU without bf16 OpenVINO falls back to float32.
"""

import functools
import os
from typing import Callable, Optional

import numpy as np

PRECISIONS = ("bf16", "f32")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")


def _openvino():
  try:
    # Lazy: OpenVINO is an optional extra (and slow to import).
    import openvino  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("eegmobile.staging.openvino_runtime needs OpenVINO: install openvino "
                      "(pip install openvino)") from e
  return openvino


@functools.lru_cache(maxsize=None)
def native_bf16() -> bool:
  """Whether OpenVINO's CPU plugin computes bf16 natively here (AMX or AVX-512 BF16).

  Not where oneDNN's instruction set is capped below bf16 (ONEDNN_MAX_CPU_ISA or
  DNNL_MAX_CPU_ISA, e.g. AVX2 to take an AVX2-only CPU's kernels): OpenVINO still lists
  BF16 then, and compiling a bf16 model crashes.

  Raises:
    ImportError: OpenVINO is not installed.
  """
  cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
  if cap and cap != "ALL" and not any(isa in cap for isa in ("BF16", "AMX", "FP16", "AVX10")):
    return False
  return "BF16" in _openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def load(path: str,
         *,
         threads: Optional[int] = None,
         precision: str = "f32",
         performance_hint: str = "LATENCY") -> Callable[[np.ndarray], np.ndarray]:
  """Compiles a TFLite file for the CPU; returns a function from a batch to its output.

  Args:
    path: an exported `.tflite` file (any of `export_lib.TFLITE_FILES`).
    threads: CPU threads for inference; None: OpenVINO's default (all cores).
    precision: "bf16" or "f32" (OpenVINO's INFERENCE_PRECISION_HINT); bf16 computes in f32
      where the CPU has no bf16 (`native_bf16`).
    performance_hint: "LATENCY" (one request using every thread: a whole batch at a time)
      or "THROUGHPUT" (several streams, for many concurrent requests).

  Returns:
    predict(batch) -> float32 array: the model's first output for a batch of its input
    (uint8 colour-map indices [n, H, W] for images_*.tflite, float32 epochs [n, samples]
    in uV for eegmobile_float32.tflite), e.g. probabilities [n, 5]. Any n >= 1.

  Raises:
    ImportError: OpenVINO is not installed.
    ValueError: an unknown precision or hint, a file OpenVINO cannot read (named), or a
      batch whose shape or dtype does not fit the file's input.
  """
  if precision not in PRECISIONS:
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
  if performance_hint not in PERFORMANCE_HINTS:
    raise ValueError(f"performance_hint must be one of {PERFORMANCE_HINTS}, "
                     f"got {performance_hint!r}")
  ov = _openvino()
  core = ov.Core()
  try:
    model = core.read_model(path)
  except Exception as e:  # OpenVINO raises RuntimeError subclasses of its own.
    raise ValueError(f"{path}: OpenVINO cannot read this model ({e})") from e
  if len(model.inputs) != 1:
    raise ValueError(f"{path}: expected one input, found {len(model.inputs)}")
  if precision == "bf16" and not native_bf16():
    # What OpenVINO does itself on a CPU without bf16; with oneDNN capped below it
    # (ONEDNN_MAX_CPU_ISA=AVX2, an AVX2-only CPU's kernels forced) it crashed compiling.
    precision = "f32"
  config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": performance_hint}
  if threads is not None:
    config["INFERENCE_NUM_THREADS"] = int(threads)
  compiled = core.compile_model(model, "CPU", config)
  return _predictor(path, compiled, model.inputs[0])


def _predictor(path: str, compiled, model_input) -> Callable[[np.ndarray], np.ndarray]:
  """A function running `compiled` on one batch, checking it against the input's spec."""
  dtype = model_input.get_element_type().to_dtype()
  shape = model_input.get_partial_shape()
  # The exported files have a dynamic batch dimension; a static one is reshaped to.
  rest = [d.get_length() if d.is_static else None for d in list(shape)[1:]]
  request = compiled.create_infer_request()

  def predict(batch: np.ndarray) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.dtype != dtype or batch.ndim != len(rest) + 1 or any(
        r is not None and r != s for r, s in zip(rest, batch.shape[1:])) or not len(batch):
      raise ValueError(f"{path}: input must be {np.dtype(dtype).name} [n>=1, "
                       f"{', '.join('?' if r is None else str(r) for r in rest)}], got "
                       f"{batch.dtype.name} {list(batch.shape)}")
    result = request.infer({0: np.ascontiguousarray(batch)})
    return np.array(result[compiled.output(0)], dtype=np.float32)

  return predict
