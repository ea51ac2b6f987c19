"""What an exported model looks like on disk: the names its writer and its readers share.

`trainers.export_lib` writes an export directory; `eegmobile.staging.runtimes` reads one
(without TensorFlow). Both take these names from here, so they cannot drift apart:

  export.json                   FORMAT, the preprocessing (`Preprocessing.to_dict`), the
                                TFLite files and the signature each one holds
  saved_model/                  signatures EPOCHS_SIGNATURE (raw epochs -> probabilities),
                                IMAGES_SIGNATURE (uint8 colour-map indices ->
                                probabilities) and FRONTEND_SIGNATURE (epochs -> images)
  TFLITE_FILES[format]          one file per format

With a context stage (issue 17; the "context" section of export.json, `CONTEXT_KEY`), the
export also holds, for a sequence head:

  IMAGES_FEATURES_SIGNATURE     images -> FEATURES_OUTPUT float32 [n, 5 + F]: the stage
                                probabilities, then the per-epoch features the head reads
                                (one output, so every runtime runs it as it runs the image
                                model), in the SavedModel and as TFLITE_FILES["features"]
  CONTEXT_HEAD_FILES[variant]   the sequence head (centred) and its causal variant: float32
                                features [1, T, F] -> probabilities [1, T, 5], any T
"""

import dataclasses

from eegmobile.config import SpectrogramConfig

FORMAT = "eegmobile-export"
FORMAT_VERSION = 1
EXPORT_FILE = "export.json"
SAVED_MODEL_DIR = "saved_model"
EPOCHS_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "images"
FRONTEND_SIGNATURE = "frontend"
IMAGES_FEATURES_SIGNATURE = "images_features"
FEATURES_OUTPUT = "probabilities_features"
CONTEXT_KEY = "context"
FORMATS = ("float32", "float16", "int8")  # the TFLite model files `trainers.export` can write
TFLITE_FILES = {
    "float32": "eegmobile_float32.tflite",  # raw epochs, front end inside
    "float16": "images_float16.tflite",
    "int8": "images_int8.tflite",
    "frontend": "frontend_float32.tflite",
    # With a sequence head only. float32: the head then reads features as the Keras model
    # computes them (float16 weights would move them by ~1e-3; it is no faster).
    "features": "images_features_float32.tflite",
}
CONTEXT_HEAD_FILES = {
    "head": "context_head_float32.tflite",
    "head_causal": "context_head_causal_float32.tflite",
}


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How raw epochs become the model's images.

  Attributes:
    spectrogram: the build's image parameters (manifest `config.spectrogram`).
    samples_per_epoch: samples of one epoch at spectrogram.fs.
    source: the file they were read from ("" when not read from a file).
  """
  spectrogram: SpectrogramConfig
  samples_per_epoch: int
  source: str = ""

  def to_dict(self) -> dict:
    return {
        "spectrogram": dataclasses.asdict(self.spectrogram),
        "samples_per_epoch": self.samples_per_epoch,
        "source": self.source
    }

  @classmethod
  def from_dict(cls, recorded: dict, source: str) -> "Preprocessing":
    """The preprocessing recorded in an export.json or a model card (`to_dict`'s form).

    Raises:
      KeyError, TypeError, ValueError: not that form.
    """
    return cls(SpectrogramConfig.from_dict(recorded["spectrogram"]),
               int(recorded["samples_per_epoch"]), source)
