r"""Exported model files: size, agreement with the Keras model, latency. Prints a table.

  python bench/export_table.py [--model checkpoint.keras --preprocessing BUILD_DIR]
      [--build_dir BUILD_DIR] [--epochs 100] [--repeats 20] [--work_dir DIR]

Exports the model with `trainers.export_lib` (default: a random-weights 224x224 model
taking colour-map indices, its batch-norm statistics set from synthetic spectrograms so
that its output depends on its input), then, for each of the Keras model, the SavedModel
signatures and the TFLite files, over --epochs raw epochs of synthetic EEG
(`eegmobile.demo.synthetic`, the demo build's generator, 20% of each stage):

  size      bytes on disk (.keras file; SavedModel directory; .tflite file)
  max |dp|  the largest difference of any stage probability from the Keras model's on
            the numpy path's images of the same epochs (what a build stores)
  top-1     share of epochs whose most probable stage is the Keras model's
  ms        median latency of one epoch (batch of 1) over --repeats calls: an eager call
            for Keras, one thread for TFLite; raw-epoch rows include the front end

int8 is calibrated on the first 256 images of --build_dir (default: the numpy images of
another set of synthetic epochs). Takes a few minutes on 2 cores.
"""

import argparse
import os
import sys
import tempfile
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


def _synthetic_epochs(n: int, seed: int) -> np.ndarray:
  labels = np.arange(n) % stages.NUM_STAGES
  return synthetic.synthesize_eeg(labels, seed=seed).reshape(n, 3000).astype(np.float32)


def _random_model(path: str, config: SpectrogramConfig) -> None:
  import keras  # pylint: disable=g-import-not-at-top
  from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)  # the same model in every run
  model = model_lib.build_model(model_lib.ModelConfig(image_size=config.image_height,
                                                      input_colormap="viridis",
                                                      batch_norm_momentum=0.0),
                                weights=None)
  model(spectrogram.spectrogram_images(_synthetic_epochs(32, seed=7), config), training=True)
  model.save(path)


def _median_ms(fn, inputs, repeats: int) -> float:
  fn(inputs[:1])  # warm-up
  times = []
  for i in range(repeats):
    x = inputs[i % len(inputs):][:1]
    start = time.perf_counter()
    fn(x)
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


def _tflite(path: str, signature: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
  runner = interpreter.get_signature_runner(signature)
  name = next(iter(runner.get_input_details()))
  return lambda x: next(iter(runner(**{name: x}).values()))


def _batched(fn, x, size=16):
  return np.concatenate([np.asarray(fn(x[i:i + size])) for i in range(0, len(x), size)])


def _dir_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model", help=".keras file (default: a random-weights 224x224 model)")
  parser.add_argument("--preprocessing", help="where the parameters are (see trainers.export)")
  parser.add_argument("--build_dir", help="build whose images calibrate int8")
  parser.add_argument("--epochs", type=int, default=100)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--work_dir", default=None)
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  work = args.work_dir or tempfile.mkdtemp(prefix="export-bench-")
  os.makedirs(work, exist_ok=True)
  if args.model:
    model_path = args.model
    given = export_lib.load_preprocessing(args.preprocessing) if args.preprocessing else None
    preprocessing = export_lib.resolve_preprocessing(model_path, given)
  else:
    model_path = os.path.join(work, "checkpoint.keras")
    _random_model(model_path, SpectrogramConfig())
    preprocessing = export_lib.Preprocessing(SpectrogramConfig(), 3000, "defaults")
  spec = preprocessing.spectrogram
  if args.build_dir:
    calibration, source = export_lib.build_images(args.build_dir, 256), args.build_dir
  else:
    calibration = spectrogram.spectrogram_images(_synthetic_epochs(256, seed=11), spec)
    source = "synthetic epochs' images"
  start = time.perf_counter()
  record = export_lib.export(model_path,
                             os.path.join(work, "export"),
                             preprocessing=preprocessing,
                             calibration_images=calibration)
  export_s = time.perf_counter() - start
  out = os.path.join(work, "export")
  keras_model = export_lib.load_keras_model(model_path)
  loaded = tf.saved_model.load(os.path.join(out, "saved_model"))  # referenced while used
  epochs = _synthetic_epochs(args.epochs, seed=3)
  images = spectrogram.spectrogram_images(epochs, spec)
  file = {name: os.path.join(out, entry["file"]) for name, entry in record["tflite"].items()}
  frontend_tflite = _tflite(file["frontend"], "frontend")
  int8 = _tflite(file["int8"], "images")
  float16 = _tflite(file["float16"], "images")

  def saved(signature, key):
    fn = loaded.signatures[signature]
    return lambda x: fn(**{key: tf.constant(x)})["probabilities"]

  def keras_on_indices(x):
    if len(keras_model.inputs[0].shape) == 4:  # a model taking RGB: the colour map first
      from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top
      x = model_lib.ColorMap(record["colormap"])(x)
    return keras_model(x, training=False)

  rows = [
      ("Keras (.keras), numpy images", "images", os.path.getsize(model_path), keras_on_indices,
       images),
      ("SavedModel serving_default", "epochs", _dir_bytes(os.path.join(out, "saved_model")),
       saved("serving_default", "epochs"), epochs),
      ("SavedModel images", "images", None, saved("images", "colormap_indices"), images),
      ("TFLite float32", "epochs", os.path.getsize(file["float32"]),
       _tflite(file["float32"], "serving_default"), epochs),
      ("TFLite float16 (image model)", "images", os.path.getsize(file["float16"]), float16, images),
      ("TFLite front end f32 + float16", "epochs",
       os.path.getsize(file["frontend"]) + os.path.getsize(file["float16"]),
       lambda x: float16(frontend_tflite(x)), epochs),
      ("TFLite int8 (image model)", "images", os.path.getsize(file["int8"]), int8, images),
      ("TFLite front end f32 + int8", "epochs",
       os.path.getsize(file["frontend"]) + os.path.getsize(file["int8"]),
       lambda x: int8(frontend_tflite(x)), epochs),
  ]
  reference = _batched(rows[0][3], images)
  print(f"model {model_path}; {args.epochs} synthetic epochs; int8 calibrated on "
        f"{len(calibration)} images ({source}); export took {export_s:.0f} s\n")
  print("| file | input | size (MB) | max abs prob diff | top-1 agreement | ms / epoch |")
  print("|---|---|---:|---:|---:|---:|")
  for name, kind, size, fn, inputs in rows:
    probabilities = _batched(fn, inputs)
    diff = np.abs(probabilities - reference).max()
    top = (probabilities.argmax(axis=1) == reference.argmax(axis=1)).mean()
    ms = _median_ms(fn, inputs, args.repeats)
    mb = "(in the above)" if size is None else f"{size / 1e6:.1f}"
    print(f"| {name} | {kind} | {mb} | {diff:.2g} | {100 * top:.0f}% | {ms:.1f} |")
  numpy_ms = _median_ms(lambda x: spectrogram.spectrogram_images(x, spec), epochs, args.repeats)
  tflite_ms = _median_ms(frontend_tflite, epochs, args.repeats)
  difference = np.abs(_batched(frontend_tflite, epochs).astype(int) - images)
  print(f"\nfront end alone, ms / epoch: numpy {numpy_ms:.2f}, TFLite float32 {tflite_ms:.2f} "
        f"({100 * (difference == 0).mean():.3f}% of pixels equal to numpy's, "
        f"at most {difference.max()} index apart)")
  del loaded


if __name__ == "__main__":
  main()
