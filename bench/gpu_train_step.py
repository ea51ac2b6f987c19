r"""Training-step throughput of the EEGMobile model with Keras on JAX (no TensorFlow).

  PYTHONPATH=. KERAS_BACKEND=jax python bench/gpu_train_step.py \
      [--batch_sizes 16,64,128] [--precisions float32,bfloat16] [--steps 50] [--warmup 3] \
      [--image_size 224]

`eegmobile/model.py` needs only Keras, so the model can be measured on any accelerator
machine that has JAX, even without TensorFlow: this script imports Keras, JAX and numpy
only, and checks at the end that TensorFlow was never imported.

For each precision and batch size it measures phase 1 training (all layers), phase 2
training (the top of the backbone and the head) and inference, in images/s at steady
state: after `--warmup` steps (the first call, which compiles), the time of `--steps`
steps is subtracted from that of 2 x `--steps` steps, so the fixed cost of each fit /
predict call cancels. Training runs through `model.fit` after `model.compile` with
Adam(1e-3), sparse categorical cross-entropy and accuracy, as `trainers/train_lib.py`
compiles it (a fresh Adam for phase 2), on one random batch that stays on the device (a
generator yields it at every step), so the input pipeline is not measured
(`bench/input_pipeline.py` does that). Random weights (no download).

Precisions: "float32"; "bfloat16" = Keras' "mixed_bfloat16" policy (bfloat16 compute,
float32 variables and softmax, no loss scaling); "float16" = "mixed_float16" (what
`ModelConfig.mixed_precision` builds and the trainer uses on a GPU; Keras adds loss
scaling). `build_model` offers only float32 and mixed_float16, so the bfloat16 model is
built here with the same layers under a global "mixed_bfloat16" policy.

From each row's rates, the projected wall time of one Sleep-EDF-20 fold at the paper's
settings and of all 20 folds, as `bench/train_step.py` projects it: 18 training subjects
(20 minus test and validation) for 5 + 15 epochs, the validation subject scored after each
epoch and the test subject once, subjects of equal size (42,307 / 20 epochs). Batch 16 is
the paper's; the rows of larger batches project the same schedule at that batch (fewer
optimiser steps, so not the paper's training).

Prints the device (`jax.devices()`), a Markdown table and one JSON line (prefix "JSON ").
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is imported, here or below
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # pylint: disable=wrong-import-position

from bench import train_step as cpu_bench  # pylint: disable=wrong-import-position
from eegmobile import model as model_lib  # pylint: disable=wrong-import-position

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
PAPER_BATCH_SIZE = 16


def _int_list(text: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(",") if v.strip()]
  except ValueError:
    values = []
  if not values or min(values) < 1:
    raise argparse.ArgumentTypeError(f"need positive integers separated by commas, got {text!r}")
  return values


def _precision_list(text: str) -> list[str]:
  values = [v.strip() for v in text.split(",") if v.strip()]
  unknown = sorted(set(values) - set(POLICIES))
  if not values or unknown:
    raise argparse.ArgumentTypeError(f"precisions are {', '.join(POLICIES)}; got {text!r}")
  return values


def parse_args(argv=None) -> argparse.Namespace:
  """The command line (see the module docstring)."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_sizes", type=_int_list, default=[16, 64, 128])
  parser.add_argument("--precisions", type=_precision_list, default=["float32", "bfloat16"])
  parser.add_argument("--steps", type=int, default=50, help="timed steps per measure")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compile) first")
  parser.add_argument("--image_size", type=int, default=224)
  args = parser.parse_args(argv)
  if args.steps < 1 or args.warmup < 1 or args.image_size < 32:
    parser.error("need --steps >= 1, --warmup >= 1 and --image_size >= 32")
  return args


def build(precision: str, image_size: int):
  """The classifier (random weights) under the precision's dtype policy."""
  import keras  # pylint: disable=g-import-not-at-top
  config = model_lib.ModelConfig(image_size=image_size)
  if precision != "bfloat16":
    return model_lib.build_model(dataclasses.replace(config,
                                                     mixed_precision=precision == "float16"),
                                 weights=None)
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(POLICIES[precision])
  try:
    # build_model() would set float32 or mixed_float16 itself; its body under our policy.
    return model_lib._classifier(config, None)  # pylint: disable=protected-access
  finally:
    keras.mixed_precision.set_global_policy(previous)


