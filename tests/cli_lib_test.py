"""Tests for trainers.cli_lib's bug reports."""

import os

from trainers import cli_lib


def _error():
  try:
    raise RuntimeError("boom")
  except RuntimeError as e:
    return e


def test_a_bug_is_logged_in_the_workdir_with_its_traceback(tmp_path):
  path = cli_lib.report_bug(str(tmp_path / "runs" / "paper"), _error())
  assert path == str(tmp_path / "runs" / "paper" / cli_lib.BUG_LOG)
  text = open(path).read()
  assert "RuntimeError: boom" in text and "Traceback" in text
  assert "errors.log" in cli_lib.bug_message(_error(), path)


def test_a_store_workdirs_bug_is_logged_here_not_in_a_directory_named_after_the_url(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  path = cli_lib.report_bug("s3://bucket/runs/paper", _error())
  assert path == str(tmp_path / cli_lib.BUG_LOG)
  assert os.listdir(tmp_path) == [cli_lib.BUG_LOG]  # no ./s3:/bucket/runs/paper
