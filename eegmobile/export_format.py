"""What an exported model looks like on disk: the names its writer and its readers share.

`trainers.export_lib` writes an export directory; `eegmobile.staging.runtimes` reads one
(without TensorFlow). Both take these names from here, so they cannot drift apart:

  export.json                   FORMAT, the preprocessing (`Preprocessing.to_dict`), the
                                TFLite files and the signature each one holds
  saved_model/                  signatures EPOCHS_SIGNATURE (raw epochs -> probabilities),
                                IMAGES_SIGNATURE (uint8 colour-map indices ->
                                probabilities) and FRONTEND_SIGNATURE (epochs -> images)
  TFLITE_FILES[format]          one file per format
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
FORMATS = ("float32", "float16", "int8")  # the TFLite model files `trainers.export` can write
TFLITE_FILES = {
    "float32": "eegmobile_float32.tflite",  # raw epochs, front end inside
    "float16": "images_float16.tflite",
    "int8": "images_int8.tflite",
    "frontend": "frontend_float32.tflite",
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
