"""Tests for beam_pipelines.storage: one code path for local paths and a real S3 server."""

import os

import pytest

from beam_pipelines import storage
from tests import servers

pytest.importorskip("boto3", reason="needs the aws extra")
pytest.importorskip("moto", reason="needs moto[server] (test extra)")


@pytest.fixture(scope="module")
def s3():
  with servers.s3_server() as server:
    from apache_beam.options import pipeline_options as po
    storage.configure(po.PipelineOptions(server.beam_args))
    yield server


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
  if request.param == "local":
    return str(tmp_path / "root")
  server = request.getfixturevalue("s3")
  return server.url(request.node.name.replace("[", "-").replace("]", ""))


def test_files_round_trip_on_every_file_system(root):
  storage.make_dirs(storage.join(root, "a", "b"))
  storage.write_bytes(storage.join(root, "a", "b", "x.bin"), b"x" * 1000)
  storage.write_bytes(storage.join(root, "a", "y.json"), b"{}")
  assert storage.read_bytes(storage.join(root, "a", "b", "x.bin")) == b"x" * 1000
  assert storage.list_names(storage.join(root, "a")) == ["y.json"]  # direct children only
  assert [p[len(root):] for p in storage.find_files(root)] == ["/a/b/x.bin", "/a/y.json"]
  assert storage.has_files(root) and not storage.has_files(storage.join(root, "none"))
  storage.rename(storage.join(root, "a", "y.json"), storage.join(root, "z.json"))
  assert storage.exists(storage.join(root, "z.json"))
  assert not storage.exists(storage.join(root, "a", "y.json"))
  with storage.local_copy(storage.join(root, "a", "b", "x.bin")) as local:
    assert os.path.isfile(local) and open(local, "rb").read() == b"x" * 1000
    assert os.path.basename(local) == "x.bin"  # error messages name the original file
  with storage.create(storage.join(root, "streamed.bin")) as stream:
    stream.write(b"abc")
    stream.write(b"def")
  assert storage.read_bytes(storage.join(root, "streamed.bin")) == b"abcdef"
  storage.delete_tree(root)
  assert not storage.has_files(root)


def test_a_writable_location_passes_the_probe_and_keeps_nothing(root):
  storage.check_writable(root)
  assert not storage.has_files(root)


def test_a_missing_bucket_is_a_clear_error_naming_it(s3):
  with pytest.raises(storage.StorageError, match=r"s3://no-such-bucket-here/x: cannot write"):
    storage.check_writable("s3://no-such-bucket-here/x")


def test_an_endpoint_nobody_answers_is_a_clear_error(s3):
  from apache_beam.options import pipeline_options as po
  dead = f"http://127.0.0.1:{servers.free_port()}"
  storage.configure(po.PipelineOptions([*s3.beam_args, "--s3_endpoint_url", dead]))
  try:
    with pytest.raises(storage.StorageError, match="cannot write there.*--s3_endpoint_url"):
      storage.check_writable(s3.url("x"))
  finally:
    storage.configure(po.PipelineOptions(s3.beam_args))


def test_a_scheme_without_its_file_system_says_what_to_install():
  try:
    import google.cloud.storage  # pylint: disable=unused-import
    pytest.skip("the gcp extra is installed here")
  except ImportError:
    pass
  with pytest.raises(storage.StorageError, match=r"gs://b/x: gs:// .*eegmobile\[gcp\]"):
    storage.check_writable("gs://b/x")
