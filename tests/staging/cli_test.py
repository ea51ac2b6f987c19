"""Tests for the eegmobile.stage command, run as a subprocess on nights written at test time
and on the real Sleep-EDF excerpt (skipped when ../shared is absent)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import edf_files
from tests.staging import stage_lib_test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXCERPT = os.path.join(os.path.dirname(ROOT), "shared", "sleep-edf", "excerpt",
                       "SC4001E0-PSG.first300s.edf")
OUTPUTS = ("stages.tsv", "hypnogram.edf", "hypnogram.png", "sleep_stats.json")


def _stage(tmp_path, *args):
  return subprocess.run([sys.executable, "-m", "eegmobile.stage", *map(str, args)],
                        cwd=tmp_path,
                        env={
                            **os.environ, "PYTHONPATH": ROOT
                        },
                        capture_output=True,
                        text=True,
                        timeout=600)


def test_several_nights_stage_and_a_bad_one_is_named_and_skipped(export_dir, tmp_path):
  nights = tmp_path / "nights"
  nights.mkdir()
  stage_lib_test._night(nights / "a.edf", seconds=300)  # pylint: disable=protected-access
  stage_lib_test._night(nights / "b.edf", seconds=125)  # pylint: disable=protected-access
  edf_files.write_psg(str(nights / "bad.edf"), seconds=60, channels=("EEG C3",))
  run = _stage(tmp_path, nights, "--model", export_dir, "--runtime", "tensorflow", "--batch_size",
               "4")
  assert run.returncode == 1, run.stderr
  assert "bad.edf" in run.stderr and "no channel 'EEG Fpz-Cz'" in run.stderr
  assert "staged 2 of 3 night(s)" in run.stdout
  assert "trailing 5 s not staged" in run.stdout
  for record in ("a", "b"):
    for suffix in OUTPUTS:
      assert os.path.exists(tmp_path / "staged" / f"{record}.{suffix}")
  assert not any(name.startswith("bad.") for name in os.listdir(tmp_path / "staged"))


def test_all_staged_exits_0_and_unusable_arguments_exit_2(export_dir, tmp_path):
  stage_lib_test._night(tmp_path / "a.edf", seconds=60)  # pylint: disable=protected-access
  ok = _stage(tmp_path, "a.edf", "--model", os.path.join(export_dir, "images_float16.tflite"),
              "--runtime", "tensorflow", "--output_dir", "out")
  assert ok.returncode == 0, ok.stderr
  assert os.path.exists(tmp_path / "out" / "a.stages.tsv")
  (tmp_path / "junk.tflite").write_bytes(b"junk")
  for args, message in ((("a.edf", "--model", "junk.tflite"),
                         "not an EEGMobile export"), (("a.edf",), "--model is required"),
                        (("a.edf", "a.edf", "--model", export_dir, "--hypnogram", "a.edf"),
                         "goes with one night"), (("a.edf", "--model", export_dir, "--hypnogram",
                                                   "a.edf", "--hypnogram_dir", "."), "not both"),
                        (("a.edf", "--model", export_dir, "--hypnogram_dir", "nowhere"),
                         "--hypnogram_dir nowhere: not a directory"),
                        (("a.edf", "--model", export_dir, "--runtime", "litert", "--precision",
                          "bf16"), "needs runtime openvino")):
    run = _stage(tmp_path, *args)
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_a_hypnogram_directory_scores_each_night_and_pools_them(export_dir, tmp_path):
  nights = tmp_path / "nights"
  nights.mkdir()
  stage_lib_test._night(nights / "SC4001E0-PSG.edf", seconds=300)  # pylint: disable=protected-access
  stage_lib_test._night(nights / "b.edf", seconds=150)  # pylint: disable=protected-access
  stage_lib_test._night(nights / "orphan.edf", seconds=60)  # pylint: disable=protected-access
  edf_files.write_hypnogram(nights / "SC4001EC-Hypnogram.edf", [(0, 120, "Sleep stage W"),
                                                                (120, 180, "Sleep stage 2")])
  edf_files.write_hypnogram(nights / "b-Hypnogram.edf", [(0, 150, "Sleep stage R")])
  run = _stage(tmp_path, nights, "--model", export_dir, "--runtime", "tensorflow",
               "--hypnogram_dir", nights)
  assert run.returncode == 1, run.stderr  # a night without a hypnogram is not passed over
  assert "orphan.edf: no hypnogram for it" in run.stderr
  assert "staged 3 of 3 night(s)" in run.stdout
  assert "pooled over 2 scored night(s), 15 epochs" in run.stdout
  pooled = json.loads((tmp_path / "staged" / "metrics_pooled.json").read_text())
  per_night = {
      r: json.loads((tmp_path / "staged" / f"{r}.metrics.json").read_text())
      for r in ("SC4001E0-PSG", "b")
  }
  assert [n["record"] for n in pooled["nights"]] == ["SC4001E0-PSG", "b"]
  assert pooled["nights"][0]["hypnogram"].endswith("SC4001EC-Hypnogram.edf")
  assert pooled["num_epochs"] == 15 and pooled["confusion"] == np.add(
      per_night["SC4001E0-PSG"]["confusion"], per_night["b"]["confusion"]).tolist()
  assert pooled["acc"] == pytest.approx(
      (per_night["SC4001E0-PSG"]["acc"] * 10 + per_night["b"]["acc"] * 5) / 15)
  assert (tmp_path / "staged" / "confusion_pooled.png").read_bytes()[:4] == b"\x89PNG"
  assert not (tmp_path / "staged" / "orphan.metrics.json").exists()
  assert (tmp_path / "staged" / "orphan.stages.tsv").exists()


@pytest.mark.skipif(not os.path.exists(EXCERPT), reason="no Sleep-EDF excerpt in ../shared")
def test_the_real_excerpt_stages(export_dir, tmp_path):
  run = _stage(tmp_path, EXCERPT, "--model", export_dir)
  assert run.returncode == 0, run.stderr
  tsv = (tmp_path / "staged" / "SC4001E0-PSG.first300s.stages.tsv").read_text()
  assert "10 epochs" in run.stdout and len(tsv.splitlines()) > 10
  assert os.path.getsize(tmp_path / "staged" / "SC4001E0-PSG.first300s.hypnogram.edf") > 256
