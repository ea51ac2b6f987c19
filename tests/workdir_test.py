"""Tests for trainers.workdir: local and s3:// workdirs, against a local moto server."""

import os

import pytest

from tests import servers
from trainers import workdir


@pytest.fixture(name="s3")
def _s3(monkeypatch):
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  with servers.s3_server() as server:
    for name, value in server.tensorflow_env.items():
      monkeypatch.setenv(name, value)
    yield server


def test_only_local_paths_and_s3_are_workdirs():
  workdir.check("runs/paper")
  workdir.check("s3://bucket/runs/paper")
  with pytest.raises(workdir.WorkdirError, match="gs://b/runs: only local paths and s3://"):
    workdir.check("gs://b/runs")


def test_a_run_record_is_created_once_of_two_contenders(s3):
  url = s3.url("runs", "run.json")
  assert workdir.create_exclusive(url, '{"a": 1}')
  assert not workdir.create_exclusive(url, '{"a": 2}')
  assert workdir.read_text(url) == '{"a": 1}'
  assert workdir.read_text(s3.url("runs", "none.json")) is None


def test_a_fold_round_trips_through_the_store_without_its_claim(s3, tmp_path):
  source, target = tmp_path / "a", tmp_path / "b"
  (source / "ckpt").mkdir(parents=True)
  (source / "ckpt" / "weights.h5").write_bytes(b"w" * 1000)
  (source / "history.json").write_text("{}")
  (source / "CLAIM").write_text("{}")
  url = s3.url("runs", "fold_00")
  assert workdir.upload(str(source), url, skip=("CLAIM",)) == ["ckpt/weights.h5", "history.json"]
  assert workdir.download(url, str(target)) == ["ckpt/weights.h5", "history.json"]
  assert (target / "ckpt" / "weights.h5").read_bytes() == b"w" * 1000
  assert sorted(os.listdir(target)) == ["ckpt", "history.json"]


def test_a_missing_bucket_is_one_line_naming_the_url(s3):
  url = "s3://no-such-bucket/runs/run.json"
  with pytest.raises(workdir.WorkdirError,
                     match=r"s3://no-such-bucket/runs/run.json: cannot write"):
    workdir.create_exclusive(url, "{}")


def test_an_unreachable_endpoint_is_one_line_naming_the_url(monkeypatch):
  pytest.importorskip("boto3")
  monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{servers.free_port()}")
  monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
  monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
  monkeypatch.setenv("AWS_REGION", "us-east-1")
  monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
  with pytest.raises(workdir.WorkdirError, match=r"s3://b/runs/run.json: cannot read there"):
    workdir.read_text("s3://b/runs/run.json")


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


def test_progress_files_are_uploaded_after_the_checkpoint(s3, tmp_path, monkeypatch):
  for name in ("state.json", "checkpoint.keras", "history.json", "a.txt"):
    (tmp_path / name).write_text(name)
  order = []
  real = workdir.client

  def recording():
    s3_client = real()
    upload_file = s3_client.upload_file
    s3_client.upload_file = lambda path, *a, **k: (order.append(os.path.basename(path)),
                                                   upload_file(path, *a, **k))
    return s3_client

  monkeypatch.setattr(workdir, "client", recording)
  workdir.upload(str(tmp_path), s3.url("f"), last=("history.json", "state.json"))
  assert order == ["a.txt", "checkpoint.keras", "history.json", "state.json"]
