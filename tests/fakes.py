"""Tiny builds written at test time: the layout, manifest and schema of a real build.

Images are stage-separable on purpose (each stage has its own band of bright rows, at a
random offset and with noise), so a model that learns must beat chance on them and one
trained on shuffled labels must not.
"""

import os
from typing import Callable, Sequence

import numpy as np

from eegmobile import config as config_lib
from eegmobile import nights as nights_lib
from eegmobile import stages
from tfrecords import manifest as manifest_lib
from tfrecords import schema
from tfrecords import writer


def stage_image(label: int, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A noisy uint8 image whose bright band sits at a stage-specific height."""
  image = rng.normal(60, 20, size=(height, width))
  band = height // stages.NUM_STAGES
  top = label * band + int(rng.integers(0, max(1, band // 4)))
  image[top:top + max(1, band // 2)] += 150
  return np.clip(image, 0, 255).astype(np.uint8)


def make_fake_build(
    build_dir: str,
    *,
    subjects: Sequence[str] = ("SC00", "SC01", "SC02"),
    nights: Sequence[int] = (1, 2),
    epochs_per_night: int = 20,
    image_size: int = 32,
    seed: int = 0,
    compression: str = "",
    subset: str = "sleep-edf-20",
    shuffle_labels: bool = False,
    image_fn: Callable[[int, np.random.Generator, int, int], np.ndarray] = stage_image) -> dict:
  """Writes a complete build (shards + manifest) and returns its manifest.

  The manifest comes from the build's own `make_manifest`, so fakes cannot drift from the
  real format. Labels cycle through the five stages; with shuffle_labels the images are
  drawn for the true stage but the stored label is permuted (a model must not learn it).
  image_fn(true stage, rng, height, width) draws each image (default: `stage_image`).
  """
  rng = np.random.default_rng(seed)
  os.makedirs(build_dir, exist_ok=True)
  cfg = config_lib.BuildConfig(subset=subset,
                               compression=compression,
                               spectrogram=config_lib.SpectrogramConfig(image_height=image_size,
                                                                        image_width=image_size))
  examples, summaries = {}, []
  for subject_number, subject_id in enumerate(subjects):
    for night in nights:
      true = np.arange(epochs_per_night) % stages.NUM_STAGES
      stored = rng.permutation(true) if shuffle_labels else true
      record = f"SC4{subject_number:02d}{night}E0"
      examples[record] = [
          schema.encode_example(image=image_fn(int(t), rng, image_size, image_size),
                                label=int(s),
                                subject=subject_id,
                                night=night,
                                epoch_index=e,
                                onset_seconds=30.0 * e,
                                record=record) for e, (t, s) in enumerate(zip(true, stored))
      ]
      summaries.append({
          "record": record,
          "subject": subject_id,
          "night": night,
          "num_examples": epochs_per_night,
          "class_counts": nights_lib.class_counts(stored),
          "dropped": {}
      })
  manifest = manifest_lib.make_manifest(cfg, summaries, [], demo=True)
  for night in manifest["recordings"]:
    writer.write_tfrecord(os.path.join(build_dir, night["shard"]), examples[night["record"]],
                          compression)
  with open(os.path.join(build_dir, manifest_lib.MANIFEST_FILE), "w") as f:
    f.write(manifest_lib.dumps(manifest))
  return manifest
