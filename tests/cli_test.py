"""Tests for eegmobile.cli: bug reports and flags made from config dataclasses."""

import dataclasses
import os
from typing import Optional

from absl import flags
import pytest

from eegmobile import cli


def _error():
  try:
    raise RuntimeError("boom")
  except RuntimeError as e:
    return e


def test_a_bug_is_logged_where_asked_with_its_traceback(tmp_path):
  wanted = str(tmp_path / "runs" / "paper" / cli.BUG_LOG)
  path = cli.report_bug(_error(), wanted)
  assert path == wanted
  text = open(path).read()
  assert "RuntimeError: boom" in text and "Traceback" in text
  assert "errors.log" in cli.bug_message(_error(), path)


def test_a_store_urls_bug_is_logged_here_not_in_a_directory_named_after_the_url(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  path = cli.report_bug(_error(), "s3://bucket/runs/paper/errors.log")
  assert path == str(tmp_path / cli.BUG_LOG)
  assert os.listdir(tmp_path) == [cli.BUG_LOG]  # no ./s3:/bucket/runs/paper


@dataclasses.dataclass(frozen=True)
class _Config:
  """A config.

  Attributes:
    size: how big, in
      pixels.
    rate, scale: two numbers.
    name: a name.
    mode: how.
    limit: at most this many (None: no limit).
    weights: where from.
    on: whether.
  """
  size: int = 224
  rate: float = 0.5
  scale: float = 2.0
  name: str = "x"
  mode: str = dataclasses.field(default="a", metadata={"choices": ("a", "b")})
  limit: Optional[int] = None
  weights: Optional[str] = "imagenet"
  on: bool = False


def _define(argv):
  values = flags.FlagValues()
  holders = cli.define_flags(_Config, [f.name for f in dataclasses.fields(_Config)],
                             rename={"size": "image_size"},
                             flag_values=values)
  values(["prog", *argv])
  return values, holders


def test_flags_take_name_type_default_and_help_from_the_dataclass():
  values, holders = _define([])
  assert cli.from_flags(_Config, holders) == _Config()  # every default once, in the config
  assert values["image_size"].help == "how big, in pixels."
  assert values["scale"].help == "two numbers."
  assert values["mode"].flag_type() == "string enum" and values["on"].flag_type() == "bool"


def test_flag_values_become_the_config_fields_types():
  _, holders = _define([
      "--image_size", "96", "--rate", "0.25", "--mode", "b", "--limit", "7", "--weights", "none",
      "--on"
  ])
  assert cli.from_flags(_Config, holders) == _Config(size=96,
                                                     rate=0.25,
                                                     mode="b",
                                                     limit=7,
                                                     weights=None,
                                                     on=True)


def test_a_bad_value_names_the_flag():
  with pytest.raises(flags.IllegalFlagValueError):
    _define(["--mode", "c"])
  _, holders = _define(["--limit", "many"])
  with pytest.raises(ValueError, match="--limit must be an int or 'none'"):
    cli.from_flags(_Config, holders)