def check_precision(model, precision: str) -> None:
  """Raises AssertionError unless the layers compute in the precision asked for."""
  compute = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}[precision]
  conv = next(l for l in model.layers if l.name == "conv")  # the backbone's first convolution
  assert conv.compute_dtype == compute, (conv.compute_dtype, precision)
  assert conv.variable_dtype == "float32", conv.variable_dtype
  assert model.get_layer("head_softmax").compute_dtype == "float32"


def _compile(model) -> None:
  import keras  # pylint: disable=g-import-not-at-top
  # As trainers/train_lib.py compiles it; Keras wraps Adam in loss scaling for float16.
  model.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])


def _repeat(item, times: int):
  for _ in range(times):
    yield item


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _steady_rate(call, steps: int, batch_size: int) -> dict:
  """Images/s of call(n) (n steps, returning when the device is done) without its fixed cost.

  Each fit / predict call has a fixed cost (setting up the epoch, reading the state back)
  besides its steps; timing n and 2n steps, the difference is n steps and nothing else.
  """
  short = _timed(lambda: call(steps))
  long = _timed(lambda: call(2 * steps))
  per_step = (long - short) / steps
  if per_step <= 0:  # timing noise beat the difference: fall back to the long call
    per_step = long / (2 * steps)
  return {
      "images_per_s": batch_size / per_step,
      "step_ms": 1000 * per_step,
      "call_overhead_s": max(short - steps * per_step, 0.0)
  }


def measure_training(model, batch, phase: int, steps: int, warmup: int) -> dict:
  """Steady-state images/s of `model.fit` on one device-resident batch, as compiled for
  training; also the first call's time (compilation and `warmup` steps)."""
  model_lib.set_trainable_phase(model, phase)
  _compile(model)
  losses = []

  def fit(steps):
    with warnings.catch_warnings():  # "shuffle=True ... ignored": nothing to shuffle here
      warnings.filterwarnings("ignore", message=".*shuffle=True.* was passed")
      # fit ends by reading the loss back, so it returns when the device is done.
      history = model.fit(_repeat(batch, steps), steps_per_epoch=steps, epochs=1, verbose=0)
    losses.append(float(history.history["loss"][-1]))

  first = _timed(lambda: fit(warmup))
  return {
      **_steady_rate(fit, steps, len(batch[0])), "first_call_s": first,
      "loss": losses[-1],
      "trainable": model_lib.trainable_count(model)
  }


def measure_inference(model, images, steps: int, warmup: int) -> dict:
  """Steady-state images/s of `model.predict` on one device-resident batch."""

  def predict(steps):  # returns numpy: the device is done
    model.predict(_repeat((images,), steps), steps=steps, verbose=0)

  first = _timed(lambda: predict(warmup))
  return {**_steady_rate(predict, steps, len(images)), "first_call_s": first}


def project(rates: dict) -> dict:
  """Wall time of one fold and of all folds at the paper's schedule (bench/train_step.py).

  Args:
    rates: images/s of {1: phase 1 training, 2: phase 2 training, "inference"}.

  Returns:
    {"epoch_phase1_s", "epoch_phase2_s", "fold_s", "all_folds_s"}.
  """
  subject = cpu_bench.SLEEP_EDF_20_EPOCHS / cpu_bench.SUBJECTS
  train = subject * (cpu_bench.SUBJECTS - 2)  # minus the test and the validation subject
  per_epoch = {p: train / rates[p] + subject / rates["inference"] for p in (1, 2)}
  test = subject / rates["inference"]  # scoring the test subject, once per fold
  fold = cpu_bench.PHASE1_EPOCHS * per_epoch[1] + cpu_bench.PHASE2_EPOCHS * per_epoch[2] + test
  return {
      "epoch_phase1_s": per_epoch[1],
      "epoch_phase2_s": per_epoch[2],
      "fold_s": fold,
      "all_folds_s": cpu_bench.SUBJECTS * fold
  }


