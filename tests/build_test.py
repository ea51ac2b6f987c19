"""Tests for beam_pipelines.build, the entry point: flags, refusals, quiet output, bugs."""

import os
import subprocess
import sys

import pytest

from beam_pipelines import pipeline
from eegmobile.demo import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_NOISE = ("apitools", "semi_persistent_directory", "Discarding unparseable")


def _cli(*args, cwd):
  env = {**os.environ, "PYTHONPATH": ROOT}
  return subprocess.run([sys.executable, "-m", "beam_pipelines.build", *args],
                        cwd=cwd,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=300)


def test_misspelt_flags_are_refused_before_any_work(tmp_path):
  run = _cli("--data-dir", "X", "--subest", "sleep-edf-78", cwd=tmp_path)
  assert run.returncode == 2
  assert "--data-dir (did you mean --data_dir?)" in run.stderr
  assert "--subest (did you mean --subset?)" in run.stderr
  assert "sleep-edf-78 (not a flag)" in run.stderr
  assert os.listdir(tmp_path) == []  # no demo set built, nothing written


@pytest.mark.parametrize("flag", ["--output_dir", "--data_dir"])
def test_a_url_without_its_file_system_is_refused_not_made_a_local_folder(tmp_path, flag):
  try:
    import gcsfs  # pylint: disable=unused-import
    pytest.skip("gcsfs is installed here")
  except ImportError:
    pass
  run = _cli(flag, "gs://bucket/sleep", cwd=tmp_path)
  assert run.returncode == 2, run.stderr[-2000:]
  assert "gs://bucket/sleep" in run.stderr and "pip install gcsfs" in run.stderr
  assert "gs:" not in os.listdir(tmp_path)  # never a local folder named "gs:"
  if flag == "--output_dir":
    assert os.listdir(tmp_path) == []  # refused before the demo recordings were made


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("recordings"))
  synthetic.make_demo_dataset(directory, subjects=(0,), nights=(1,), hours=1.0)
  return directory


def test_a_newcomer_sees_our_progress_not_beam_worker_warnings(recordings, tmp_path):
  run = _cli("--runner",
             "DirectRunner",
             "--data_dir",
             recordings,
             "--output_dir",
             "b",
             cwd=tmp_path)
  assert run.returncode == 0, run.stderr[-3000:]
  # Each night's line comes from the pipeline's worker, as it finishes the night.
  assert "built SC4001E0: 120 epochs in" in run.stdout and "1 nights, 1 subjects" in run.stdout
  assert not [noise for noise in BEAM_NOISE if noise in run.stderr + run.stdout]
  log = (tmp_path / "b" / pipeline.LOG_FILE).read_text()
  assert [noise for noise in BEAM_NOISE if noise in log]  # it went to the log instead
  assert f"Beam workers' output: b/{pipeline.LOG_FILE}" in run.stdout

  verbose = _cli("--runner",
                 "DirectRunner",
                 "--data_dir",
                 recordings,
                 "--output_dir",
                 "v",
                 "--verbose",
                 cwd=tmp_path)
  assert verbose.returncode == 0
  assert [noise for noise in BEAM_NOISE if noise in verbose.stderr]


def test_an_unexpected_error_in_the_driver_is_reported_as_a_bug_with_its_traceback(
    recordings, tmp_path):
  # In its own process: this module must not define the build's flags in pytest's process,
  # where other tests import other entry points (e.g. trainers.cv) with flags of the same name.
  output = str(tmp_path / "out")
  script = ("import sys\n"
            "from absl import app\n"
            "from beam_pipelines import build, pipeline\n"
            "def broken(*args, **kwargs):\n"
            "  raise ZeroDivisionError('deliberate')\n"
            "pipeline.run = broken\n"
            "app.run(build.main, flags_parser=build._parse_flags)\n")
  run = subprocess.run(
      [sys.executable, "-c", script, "--data_dir", recordings, "--output_dir", output],
      cwd=tmp_path,
      env={
          **os.environ, "PYTHONPATH": ROOT
      },
      capture_output=True,
      text=True,
      timeout=300)
  assert run.returncode == 3, run.stderr[-3000:]
  assert "This is a bug, not a problem with your input" in run.stderr
  assert output + ".error.log" in run.stderr
  log = open(output + ".error.log").read()
  assert "Traceback" in log and "ZeroDivisionError: deliberate" in log and "broken" in log
  assert not os.path.exists(output)
