"""Tests for eegmobile.download against a loopback HTTP server (127.0.0.1 only)."""

import functools
import hashlib
import http.server
import os
import threading

import pytest

from eegmobile import download

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
  """Serves files, honouring 'Range: bytes=N-' and recording what it sent."""
  sent = []
  ignore_range = False

  def log_message(self, *args):
    pass

  def do_GET(self):
    path = self.translate_path(self.path)
    if not os.path.isfile(path):
      self.send_error(404)
      return
    data = open(path, "rb").read()
    start = 0
    header = self.headers.get("Range")
    if header and not self.ignore_range:
      start = int(header.split("=")[1].rstrip("-"))
      self.send_response(206)
      self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    else:
      self.send_response(200)
    self.send_header("Content-Length", str(len(data) - start))
    self.end_headers()
    # Recorded before sending: the client may finish reading before this thread runs on.
    type(self).sent.append((self.path, len(data) - start))
    self.wfile.write(data[start:])


@pytest.fixture()
def server(tmp_path):
  root = tmp_path / "physionet"
  (root / "sleep-cassette").mkdir(parents=True)
  files = {
      "sleep-cassette/SC4001E0-PSG.edf": os.urandom(300_000),
      "sleep-cassette/SC4001EC-Hypnogram.edf": os.urandom(5_000),
      "sleep-cassette/SC4201E0-PSG.edf": os.urandom(100)
  }  # not in sleep-edf-20
  lines = []
  for name, data in files.items():
    (root / name).write_bytes(data)
    lines.append(f"{hashlib.sha256(data).hexdigest()} {name}")
  (root / download.CHECKSUMS).write_text("\n".join(lines) + "\n")
  _RangeHandler.sent, _RangeHandler.ignore_range = [], False
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(_RangeHandler, directory=str(root)))
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, files
  httpd.shutdown()
  httpd.server_close()


def test_downloads_and_verifies_the_subset(server, tmp_path):
  url, _, files = server
  cache = tmp_path / "cache"
  paths = download.download_subset("sleep-edf-20", str(cache), base_url=url)
  assert sorted(os.path.relpath(p, cache) for p in paths) == [
      "sleep-cassette/SC4001E0-PSG.edf", "sleep-cassette/SC4001EC-Hypnogram.edf"
  ]
  for p in paths:
    assert open(p, "rb").read() == files[os.path.relpath(p, cache)]
  _RangeHandler.sent.clear()
  download.download_subset("sleep-edf-20", str(cache), base_url=url)  # verified, not refetched
  assert [s for s in _RangeHandler.sent if s[0] != "/" + download.CHECKSUMS] == []


def test_resumes_a_partial_download(server, tmp_path):
  url, _, files = server
  name = "sleep-cassette/SC4001E0-PSG.edf"
  part = tmp_path / "cache" / (name + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(files[name][:120_000])
  download.download_subset("sleep-edf-20", str(tmp_path / "cache"), base_url=url)
  assert (tmp_path / "cache" / name).read_bytes() == files[name]
  assert ("/" + name, 300_000 - 120_000) in _RangeHandler.sent  # only the rest was sent
  assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
  url, _, files = server
  _RangeHandler.ignore_range = True
  name = "sleep-cassette/SC4001E0-PSG.edf"
  part = tmp_path / "cache" / (name + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(b"x" * 1000)
  download.download_subset("sleep-edf-20", str(tmp_path / "cache"), base_url=url)
  assert (tmp_path / "cache" / name).read_bytes() == files[name]


def test_corrupt_file_is_an_error_naming_it_and_leaves_nothing(server, tmp_path):
  url, root, _ = server
  (root / "sleep-cassette/SC4001EC-Hypnogram.edf").write_bytes(b"tampered")
  with pytest.raises(download.DownloadError, match="SC4001EC-Hypnogram.edf: sha256 does not"):
    download.download_subset("sleep-edf-20", str(tmp_path / "cache"), base_url=url)
  hyp = tmp_path / "cache/sleep-cassette/SC4001EC-Hypnogram.edf"
  assert not hyp.exists() and not os.path.exists(str(hyp) + ".part")


def test_missing_file_and_unreachable_server(server, tmp_path):
  url, root, _ = server
  os.remove(root / "sleep-cassette/SC4001E0-PSG.edf")
  with pytest.raises(download.DownloadError, match="SC4001E0-PSG.edf: cannot download"):
    download.download_subset("sleep-edf-20", str(tmp_path / "c"), base_url=url)
  with pytest.raises(download.DownloadError, match="Offline"):
    download.download_subset("sleep-edf-20", str(tmp_path / "c"), base_url="http://127.0.0.1:9/")


def test_subset_selection_from_physionets_real_checksum_list():
  path = os.path.join(SHARED, "SHA256SUMS.txt")
  if not os.path.exists(path):
    pytest.skip("../shared/sleep-edf not present")
  checksums = download.parse_checksums(open(path).read())
  for subset, nights in (("sleep-edf-20", 39), ("sleep-edf-78", 153)):
    files = download.subset_files(checksums, subset)
    assert sum(f.endswith("-PSG.edf") for f in files) == nights
    assert sum(f.endswith("-Hypnogram.edf") for f in files) == nights
  # the real hypnograms here are exactly the ones PhysioNet lists for sleep-edf-20
  for name in os.listdir(os.path.join(SHARED, "sleep-cassette")):
    data = open(os.path.join(SHARED, "sleep-cassette", name), "rb").read()
    assert checksums["sleep-cassette/" + name] == hashlib.sha256(data).hexdigest()
