"""Tests for tfrecords.preview and its entry point beam_pipelines.preview."""

import subprocess
import sys

import numpy as np

from tests import fakes
from tfrecords import preview


def test_examples_per_stage_and_png(tmp_path):
  build = str(tmp_path / "build")
  fakes.make_fake_build(build, subjects=("SC00", "SC01"), epochs_per_night=10, image_size=16)
  found = preview.examples_per_stage(build, per_stage=3)
  assert [len(v) for v in found.values()] == [3] * 5
  image, title = found[2][0]
  assert image.shape == (16, 16) and image.dtype == np.uint8 and title == "SC00 n1 e2"
  run = subprocess.run([sys.executable, "-m", "beam_pipelines.preview", "--build_dir", build],
                       capture_output=True,
                       text=True,
                       timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  assert (tmp_path / "build-preview.png").read_bytes()[:4] == b"\x89PNG"
  missing = subprocess.run(
      [sys.executable, "-m", "beam_pipelines.preview", "--build_dir",
       str(tmp_path / "none")],
      capture_output=True,
      text=True)
  assert missing.returncode == 2 and "no manifest" in missing.stderr
