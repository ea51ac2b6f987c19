"""Tests for eegmobile.storage: one code path for local paths, a real S3 server and fsspec."""

import os
import threading

import pytest

from eegmobile import storage
from tests import servers


@pytest.fixture(scope="module")
def s3():
  pytest.importorskip("boto3", reason="needs the aws extra")
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  with servers.s3_server() as server, servers.aws_env_restored():
    storage.configure_s3(**server.settings)
    yield server


@pytest.fixture(params=["local", "s3", "memory"])
def root(request, tmp_path):
  name = request.node.name.replace("[", "-").replace("]", "")
  if request.param == "local":
    return str(tmp_path / "root")
  if request.param == "memory":
    pytest.importorskip("fsspec")
    return f"memory://eegmobile-tests/{name}"
  return request.getfixturevalue("s3").url(name)


def test_files_round_trip_on_every_file_system(root):
  storage.make_dirs(storage.join(root, "a", "b"))
  storage.write_bytes(storage.join(root, "a", "b", "x.bin"), b"x" * 1000)
  storage.write_text(storage.join(root, "a", "y.json"), "{}")
  assert storage.read_bytes(storage.join(root, "a", "b", "x.bin")) == b"x" * 1000
  assert storage.read_text(storage.join(root, "a", "y.json")) == "{}"
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
  with storage.open_read(storage.join(root, "streamed.bin")) as stream:
    assert stream.read(2) == b"ab" and stream.read() == b"cdef"
  storage.delete_tree(root)
  assert not storage.has_files(root)


def test_a_missing_file_is_file_not_found_everywhere(root):
  storage.make_dirs(root)
  with pytest.raises(FileNotFoundError):
    storage.read_bytes(storage.join(root, "none.json"))
  assert storage.read_versioned(storage.join(root, "none.json")) == (None, None)
  assert storage.list_names(storage.join(root, "none")) == []


def test_a_writable_location_passes_the_probe_and_keeps_nothing(root):
  storage.check_writable(root)
  assert not storage.has_files(root)


def test_a_failed_write_leaves_nothing_and_the_old_file_as_it_was(root):
  path = storage.join(root, "kept.txt")
  storage.make_dirs(root)
  storage.write_text(path, "old")
  with pytest.raises(RuntimeError):
    with storage.atomic_path(path) as part:
      with open(part, "w") as f:
        f.write("half")
      raise RuntimeError("killed")
  assert storage.read_text(path) == "old"
  assert [storage.basename(p) for p in storage.find_files(root)] == ["kept.txt"]


def test_a_local_file_appears_under_its_name_only_when_complete(tmp_path):
  path = str(tmp_path / "model.keras")
  with storage.atomic_path(path, keep_extension=True) as part:
    assert part == str(tmp_path / "model.part.keras")  # writers that insist on an extension
    open(part, "w").write("x")
    assert not os.path.exists(path)
  assert open(path).read() == "x" and os.listdir(tmp_path) == ["model.keras"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_of_many_exclusive_creators_exactly_one_wins(where, tmp_path, request):
  root = str(tmp_path) if where == "local" else request.getfixturevalue("s3").url("excl")
  path = storage.join(root, "run.json")
  won = []

  def contend(i):
    won.append((i, storage.create_exclusive(path, f"{i}".encode())))

  threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  winners = [i for i, created in won if created]
  assert len(winners) == 1
  assert storage.read_text(path) == str(winners[0])
  assert storage.find_files(root) == [path]  # no temporary file left behind


def test_s3_conditional_writes_let_one_of_two_take_over(s3):
  path = s3.url("claims", "CLAIM")
  first = storage.put_versioned(path, b"a", if_absent=True)
  assert first and storage.put_versioned(path, b"b", if_absent=True) is None
  data, version = storage.read_versioned(path)
  assert (data, version) == (b"a", first)
  assert storage.put_versioned(path, b"c", if_version=version)  # the first contender wins
  assert storage.put_versioned(path, b"d", if_version=version) is None  # the second loses
  assert storage.read_bytes(path) == b"c"


def test_a_tree_goes_up_and_down_with_its_progress_files_last(s3, tmp_path):
  source, target = tmp_path / "a", tmp_path / "b"
  (source / "ckpt").mkdir(parents=True)
  (source / "ckpt" / "weights.h5").write_bytes(b"w" * 1000)
  (source / "history.json").write_text("{}")
  (source / "state.json").write_text("{}")
  (source / "CLAIM").write_text("{}")
  (source / "checkpoint.part.keras").write_text("being written")
  order = []
  real = storage._upload  # pylint: disable=protected-access

  def spy(local, path):
    order.append(storage.basename(path))
    real(local, path)

  storage._upload = spy  # pylint: disable=protected-access
  try:
    names = storage.upload_tree(str(source),
                                s3.url("tree"),
                                skip=("CLAIM",),
                                last=("history.json", "state.json"))
  finally:
    storage._upload = real  # pylint: disable=protected-access
  assert names == ["ckpt/weights.h5", "history.json", "state.json"]
  assert order[-2:] == ["history.json", "state.json"]
  assert storage.download_tree(s3.url("tree"), str(target),
                               only=("weights.h5",)) == ["ckpt/weights.h5"]
  assert (target / "ckpt" / "weights.h5").read_bytes() == b"w" * 1000


def test_a_missing_bucket_is_a_clear_error_naming_it(s3):
  with pytest.raises(storage.StorageError, match=r"s3://no-such-bucket-here/x: cannot write"):
    storage.check_writable("s3://no-such-bucket-here/x")


def test_an_endpoint_nobody_answers_is_a_clear_error(s3, monkeypatch):
  monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{servers.free_port()}")
  monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
  with pytest.raises(storage.StorageError, match="cannot write there.*AWS_ENDPOINT_URL"):
    storage.check_writable(s3.url("x"))


def test_the_build_flags_map_onto_the_standard_aws_variables(monkeypatch):
  for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID"):
    monkeypatch.delenv(name, raising=False)
  storage.configure_s3(endpoint_url="http://127.0.0.1:9", region_name="eu-1", access_key_id=None)
  assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
  assert os.environ["AWS_REGION"] == "eu-1" and "AWS_ACCESS_KEY_ID" not in os.environ
  assert storage.s3_settings()["AWS_REGION"] == "eu-1"
  with pytest.raises(ValueError, match="unknown S3 setting 'endpoint'"):
    storage.configure_s3(endpoint="x")


def test_a_scheme_without_its_file_system_says_what_to_install():
  try:
    import gcsfs  # pylint: disable=unused-import
    pytest.skip("gcsfs is installed here")
  except ImportError:
    pass
  with pytest.raises(storage.StorageError, match=r"gs://b/x: gs:// .*gcsfs"):
    storage.check_writable("gs://b/x")


def test_urls_and_paths_are_told_apart_and_joined_in_one_place():
  assert storage.is_url("s3://b/k") and not storage.is_url("/data/s3:x")
  assert storage.scheme("S3://b/k") == "s3" and storage.scheme("out/demo") == ""
  assert storage.join("s3://b/builds/", "demo",
                      "manifest.json") == "s3://b/builds/demo/manifest.json"
  assert storage.join("out", "demo") == os.path.join("out", "demo")
  assert storage.split_bucket("s3://b/builds/demo") == ("b", "builds/demo")
  assert storage.parent("s3://b/x/y") == "s3://b/x" and storage.basename("s3://b/x/y") == "y"
