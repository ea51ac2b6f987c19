"""Tests for bench/gpu_train_step.py: its command line, projection and table (no
benchmark is run here). Runs only where JAX is installed; the project's venv has none."""

import argparse
import os
import sys

import pytest

pytest.importorskip("jax")
# The bench runs Keras on JAX; a Keras already imported on another backend would refuse.
if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != "jax":
  pytest.skip("Keras is already imported on another backend", allow_module_level=True)
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))

import gpu_train_step  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_command_line():
  args = gpu_train_step.parse_args([])
  assert args.batch_sizes == [16, 64, 128] and args.precisions == ["float32", "bfloat16"]
  args = gpu_train_step.parse_args(
      ["--batch_sizes", "4,8", "--precisions", "bfloat16,float16", "--steps", "2"])
  assert (args.batch_sizes, args.precisions, args.steps) == ([4, 8], ["bfloat16", "float16"], 2)
  for bad in (["--batch_sizes", "0"], ["--precisions", "int8"], ["--steps",
                                                                 "0"], ["--image_size", "16"]):
    with pytest.raises(SystemExit):
      gpu_train_step.parse_args(bad)
  with pytest.raises(argparse.ArgumentTypeError):
    gpu_train_step._int_list("4,x")  # pylint: disable=protected-access


def test_projection_follows_the_papers_schedule():
  # 42,307 epochs / 20 subjects; a fold trains on 18 for 5 + 15 epochs, scores the
  # validation subject after each epoch and the test subject once.
  subject = 42_307 / 20
  rates = {1: 100.0, 2: 400.0, "inference": 1000.0}
  projection = gpu_train_step.project(rates)
  epoch1 = 18 * subject / 100 + subject / 1000
  epoch2 = 18 * subject / 400 + subject / 1000
  assert projection["epoch_phase1_s"] == pytest.approx(epoch1)
  assert projection["epoch_phase2_s"] == pytest.approx(epoch2)
  assert projection["fold_s"] == pytest.approx(5 * epoch1 + 15 * epoch2 + subject / 1000)
  assert projection["all_folds_s"] == pytest.approx(20 * projection["fold_s"])


def _row(batch_size):
  rates = {1: 100.0, 2: 400.0, "inference": 1000.0}
  return {
      "precision": "bfloat16",
      "batch_size": batch_size,
      "phase1": {
          "images_per_s": rates[1],
          "first_call_s": 30.0
      },
      "phase2": {
          "images_per_s": rates[2],
          "first_call_s": 20.0
      },
      "inference": {
          "images_per_s": rates["inference"],
          "first_call_s": 5.0
      },
      "projection": gpu_train_step.project(rates),
  }


def test_markdown_table_marks_the_papers_batch():
  lines = gpu_train_step.to_markdown({"rows": [_row(16), _row(128)]}).splitlines()
  assert len(lines) == 4
  assert lines[2].startswith("| bfloat16 | 16 | 100.0 | 400.0 | 1000.0 | 30/20/5 |")
  assert "| 128 (not the paper's) |" in lines[3]
