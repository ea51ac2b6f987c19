"""Tests for trainers.workdir: which workdirs are accepted, and an s3:// workdir's scratch
mirror. (Its transfers are `eegmobile.storage`'s: tests/storage_test.py.)"""

import os

import pytest

from trainers import workdir


def test_only_local_paths_and_s3_are_workdirs():
  workdir.check("runs/paper")
  workdir.check("s3://bucket/runs/paper")
  with pytest.raises(workdir.WorkdirError, match="gs://b/runs: only local paths and s3://"):
    workdir.check("gs://b/runs")


def test_the_mirror_of_a_url_is_stable_and_distinct(tmp_path):
  a = workdir.mirror("s3://b/runs/paper", str(tmp_path))
  assert a == workdir.mirror("s3://b/runs/paper/", str(tmp_path))
  assert a != workdir.mirror("s3://b/runs/other", str(tmp_path))


def test_a_scratch_is_removed_by_its_own_process_and_the_mirror_when_empty(tmp_path):
  url = "s3://b/runs/paper"
  mine, other = workdir.scratch(url, str(tmp_path)), workdir.scratch(url, str(tmp_path))
  (tmp_path / "elsewhere").mkdir()
  with pytest.raises(ValueError, match="elsewhere: not a scratch directory of this process"):
    workdir.remove_scratch(str(tmp_path / "elsewhere"))
  os.makedirs(os.path.join(mine, "fold_00"))
  open(os.path.join(mine, "fold_00", "checkpoint.keras"), "w").close()
  workdir.remove_scratch(mine)
  assert not os.path.exists(mine) and os.path.isdir(other)  # the mirror still holds `other`
  workdir.remove_scratch(other + os.sep)
  assert not os.path.exists(workdir.mirror(url, str(tmp_path)))
  assert (tmp_path / "elsewhere").is_dir()
