r"""A short-trained model on the demo build, exported: what the runtime benches compare on.

  PYTHONPATH=. python bench/demo_model.py --workdir /tmp/demo_model [--build_dir out/demo]

No trained Sleep-EDF weights can be reached here, and a random-weights model is a poor
stand-in for precision and speed comparisons (its outputs are nearly one-hot or nearly
constant; bf16 and int8 disagree with float32 far more on it). This trains fold 0 of the
demo build (`python -m beam_pipelines.build --runner DirectRunner`) from random weights
with the paper's model at 224x224 for a few short epochs (phase 1 only, batch-norm
momentum 0.9 so that the moving statistics catch up in ~200 steps; Keras' 0.999 leaves
them at their initial values and the model predicts one class), scores the held-out
subject, and exports the checkpoint with trainers.export_lib (int8 calibrated on the
build). About 5 minutes on 2 cores. Then:

  PYTHONPATH=. python bench/runtimes.py --export_dir /tmp/demo_model/export \
      --build_dir out/demo --images 1024
  PYTHONPATH=. python bench/stage_night.py --export_dir /tmp/demo_model/export ...
"""

import os

from absl import app
from absl import flags

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/demo_model", "Training run and export go here.")
_BUILD_DIR = flags.DEFINE_string("build_dir", "out/demo", "The demo build.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Phase-1 epochs.")
_STEPS = flags.DEFINE_integer("steps_per_epoch", 80, "Steps of 16 images per epoch.")


def main(argv):
  del argv
  from trainers import config as config_lib  # pylint: disable=g-import-not-at-top
  from trainers import export_lib  # pylint: disable=g-import-not-at-top
  from trainers import train_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.TrainConfig(build_dir=_BUILD_DIR.value,
                                  workdir=os.path.join(_WORKDIR.value, "run"),
                                  fold=0,
                                  weights=None,
                                  phase1_epochs=_EPOCHS.value,
                                  phase2_epochs=0,
                                  steps_per_epoch=_STEPS.value,
                                  batch_norm_momentum=0.9,
                                  mixed_precision="off")
  metrics = train_lib.train_fold(config)
  print(f"held-out subject: accuracy {metrics['acc']:.1f}%, macro F1 {metrics['mf1']:.1f}%, "
        f"kappa {metrics['kappa']:.3f} ({metrics['num_epochs']} epochs)")
  export = os.path.join(_WORKDIR.value, "export")
  export_lib.export(os.path.join(train_lib.fold_dir(config), "checkpoint.keras"),
                    export,
                    calibration_images=export_lib.build_images(_BUILD_DIR.value, 256))
  print(f"exported to {export}")


if __name__ == "__main__":
  app.run(main)
