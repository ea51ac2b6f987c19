"""Tests for tfrecords.manifest: shard names and the manifest a build writes (no Beam)."""

import sys

from eegmobile import config as config_lib
from tfrecords import manifest as manifest_lib

CONFIG = config_lib.BuildConfig()


def test_make_manifest_names_shards_per_subject_in_night_order():

  def night(subject, n, record):
    return {
        "record": record,
        "subject": subject,
        "night": n,
        "num_examples": n,
        "class_counts": {
            "W": n
        },
        "dropped": {
            "wake trimmed": 1
        }
    }

  manifest = manifest_lib.make_manifest(
      CONFIG,
      [night("SC01", 2, "SC4012E0"),
       night("SC00", 1, "SC4001E0"),
       night("SC01", 1, "SC4011E0")], [],
      demo=False)
  assert manifest["subjects"]["SC01"]["shards"] == [
      "sleep-edf-20-SC01.tfrecord-00000-of-00002", "sleep-edf-20-SC01.tfrecord-00001-of-00002"
  ]
  assert [r["record"] for r in manifest["recordings"]] == ["SC4001E0", "SC4011E0", "SC4012E0"]
  assert manifest["totals"] == {
      "num_examples": 4,
      "class_counts": {
          "W": 4
      },
      "dropped": {
          "wake trimmed": 3
      }
  }
  assert manifest["complete"]


def test_reading_or_faking_a_build_never_imports_beam(tmp_path):
  import subprocess
  code = ("import sys; from tests import fakes; from tfrecords import manifest; "
          f"fakes.make_fake_build({str(tmp_path)!r}); manifest.load_manifest({str(tmp_path)!r}); "
          "print('apache_beam' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_a_build_says_its_image_version_and_an_older_one_reads_as_version_1():
  manifest = manifest_lib.make_manifest(CONFIG, [], [], demo=True)
  assert manifest_lib.image_version(manifest) == config_lib.IMAGE_VERSION == 2
  assert manifest["config"]["spectrogram"]["dynamic_range_db"] == 100.0
  older = dict(manifest, image={k: v for k, v in manifest["image"].items() if k != "version"})
  del older["config"]["spectrogram"]["dynamic_range_db"]
  assert manifest_lib.image_version(older) == 1
  # Its config reads as it was built: without the colour-scale floor, not with today's default.
  assert config_lib.BuildConfig.from_dict(older["config"]).spectrogram.dynamic_range_db is None
