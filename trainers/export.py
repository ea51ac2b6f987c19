r"""Export a trained model: a SavedModel and TFLite files that take raw 30 s EEG epochs.

  python -m trainers.export --model runs/paper/fold_00/checkpoint.keras \
      --output_dir exports/fold_00
  python -m trainers.export --model runs/paper/final --output_dir exports/final
  python -m trainers.export --model model.keras --preprocessing out/sleep-edf-20 \
      --output_dir exports/m --formats float32,int8 --calibration_examples 256

The preprocessing parameters (the build's spectrogram parameters and epoch length) come
from --preprocessing (a build directory, a manifest.json, a fold directory or an export),
or by default from the model card beside the model (a trainers.cv --fold final directory,
whose card is copied into export.json; int8 calibrates on the card's build unless
--calibration_build is given), else the fold directory beside the model (its config.json
names the build);
given ones must equal the ones the model was trained with. A context stage beside the model
(<its directory>/context/, trainers.cv --context) is exported too (--nocontext: not):
export.json's "context" and, for a sequence head, images_features_float32.tflite and the
context_head*.tflite files. int8 is calibrated on the
first --calibration_examples images of --calibration_build (default: the build the
parameters came from). What is written, and why float16 and int8 cover the image model
only: trainers/export_lib.py. Exit status 2 on unusable input, with a message naming the file.
"""

import os
import sys

from absl import app
from absl import flags

from eegmobile import cli

# Flags live only in entry modules: defined in libraries they collide when imported twice.
_MODEL = flags.DEFINE_string("model",
                             None,
                             "Saved Keras model (.keras), or a trainers.cv --fold final directory.",
                             required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the export goes.", required=True)
_PREPROCESSING = flags.DEFINE_string(
    "preprocessing", None, "Build dir, manifest.json, fold dir or export dir holding the "
    "preprocessing parameters. Default: the model's fold directory's record.")
_COLORMAP = flags.DEFINE_string(
    "colormap", None, "For a model taking RGB: its colour map (default: the fold's "
    "config.json, else viridis).")
_FORMATS = flags.DEFINE_list("formats", ["float32", "float16", "int8"], "TFLite files to write.")
_CALIBRATION_BUILD = flags.DEFINE_string(
    "calibration_build", None, "Build whose images calibrate int8 (default: the build the "
    "preprocessing parameters came from).")
_CALIBRATION_EXAMPLES = flags.DEFINE_integer("calibration_examples", 256,
                                             "Images used to calibrate int8.")
_CONTEXT = flags.DEFINE_bool(
    "context", True, "Export the context stage beside the model (its context/ directory), "
    "if it has one; staging then applies it.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Leave TensorFlow's logs on the terminal.")


def main(argv):
  del argv
  cli.quiet(_VERBOSE.value)
  # Lazy: quiet() must run before TensorFlow is imported, and export_lib imports it.
  from trainers import export_lib  # pylint: disable=g-import-not-at-top
  try:
    given = (export_lib.load_preprocessing(_PREPROCESSING.value) if _PREPROCESSING.value else None)
    preprocessing = export_lib.resolve_preprocessing(_MODEL.value, given)
    calibration = None
    if "int8" in _FORMATS.value:
      build = _CALIBRATION_BUILD.value
      card = export_lib.model_card(_MODEL.value)
      if not build and card and os.path.basename(preprocessing.source) == export_lib.CARD_FILE:
        build = card["build"]["build_dir"]  # the build the card's model was trained on
      if not build:
        if os.path.basename(preprocessing.source) != "manifest.json":
          raise ValueError(f"int8 needs a build's images: the parameters came from "
                           f"{preprocessing.source}, not a build; pass --calibration_build")
        build = os.path.dirname(preprocessing.source)
      calibration = export_lib.build_images(build, _CALIBRATION_EXAMPLES.value)
    record = export_lib.export(_MODEL.value,
                               _OUTPUT_DIR.value,
                               preprocessing=preprocessing,
                               colormap=_COLORMAP.value,
                               formats=_FORMATS.value,
                               calibration_images=calibration,
                               context=_CONTEXT.value)
  except (FileNotFoundError, ValueError, KeyError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"SavedModel {os.path.join(_OUTPUT_DIR.value, record['saved_model']['dir'])}")
  for name, entry in record["tflite"].items():
    print(f"{name:9s} {entry['file']:31s} {entry['bytes']:>11,d} bytes  {entry['input']}")
  context = record.get("context")
  if context:
    print(f"context: {context['stage']} (causal lag {context['lag']}), transitions and priors in "
          "export.json")
    for name, entry in (context.get("head") or {}).items():
      print(f"{name:11s} {entry['file']:34s} {entry['bytes']:>9,d} bytes  {entry['input']}")
  return 0


if __name__ == "__main__":
  app.run(main)
