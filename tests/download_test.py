"""Tests for eegmobile.download against a loopback HTTP server (bound to 127.0.0.1 only)."""

import dataclasses
import functools
import hashlib
import http.server
import os
import threading

import pytest

from eegmobile import download

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")
PSG = "sleep-cassette/SC4001E0-PSG.edf"
HYPNOGRAM = "sleep-cassette/SC4001EC-Hypnogram.edf"


@dataclasses.dataclass
class _Behaviour:
  """How the server misbehaves, and what it sent: (path, first byte, bytes sent)."""
  ignore_range: bool = False
  wrong_range: bool = False  # answers a range request with 206 from byte 0
  cut_first_response_at: int = 0  # sends this many bytes of the first response, then hangs up
  sent: list = dataclasses.field(default_factory=list)

  def file_requests(self):
    return [s for s in self.sent if s[0] != "/" + download.CHECKSUMS]


class _RangeHandler(http.server.BaseHTTPRequestHandler):
  """Serves files from `root`, honouring 'Range: bytes=N-'."""

  def __init__(self, *args, root, behaviour, **kwargs):
    self.root, self.behaviour = root, behaviour
    super().__init__(*args, **kwargs)

  def log_message(self, *args):
    pass

  def do_GET(self):
    path = os.path.join(self.root, self.path.lstrip("/"))
    if not os.path.isfile(path):
      self.send_error(404)
      return
    data = open(path, "rb").read()
    start = 0
    header = self.headers.get("Range")
    if header and not self.behaviour.ignore_range:
      start = 0 if self.behaviour.wrong_range else int(header.split("=")[1].rstrip("-"))
      if start >= len(data):
        self.send_error(416)
        return
      self.send_response(206)
      self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    else:
      self.send_response(200)
    self.send_header("Content-Length", str(len(data) - start))
    self.end_headers()
    body = data[start:]
    if self.behaviour.cut_first_response_at and not self.behaviour.file_requests():
      body = body[:self.behaviour.cut_first_response_at]
    # Recorded before sending: the client may finish reading before this thread goes on.
    self.behaviour.sent.append((self.path, start, len(body)))
    self.wfile.write(body)


@pytest.fixture()
def server(tmp_path):
  """(base URL, served root, {relative path: bytes}, behaviour); shut down afterwards."""
  root = tmp_path / "physionet"
  files = {
      PSG: os.urandom(300_000),
      HYPNOGRAM: os.urandom(5_000),
      "sleep-cassette/SC4201E0-PSG.edf": os.urandom(100),  # sleep-edf-78 only
      "sleep-telemetry/ST7011J0-PSG.edf": os.urandom(100),  # telemetry
      "RECORDS": b"SC4001E0\n",
  }
  lines = []
  for name, data in files.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    lines.append(f"{hashlib.sha256(data).hexdigest()} {name}")
  (root / download.CHECKSUMS).write_text("\n".join(lines) + "\n")
  behaviour = _Behaviour()
  handler = functools.partial(_RangeHandler, root=str(root), behaviour=behaviour)
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  assert httpd.server_address[0] == "127.0.0.1"
  thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, files, behaviour
  finally:
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _get(url, cache, subset="sleep-edf-20"):
  return download.download_subset(subset, str(cache), base_url=url)


def test_downloads_and_verifies_exactly_the_subset(server, tmp_path):
  url, _, files, behaviour = server
  cache = tmp_path / "cache"
  paths = _get(url, cache)
  assert [os.path.relpath(p, cache) for p in paths] == [PSG, HYPNOGRAM]
  for p in paths:
    assert open(p, "rb").read() == files[os.path.relpath(p, cache)]
  assert behaviour.file_requests() == [("/" + PSG, 0, 300_000), ("/" + HYPNOGRAM, 0, 5_000)]
  assert (cache / download.CHECKSUMS).exists()
  assert not [f for f in os.listdir(cache / "sleep-cassette") if f.endswith(".part")]
  behaviour.sent.clear()
  assert _get(url, cache) == paths  # present and verified: nothing is fetched again
  assert behaviour.file_requests() == []
  assert [os.path.relpath(p, cache) for p in _get(url, cache, "sleep-edf-st")
         ] == ["sleep-telemetry/ST7011J0-PSG.edf"]


