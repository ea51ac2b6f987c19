r"""Image-model throughput and agreement: OpenVINO bf16 and f32, LiteRT, tf.lite.

  PYTHONPATH=. python bench/runtimes.py --export_dir EXPORT \
      [--build_dir BUILD] [--file images_float16.tflite] [--images 256] [--threads 2]

For one exported TFLite file (default images_float16.tflite: colour-map indices in,
float16 weights computed in float32), on the same images in one process, prints a row
per runtime: images/s at batch 64 on --threads threads (best of 3 passes over the
images), and agreement with tf.lite (max |dp| of any stage probability, share of equal
top-1). Images: the first --images of --build_dir (`export_lib.build_images`), else the
numpy spectrograms of synthetic EEG (`eegmobile.demo.synthetic`, every stage). A runtime
that is not installed is a row saying so. OpenVINO rows use both performance hints.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

# pylint: disable=wrong-import-position
from eegmobile import spectrogram
from eegmobile import stages
from eegmobile.config import SpectrogramConfig
from eegmobile.demo import synthetic
from trainers import export_lib
# pylint: enable=wrong-import-position

BATCH = 64


def _images(args, config: SpectrogramConfig) -> np.ndarray:
  if args.build_dir:
    return export_lib.build_images(args.build_dir, args.images)
  labels = np.arange(args.images) % stages.NUM_STAGES
  epochs = synthetic.synthesize_eeg(labels, seed=11).reshape(args.images, -1)
  return spectrogram.spectrogram_images(epochs.astype(np.float32), config)


def _batched(predict, x: np.ndarray) -> np.ndarray:
  return np.concatenate([predict(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])


def _per_second(predict, x: np.ndarray) -> float:
  predict(x[:BATCH])  # warm-up
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    _batched(predict, x)
    best = min(best, time.perf_counter() - start)
  return len(x) / best


def _interpreter(module, path: str, threads: int):
  """predict(batch) for a tf.lite or LiteRT Interpreter, resized to each batch size."""
  interpreter = module.Interpreter(model_path=path, num_threads=threads)
  index = interpreter.get_input_details()[0]["index"]
  output = interpreter.get_output_details()[0]["index"]
  shape = [None]

  def predict(batch):
    if shape[0] != batch.shape:
      interpreter.resize_tensor_input(index, batch.shape)
      interpreter.allocate_tensors()
      shape[0] = batch.shape
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    return interpreter.get_tensor(output).copy()

  return predict


def _runtimes(path: str, threads: int):
  """(name, factory) per runtime; a factory raises ImportError when not installed."""

  def tflite():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return _interpreter(tf.lite, path, threads)

  def litert():
    from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
    return _interpreter(interpreter, path, threads)

  def openvino(precision, hint):
    from eegmobile.staging import openvino_runtime  # pylint: disable=g-import-not-at-top
    return lambda: openvino_runtime.load(
        path, threads=threads, precision=precision, performance_hint=hint)

  return [("tf.lite float32", tflite),
          ("LiteRT float32", litert)] + [(f"OpenVINO {p} {h}", openvino(p, h))
                                         for p in ("f32", "bf16")
                                         for h in ("LATENCY", "THROUGHPUT")]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--export_dir", required=True)
  parser.add_argument("--file", default=export_lib.TFLITE_FILES["float16"])
  parser.add_argument("--build_dir")
  parser.add_argument("--images", type=int, default=256)
  parser.add_argument("--threads", type=int, default=2)
  args = parser.parse_args()
  path = os.path.join(args.export_dir, args.file)
  config = export_lib.load_preprocessing(args.export_dir).spectrogram
  images = _images(args, config)
  print(f"{path}: {len(images)} images, batch {BATCH}, {args.threads} threads")
  print(f"{'runtime':28s} {'images/s':>9s} {'max |dp|':>9s} {'top-1':>7s}")
  reference = None
  for name, factory in _runtimes(path, args.threads):
    try:
      predict = factory()
    except ImportError as e:
      print(f"{name:28s} not installed ({e})")
      continue
    probabilities = _batched(predict, images)
    if reference is None:
      reference = probabilities
    rate = _per_second(predict, images)
    dp = np.abs(probabilities - reference).max()
    top1 = (probabilities.argmax(1) == reference.argmax(1)).mean()
    print(f"{name:28s} {rate:9.1f} {dp:9.4f} {top1:7.1%}", flush=True)


if __name__ == "__main__":
  main()
