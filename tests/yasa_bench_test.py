"""Tests of bench/yasa_night.py that need no YASA: arguments and YASA missing.

The script runs in YASA's own environment; here it runs with eegmobile's Python, where
YASA is not installed (the tests skip if it is).
"""

import importlib.util
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                      "yasa_night.py")


def _run(*args):
  return subprocess.run([sys.executable, SCRIPT, *args],
                        capture_output=True,
                        text=True,
                        timeout=120,
                        check=False)


def test_missing_arguments_are_refused():
  result = _run("--edf", "night.edf")
  assert result.returncode == 2
  assert "--channel" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("yasa") is not None, reason="YASA installed")
def test_yasa_missing_is_a_clear_error():
  result = _run("--edf", "night.edf", "--channel", "EEG Fpz-Cz")
  assert result.returncode == 2
  assert "YASA is missing" in result.stderr
  assert "pip install yasa" in result.stderr
  assert "Traceback" not in result.stderr