def test_resumes_a_partial_download(server, tmp_path):
  url, _, files, behaviour = server
  part = tmp_path / "cache" / (PSG + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(files[PSG][:120_000])
  _get(url, tmp_path / "cache")
  assert (tmp_path / "cache" / PSG).read_bytes() == files[PSG]
  assert ("/" + PSG, 120_000, 180_000) in behaviour.sent  # only the rest was served
  assert not part.exists()


def test_a_connection_lost_mid_file_is_resumed(server, tmp_path):
  url, _, files, behaviour = server
  behaviour.cut_first_response_at = 70_000
  _get(url, tmp_path / "cache")
  assert (tmp_path / "cache" / PSG).read_bytes() == files[PSG]
  assert behaviour.file_requests()[:2] == [("/" + PSG, 0, 70_000), ("/" + PSG, 70_000, 230_000)]


@pytest.mark.parametrize("misbehaviour", ["ignore_range", "wrong_range"])
def test_a_server_that_does_not_resume_gets_a_fresh_download(server, tmp_path, misbehaviour):
  url, _, files, behaviour = server
  setattr(behaviour, misbehaviour, True)
  part = tmp_path / "cache" / (PSG + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(files[PSG][:1000])
  _get(url, tmp_path / "cache")
  assert (tmp_path / "cache" / PSG).read_bytes() == files[PSG]
  assert behaviour.file_requests()[0] == ("/" + PSG, 0, 300_000)


def test_a_complete_part_file_is_verified_without_downloading(server, tmp_path):
  url, _, files, behaviour = server
  part = tmp_path / "cache" / (PSG + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(files[PSG])
  _get(url, tmp_path / "cache")
  assert (tmp_path / "cache" / PSG).read_bytes() == files[PSG]
  assert ("/" + PSG, 0, 300_000) not in behaviour.sent  # the server answered 416


def test_a_corrupt_part_is_discarded_and_downloaded_again(server, tmp_path):
  url, _, files, behaviour = server
  part = tmp_path / "cache" / (PSG + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(b"x" * 1000)  # not the file's first bytes: resuming gives a wrong sha256
  _get(url, tmp_path / "cache")
  assert (tmp_path / "cache" / PSG).read_bytes() == files[PSG]
  assert [s for s in behaviour.sent if s[0] == "/" + PSG] == [("/" + PSG, 1000, 299_000),
                                                              ("/" + PSG, 0, 300_000)]


def test_a_present_file_with_a_wrong_checksum_is_replaced(server, tmp_path):
  url, _, files, _ = server
  path = tmp_path / "cache" / HYPNOGRAM
  path.parent.mkdir(parents=True)
  path.write_bytes(b"damaged")
  _get(url, tmp_path / "cache")
  assert path.read_bytes() == files[HYPNOGRAM]


def test_a_corrupt_file_is_an_error_naming_it_after_one_retry(server, tmp_path):
  url, root, _, behaviour = server
  (root / HYPNOGRAM).write_bytes(b"tampered")
  with pytest.raises(download.DownloadError,
                     match="SC4001EC-Hypnogram.edf: sha256 does not match .* after two"):
    _get(url, tmp_path / "cache")
  assert [s for s in behaviour.sent if s[0] == "/" + HYPNOGRAM] == [("/" + HYPNOGRAM, 0, 8)] * 2
  hypnogram = tmp_path / "cache" / HYPNOGRAM
  assert not hypnogram.exists() and not os.path.exists(str(hypnogram) + ".part")


def test_a_missing_file_is_an_error_naming_it(server, tmp_path):
  url, root, _, _ = server
  os.remove(root / PSG)
  with pytest.raises(download.DownloadError, match="SC4001E0-PSG.edf: cannot download .*404"):
    _get(url, tmp_path / "cache")


def test_unreachable_server_names_the_url_and_the_way_out(tmp_path):
  httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
  url = f"http://127.0.0.1:{httpd.server_address[1]}/"
  httpd.server_close()  # nothing listens there any more
  cache = tmp_path / "cache"
  with pytest.raises(download.DownloadError) as error:
    _get(url, cache)
  message = str(error.value)
  assert message.startswith(url + download.CHECKSUMS + ": cannot download")
  assert str(cache) in message and "by hand" in message


def test_offline_files_placed_by_hand_are_verified_and_used(server, tmp_path):
  url, root, files, _ = server
  cache = tmp_path / "cache"
  for name in (download.CHECKSUMS, PSG, HYPNOGRAM):
    (cache / name).parent.mkdir(parents=True, exist_ok=True)
    (cache / name).write_bytes((root / name).read_bytes())
  paths = _get("http://127.0.0.1:9/", cache)  # port 9 (discard): nothing listens
  assert [open(p, "rb").read() for p in paths] == [files[PSG], files[HYPNOGRAM]]


def test_paths_outside_the_recording_folders_are_never_selected():
  digest = "0" * 64
  listing = "\n".join(f"{digest} {p}" for p in [
      "SC4001E0-PSG.edf", "../SC4001E0-PSG.edf", "sleep-cassette/../../SC4001E0-PSG.edf",
      "sleep-cassette/SC4001E0-PSG.edf", "sleep-cassette/SC4001E0-PSG.edf.bak", "garbage line"
  ])
  assert download.subset_files(download.parse_checksums(listing), "sleep-edf-20") == {
      "sleep-cassette/SC4001E0-PSG.edf": digest
  }


def test_subset_selection_from_physionets_real_checksum_list():
  path = os.path.join(SHARED, "SHA256SUMS.txt")
  if not os.path.exists(path):
    pytest.skip("../shared/sleep-edf not present")
  checksums = download.parse_checksums(open(path).read())
  for subset, nights in (("sleep-edf-20", 39), ("sleep-edf-78", 153)):
    files = download.subset_files(checksums, subset)
    assert sum(f.endswith("-PSG.edf") for f in files) == nights
    assert sum(f.endswith("-Hypnogram.edf") for f in files) == nights
    assert all(f.startswith("sleep-cassette/") for f in files)
  edf20 = download.subset_files(checksums, "sleep-edf-20")
  assert "sleep-cassette/SC4001E0-PSG.edf" in edf20
  assert not any("SC4132" in f for f in edf20)  # never recorded
  # The real hypnograms here are exactly the ones PhysioNet lists for sleep-edf-20.
  real = sorted(os.listdir(os.path.join(SHARED, "sleep-cassette")))
  assert [f for f in edf20 if f.endswith("-Hypnogram.edf")] == ["sleep-cassette/" + n for n in real]
  for name in real:
    data = open(os.path.join(SHARED, "sleep-cassette", name), "rb").read()
    assert checksums["sleep-cassette/" + name] == hashlib.sha256(data).hexdigest()
