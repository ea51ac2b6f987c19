"""Every command-line entry point refuses an unknown or misspelt flag, naming the right one."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (module, a misspelt flag, the flag it should suggest)
TYPOS = [
    ("beam_pipelines.build", "--outptu_dir", "output_dir"),
    ("beam_pipelines.preview", "--buld_dir", "build_dir"),
    ("beam_pipelines.make_synthetic", "--output_dri", "output_dir"),
    ("trainers.cv", "--workdri", "workdir"),
    ("trainers.report", "--workdri", "workdir"),
    ("trainers.export", "--outptu_dir", "output_dir"),
    ("eegmobile.stage", "--modle", "model"),
]


@pytest.mark.parametrize("module,typo,meant", TYPOS)
def test_a_misspelt_flag_stops_the_command_and_names_the_right_one(module, typo, meant, tmp_path):
  run = subprocess.run([sys.executable, "-m", module, typo, "x"],
                       cwd=tmp_path,
                       env={
                           **os.environ, "PYTHONPATH": ROOT
                       },
                       capture_output=True,
                       text=True,
                       timeout=120)
  assert run.returncode != 0
  message = run.stderr.lower()
  assert typo.lstrip("-") in message and "did you mean" in message and meant in message
  assert os.listdir(tmp_path) == []  # nothing was done
