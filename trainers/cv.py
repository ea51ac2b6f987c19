r"""Train and evaluate folds of subject-wise cross-validation (the EEGMobile fine-tune).

  python -m trainers.cv --build_dir out/sleep-edf-20 --workdir runs/paper --fold 3
  python -m trainers.cv --build_dir out/sleep-edf-20 --workdir runs/paper --fold all
  python -m trainers.report --workdir runs/paper

Each fold trains 5 epochs with every layer trainable, then 15 with only the top of the
backbone and the head (see eegmobile/model.py), and scores its held-out subject. Kill it
and run the same command again: it resumes after the last finished epoch; finished folds
are skipped (or extended, when asked for more epochs than they ran). Time, measured by
bench/train_step.py on 2 CPU cores (float32): about 3.2 h per Sleep-EDF-20 fold, 65 h
for all 20; on a GPU (the paper used a GTX 1060) it is far less, with mixed precision
(on by default when a GPU is present) and --colormap_on device. Offline, pass a local
ImageNet weights file with --weights (the error message says which file). A smoke run:

  python -m trainers.cv --build_dir out/demo --workdir /tmp/smoke --weights none \
      --phase1_epochs 1 --phase2_epochs 1 --steps_per_epoch 2 --batch_size 4
"""

import sys

from absl import app
from absl import flags

# Flags live only in entry modules: defined in libraries they collide when imported twice.
_BUILD_DIR = flags.DEFINE_string("build_dir", "out/sleep-edf-20", "Output of beam_pipelines.build.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/paper", "Checkpoints, logs and predictions.")
_FOLD = flags.DEFINE_string("fold", "0", "Fold number (0-based) or 'all'.")
_NUM_FOLDS = flags.DEFINE_integer("num_folds", None, "Default: one fold per subject.")
_NUM_VALIDATION = flags.DEFINE_integer(
    "num_validation_subjects", 1, "Subjects held out of training to validate on (never the "
    "test subject).")
_WEIGHTS = flags.DEFINE_string("weights", "imagenet", "'imagenet', a weights file, or 'none'.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Examples per batch.")
_PHASE1 = flags.DEFINE_integer("phase1_epochs", 5, "Epochs training every layer.")
_PHASE2 = flags.DEFINE_integer("phase2_epochs", 15, "Epochs training the top only.")
_LR = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
_CACHE = flags.DEFINE_string("cache", "memory", "'memory', a file path prefix, or 'none'.")
_MIXED = flags.DEFINE_enum("mixed_precision", "auto", ["auto", "on", "off"],
                           "auto: on only when a GPU is present.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Resize images; default: the build's.")
_COLOR = flags.DEFINE_enum("color", "viridis", ["viridis", "grey"], "Colour map.")
_COLORMAP_ON = flags.DEFINE_enum(
    "colormap_on", "host", ["host", "device"], "Where the colour map is applied: in tf.data "
    "(host) or as the model's first layer on the accelerator (device; fastest to feed).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Limit steps per epoch (smoke runs).")


def main(argv):
  del argv
  from tfrecords import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  from trainers import config as config_lib  # pylint: disable=g-import-not-at-top
  from trainers import train_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.paper(build_dir=_BUILD_DIR.value,
                            workdir=_WORKDIR.value,
                            num_folds=_NUM_FOLDS.value,
                            num_validation_subjects=_NUM_VALIDATION.value,
                            weights=None if _WEIGHTS.value.lower() == "none" else _WEIGHTS.value,
                            batch_size=_BATCH.value,
                            phase1_epochs=_PHASE1.value,
                            phase2_epochs=_PHASE2.value,
                            learning_rate=_LR.value,
                            cache=None if _CACHE.value == "none" else _CACHE.value,
                            mixed_precision=_MIXED.value,
                            image_size=_IMAGE_SIZE.value,
                            color=_COLOR.value,
                            colormap_on=_COLORMAP_ON.value,
                            seed=_SEED.value,
                            steps_per_epoch=_STEPS.value,
                            validation_steps=_STEPS.value)
  try:
    manifest = manifest_lib.load_manifest(config.build_dir)
    num_folds = config.num_folds or len(manifest["subjects"])
    folds = range(num_folds) if _FOLD.value == "all" else [int(_FOLD.value)]
    for result in train_lib.cross_validate(config, folds):
      print(f"fold {result['fold']} ({', '.join(result['test_subjects'])}): "
            f"ACC {result['acc']:.2f}  MF1 {result['mf1']:.2f}  kappa {result['kappa']:.3f}")
  except (FileNotFoundError, ValueError, RuntimeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  app.run(main)
