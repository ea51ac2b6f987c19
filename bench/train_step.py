r"""Training step throughput of the EEGMobile model on this machine, and fold projections.

  python bench/train_step.py [--steps 8] [--batch_size 16]

MobileNetV3Large + head at 224x224, batch 16, float32 (mixed precision on CPU is many
times slower), random weights, steady state after warm-up: images/s for phase 1 (all
layers train) and phase 2 (top of the backbone and the head), and inference. From them:
the wall time of one Sleep-EDF-20 fold at the paper's settings and of all 20 folds.
Takes about 3 minutes on 2 cores.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from eegmobile import model as model_lib  # pylint: disable=wrong-import-position

SLEEP_EDF_20_EPOCHS = 42_307  # our build; 20 subjects
SUBJECTS = 20


def _images_per_second(fn, batch, steps: int, warmup: int = 2) -> float:
  for _ in range(warmup):
    fn(*batch)
  start = time.perf_counter()
  for _ in range(steps):
    fn(*batch)
  return steps * len(batch[0]) / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=8)
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
  train = SLEEP_EDF_20_EPOCHS * (SUBJECTS - 2) / SUBJECTS  # minus test and validation
  held_out = SLEEP_EDF_20_EPOCHS * 2 / SUBJECTS
  per_epoch = {p: train / rates[p] + held_out / rates["inference"] for p in (1, 2)}
  fold = 5 * per_epoch[1] + 15 * per_epoch[2]
  print("\n| measure (CPU, float32, batch %d, 224x224) | value |\n| --- | --- |" % args.batch_size)
  print(f"| phase 1 training (all layers) | {rates[1]:.1f} images/s |")
  print(f"| phase 2 training (top + head) | {rates[2]:.1f} images/s |")
  print(f"| inference | {rates['inference']:.1f} images/s |")
  print(f"| one epoch, phase 1 / phase 2 (~{train:.0f} training + {held_out:.0f} held-out "
        f"images) | {per_epoch[1] / 3600:.2f} h / {per_epoch[2] / 3600:.2f} h |")
  print(f"| one fold, 5 + 15 epochs | {fold / 3600:.1f} h |")
  print(f"| 20 folds | {20 * fold / 3600:.0f} h ({20 * fold / 86400:.1f} days) |")
  print(f"\ncores: {os.cpu_count()}; command: python bench/train_step.py --steps {args.steps} "
        f"--batch_size {args.batch_size}")


if __name__ == "__main__":
  main()