def run(args: argparse.Namespace) -> dict:
  """Measures every precision and batch size; returns the report (rows and environment)."""
  import jax  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  if keras.backend.backend() != "jax":
    raise SystemExit(f"Keras runs on {keras.backend.backend()!r}: set KERAS_BACKEND=jax before "
                     "anything imports Keras")
  print(
      f"devices: {jax.devices()}; jax {jax.__version__}, keras {keras.__version__}, "
      f"numpy {np.__version__}, python {platform.python_version()}",
      flush=True)
  rng = np.random.default_rng(0)
  rows = []
  for precision in args.precisions:
    model = build(precision, args.image_size)
    check_precision(model, precision)
    for batch_size in args.batch_sizes:
      images = rng.uniform(0, 255, (batch_size, args.image_size, args.image_size, 3))
      labels = rng.integers(0, 5, batch_size)
      # On the device once: each step then reads it there (no host transfer measured).
      batch = (jax.device_put(images.astype("float32")), jax.device_put(labels.astype("int32")))
      row = {"precision": precision, "batch_size": batch_size}
      for phase in (1, 2):
        row[f"phase{phase}"] = measure_training(model, batch, phase, args.steps, args.warmup)
      row["inference"] = measure_inference(model, batch[0], args.steps, args.warmup)
      row["projection"] = project({
          1: row["phase1"]["images_per_s"],
          2: row["phase2"]["images_per_s"],
          "inference": row["inference"]["images_per_s"]
      })
      print(
          f"{precision} batch {batch_size}: phase 1 {row['phase1']['images_per_s']:.1f}, "
          f"phase 2 {row['phase2']['images_per_s']:.1f}, inference "
          f"{row['inference']['images_per_s']:.1f} images/s",
          flush=True)
      rows.append(row)
    del model
    keras.backend.clear_session()
  return {
      "bench": "gpu_train_step",
      "devices": [str(d) for d in jax.devices()],
      "backend": jax.default_backend(),
      "versions": {
          "jax": jax.__version__,
          "keras": keras.__version__,
          "numpy": np.__version__
      },
      "image_size": args.image_size,
      "steps": args.steps,
      "warmup": args.warmup,
      "rows": rows,
  }


def to_markdown(report: dict) -> str:
  """The report's rows as a Markdown table."""
  lines = [
      f"| precision | batch | phase 1 images/s | phase 2 images/s | inference images/s | "
      f"first calls s (compile) | one fold h | {cpu_bench.SUBJECTS} folds h |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in report["rows"]:
    first = "/".join(f"{r[k]['first_call_s']:.0f}" for k in ("phase1", "phase2", "inference"))
    paper = "" if r["batch_size"] == PAPER_BATCH_SIZE else " (not the paper's)"
    lines.append(f"| {r['precision']} | {r['batch_size']}{paper} | "
                 f"{r['phase1']['images_per_s']:.1f} | {r['phase2']['images_per_s']:.1f} | "
                 f"{r['inference']['images_per_s']:.1f} | {first} | "
                 f"{r['projection']['fold_s'] / 3600:.2f} | "
                 f"{r['projection']['all_folds_s'] / 3600:.1f} |")
  return "\n".join(lines) + "\n"


def main(argv=None) -> None:
  args = parse_args(argv)
  report = run(args)
  report["command"] = "KERAS_BACKEND=jax python bench/gpu_train_step.py " + " ".join(
      sys.argv[1:] if argv is None else argv)
  print(f"\n{args.image_size}x{args.image_size}, {args.steps} timed steps after {args.warmup}; "
        f"device {report['devices'][0]} ({report['backend']})\n")
  print(to_markdown(report))
  # The measured model path must not need TensorFlow: that is what this bench is for.
  assert "tensorflow" not in sys.modules, "TensorFlow was imported"
  report["tensorflow_imported"] = False
  print("JSON " + json.dumps(report, sort_keys=True))


if __name__ == "__main__":
  main()
