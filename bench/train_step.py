r"""Training step throughput of the EEGMobile model on this machine, and fold projections.

  python bench/train_step.py [--steps 20] [--batch_size 16]

MobileNetV3Large + head at 224x224, batch 16, float32 (mixed precision on CPU is many
times slower), random weights, steady state after warm-up: images/s for phase 1 (all
layers train) and phase 2 (top of the backbone and the head), and inference. From them:
the wall time of one Sleep-EDF-20 fold at the paper's settings and of all 20 folds. A fold
trains on 18 subjects (20 minus the test and the validation subject) for 5 + 15 epochs,
scores the validation subject after every epoch and the test subject once; subjects are
taken as equal-sized (42,307 / 20 epochs each). Input pipeline time is not included
(bench/input_pipeline.py measures it). Measured figures and their commands: BUILD_NOTES.md.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from eegmobile import model as model_lib  # pylint: disable=wrong-import-position

SLEEP_EDF_20_EPOCHS = 42_307  # our build (BUILD_NOTES.md); the paper counts 42,308
SUBJECTS = 20
PHASE1_EPOCHS, PHASE2_EPOCHS = 5, 15


def _images_per_second(fn, batch, steps: int, warmup: int = 2) -> float:
  for _ in range(warmup):
    fn(*batch)
  start = time.perf_counter()
  for _ in range(steps):
    fn(*batch)
  return steps * len(batch[0]) / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--batch_size", type=int, default=16)
  args = parser.parse_args()
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  batch = (rng.uniform(0, 255, (args.batch_size, 224, 224, 3)).astype("float32"),
           rng.integers(0, 5, args.batch_size).astype("int32"))
  model = model_lib.build_model(model_lib.ModelConfig(), weights=None)
  rates = {}
  for phase in (1, 2):
    model_lib.set_trainable_phase(model, phase)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    rates[phase] = _images_per_second(model.train_on_batch, batch, args.steps)
  rates["inference"] = _images_per_second(lambda x, y: model.predict_on_batch(x), batch, args.steps)
  subject = SLEEP_EDF_20_EPOCHS / SUBJECTS
  train = subject * (SUBJECTS - 2)  # minus the test and the validation subject
  per_epoch = {p: train / rates[p] + subject / rates["inference"] for p in (1, 2)}
  test = subject / rates["inference"]  # scoring the test subject, once per fold
  fold = PHASE1_EPOCHS * per_epoch[1] + PHASE2_EPOCHS * per_epoch[2] + test
  print("\n| measure (CPU, float32, batch %d, 224x224) | value |\n| --- | --- |" % args.batch_size)
  print(f"| phase 1 training (all layers) | {rates[1]:.1f} images/s |")
  print(f"| phase 2 training (top + head) | {rates[2]:.1f} images/s |")
  print(f"| inference | {rates['inference']:.1f} images/s |")
  print(f"| one epoch, phase 1 / phase 2 (~{train:.0f} training + {subject:.0f} validation "
        f"images) | {per_epoch[1] / 3600:.2f} h / {per_epoch[2] / 3600:.2f} h |")
  print(f"| one fold, {PHASE1_EPOCHS} + {PHASE2_EPOCHS} epochs + test | {fold / 3600:.1f} h |")
  folds = SUBJECTS * fold
  print(f"| {SUBJECTS} folds | {folds / 3600:.0f} h ({folds / 86400:.1f} days) |")
  print(f"\ncores: {os.cpu_count()}; command: python bench/train_step.py --steps {args.steps} "
        f"--batch_size {args.batch_size}")


if __name__ == "__main__":
  main()
