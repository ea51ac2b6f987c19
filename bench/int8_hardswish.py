r"""int8 image models with hard-swish written as other ops: how fast on LiteRT, how close.

  PYTHONPATH=. python bench/int8_hardswish.py --model CHECKPOINT.keras \
      --export_dir EXPORT --build_dir BUILD [--workdir /tmp/int8hs] [--images 256]

The exported `images_int8.tflite` runs slower than float32 on LiteRT because XNNPACK does
not take TFLite's int8 HARD_SWISH (the converter fuses Keras' hard-swish into it): the
model runs as 22 XNNPACK partitions with hard-swish on TFLite's kernels between them. This
re-exports the checkpoint's image model in int8 with hard-swish written as
x * min(max(x / 6 + 0.5, 0), 1) ("min") and as x * (relu(x / 6 + 0.5) - relu(x / 6 - 0.5))
("relu": every op XNNPACK takes, one partition), calibrated on the build's images, and
prints for each file images/s (2 threads, batch 64, rounds alternating, median) with the
ratio to float32 paired per round, the XNNPACK partitions, and the largest probability
difference and top-class agreement against `images_float16.tflite` (float32 compute).
Not used by the exports: BUILD_NOTES "Measured (issue 14): per CPU family".
"""

import argparse
import collections
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

# pylint: disable=wrong-import-position
from trainers import export_lib
# pylint: enable=wrong-import-position

FORMS = ("min", "relu")


def _hard_swish(form: str):
  import keras  # pylint: disable=g-import-not-at-top

  def hard_swish(x):
    y = x * (1.0 / 6.0)
    if form == "min":
      return x * keras.ops.minimum(keras.ops.maximum(y + 0.5, 0.0), 1.0)
    return x * (keras.ops.relu(y + 0.5) - keras.ops.relu(y - 0.5))

  return hard_swish


def _export(args, form: str, calibration: np.ndarray) -> str:
  """The checkpoint's image model in int8 with hard-swish as `form`; returns its path."""
  import keras  # pylint: disable=g-import-not-at-top
  model = export_lib.load_keras_model(args.model)
  replaced = 0
  for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
    if isinstance(layer, keras.layers.Activation) and getattr(layer.activation, "__name__",
                                                              "") in ("hard_silu", "hard_swish"):
      layer.activation = _hard_swish(form)
      replaced += 1
  if not replaced:
    raise SystemExit(f"{args.model}: no hard-swish activation found")
  directory = os.path.join(args.workdir, form)
  os.makedirs(directory, exist_ok=True)
  model_in = export_lib.model_input(model, args.model)
  saved = export_lib.write_saved_model(model,
                                       model_in,
                                       export_lib.load_preprocessing(args.export_dir),
                                       directory,
                                       colormap=model_in.colormap or "viridis")
  path = os.path.join(directory, f"images_int8_{form}.tflite")
  with open(path, "wb") as f:
    f.write(export_lib._convert(saved, export_lib.IMAGES_SIGNATURE, "int8", calibration))  # pylint: disable=protected-access
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model", required=True, help="the checkpoint (.keras) of the export")
  parser.add_argument("--export_dir", required=True)
  parser.add_argument("--build_dir", required=True, help="images to calibrate and time on")
  parser.add_argument("--workdir", default="/tmp/int8hs")
  parser.add_argument("--images", type=int, default=256)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  images = export_lib.build_images(args.build_dir, max(args.images, 256))
  files = {
      "float32 (images_float16.tflite)": os.path.join(args.export_dir, "images_float16.tflite"),
      "int8 as exported": os.path.join(args.export_dir, "images_int8.tflite"),
  }
  for form in FORMS:
    files[f"int8, hard-swish as {form}"] = _export(args, form, images[:256])
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  x = images[:args.images]
  runners, partitions = {}, {}
  for name, path in files.items():
    interpreter = Interpreter(model_path=path, num_threads=2)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [64, *x.shape[1:]])
    interpreter.allocate_tensors()
    ops = collections.Counter(o["op_name"] for o in interpreter._get_ops_details())  # pylint: disable=protected-access
    partitions[name] = ops["DELEGATE"]
    runners[name] = (interpreter, index, interpreter.get_output_details()[0]["index"])
  rates = {name: [] for name in files}
  probabilities = {}
  for _ in range(args.rounds):
    for name, (interpreter, index, output) in runners.items():
      out = []
      start = time.perf_counter()
      for i in range(0, len(x), 64):
        interpreter.set_tensor(index, x[i:i + 64])
        interpreter.invoke()
        out.append(interpreter.get_tensor(output).copy())
      rates[name].append(len(x) / (time.perf_counter() - start))
      probabilities[name] = np.concatenate(out)
  reference = probabilities["float32 (images_float16.tflite)"]
  base = np.array(rates["float32 (images_float16.tflite)"])
  print(f"{len(x)} images, 2 threads, batch 64, {args.rounds} rounds")
  print("| file | XNNPACK partitions | images/s | ratio to float32 | max prob. diff | top class |")
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  for name in files:
    p = probabilities[name]
    print(f"| {name} | {partitions[name]} | {np.median(rates[name]):.1f} | "
          f"{np.median(np.array(rates[name]) / base):.2f} | {np.abs(p - reference).max():.3f} | "
          f"{(p.argmax(1) == reference.argmax(1)).mean():.1%} |")


if __name__ == "__main__":
  main()
