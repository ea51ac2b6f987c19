"""Downloading a Sleep-EDF subset from PhysioNet: resumable and checksum-verified.

PhysioNet publishes `SHA256SUMS.txt` beside the files. `download_subset` fetches it (and
keeps a copy in the cache directory), picks the subset's PSG and hypnogram files from it
(`sleep-cassette/` and `sleep-telemetry/`), and for each file:

* keeps it if it is already there with the right checksum (no request at all);
* else downloads it to `<file>.part`, resuming a partial `.part` with an HTTP Range
  request (a server that ignores the range, or answers with another range, gets the
  download restarted from byte 0);
* renames the `.part` into place only when its sha256 matches. A mismatch deletes the
  `.part` and downloads the file once more from scratch; a second mismatch is an error
  naming the file. A connection lost mid-file is resumed (up to 3 times).

Offline: where PhysioNet cannot be reached but `SHA256SUMS.txt` and the files are
already in the cache directory (placed there by hand, laid out as on PhysioNet), they are
verified and used. Only the standard library's urllib is used.
"""

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from typing import Optional

from absl import logging

from eegmobile import sleep_edf
from eegmobile import storage

CHECKSUMS = "SHA256SUMS.txt"
FOLDERS = ("sleep-cassette", "sleep-telemetry")
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
_RESUMES = 3  # connections lost mid-file, resumed before giving up
_PROGRESS_EVERY_S = 10.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class DownloadError(ConnectionError):
  """A file could not be fetched or verified (the message names the file or URL)."""


def parse_checksums(text: str) -> dict[str, str]:
  """Parses a SHA256SUMS listing ("<hex digest> [*]<relative path>" per line).

  Args:
    text: the listing.

  Returns:
    {relative path: lowercase hex sha256}.
  """
  out = {}
  for line in text.splitlines():
    parts = line.split(maxsplit=1)
    if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
      out[parts[1].strip().lstrip("*")] = parts[0].lower()
  return out


def subset_files(checksums: dict[str, str], subset: str) -> dict[str, str]:
  """The subset's PSG and hypnogram files among a listing's files.

  Args:
    checksums: {relative path: sha256} (see `parse_checksums`).
    subset: a key of `sleep_edf.SUBSETS`.

  Returns:
    {relative path: sha256} of the subset's files, sorted by path. Only files directly in
    `sleep-cassette/` or `sleep-telemetry/` count (nothing can land outside the cache).

  Raises:
    ValueError: unknown subset.
  """
  out = {}
  for path, digest in sorted(checksums.items()):
    folder, _, filename = path.rpartition("/")
    name = sleep_edf.parse_name(filename)
    if folder in FOLDERS and name is not None and sleep_edf.in_subset(name, subset):
      out[path] = digest
  return out


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(_CHUNK):
      digest.update(block)
  return digest.hexdigest()


def _unreachable(url: str, error: Exception, cache_dir: str) -> DownloadError:
  return DownloadError(f"{url}: cannot download ({error}). Offline or blocked? Place "
                       f"{CHECKSUMS} and the Sleep-EDF files in {cache_dir} by hand, laid out "
                       "as on PhysioNet (sleep-cassette/..., sleep-telemetry/...), and run again.")


def _open(url: str, start: int, cache_dir: str):
  """The response to GET url (from byte `start` on), or None for 416 (range not satisfiable)."""
  headers = {"Range": f"bytes={start}-"} if start else {}
  try:
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
  except urllib.error.HTTPError as e:
    if e.code == 416 and start:
      return None
    raise DownloadError(f"{url}: cannot download (HTTP {e.code} {e.reason})") from e
  except (urllib.error.URLError, OSError) as e:
    raise _unreachable(url, e, cache_dir) from e


def _resumes_at(response, start: int) -> bool:
  """Whether a response to a Range request from `start` really continues from there."""
  match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
  return response.status == 206 and match is not None and int(match[1]) == start


def _fetch(url: str, part: str, cache_dir: str, progress: bool) -> None:
  """Downloads url into `part`, appending to what is there when the server resumes."""
  start = os.path.getsize(part) if os.path.exists(part) else 0
  response = _open(url, start, cache_dir)
  if response is None:  # the .part is already as long as the file (or longer): re-verify
    return
  with response:
    resumed = bool(start) and _resumes_at(response, start)
    if start and not resumed:
      logging.info("%s: the server did not resume at byte %d; downloading from the start", url,
                   start)
    total = response.headers.get("Content-Length")
    total = int(total) + (start if resumed else 0) if total else None
    done, began, last_report = start if resumed else 0, time.monotonic(), time.monotonic()
    with open(part, "ab" if resumed else "wb") as f:
      while block := response.read(_CHUNK):
        f.write(block)
        done += len(block)
        if progress and time.monotonic() - last_report > _PROGRESS_EVERY_S:
          last_report = time.monotonic()
          logging.info("%s: %.1f of %s MB",
                       os.path.basename(part)[:-5], done / 1e6,
                       f"{total / 1e6:.1f}" if total else "?")
    if total is not None and done < total:
      raise http.client.IncompleteRead(b"", total - done)
  if progress:
    seconds = max(time.monotonic() - began, 1e-6)
    fetched = done - (start if resumed else 0)
    logging.info("%s: %.2f MB in %.1f s (%.2f MB/s)%s",
                 os.path.basename(part)[:-5], fetched / 1e6, seconds, fetched / 1e6 / seconds,
                 f", resumed at byte {start}" if resumed else "")


def _fetch_with_resumes(url: str, part: str, cache_dir: str, progress: bool) -> None:
  """`_fetch`, resumed where the connection is lost mid-file (up to _RESUMES times)."""
  for attempt in range(_RESUMES + 1):
    try:
      _fetch(url, part, cache_dir, progress)
      return
    except DownloadError:
      raise
    except (http.client.HTTPException, OSError) as e:
      if attempt == _RESUMES:
        raise _unreachable(url, e, cache_dir) from e
      logging.warning("%s: connection lost (%r); resuming", url, e)


def download_file(base_url: str,
                  relative: str,
                  digest: str,
                  cache_dir: str,
                  *,
                  progress: bool = True) -> str:
  """Makes sure `cache_dir/relative` holds the file with the given sha256.

  Args:
    base_url: the database's root URL.
    relative: the file's path below base_url and cache_dir.
    digest: its hex sha256.
    cache_dir: the local root.
    progress: log bytes and rate per file (and every 10 s during long downloads).

  Returns:
    The local path.

  Raises:
    DownloadError: unreachable, HTTP error, or a checksum that is still wrong after one
      fresh download.
  """
  path = os.path.join(cache_dir, *relative.split("/"))
  part = path + storage.PART_SUFFIX  # kept between runs: a later run resumes it
  if os.path.exists(path):
    if _sha256(path) == digest:
      return path
    logging.warning("%s: present but its sha256 does not match %s; downloading it again", path,
                    CHECKSUMS)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  url = base_url.rstrip("/") + "/" + relative
  for attempt in (1, 2):
    _fetch_with_resumes(url, part, cache_dir, progress)
    if os.path.exists(part) and _sha256(part) == digest:
      storage.commit(part, path)
      return path
    if os.path.exists(part):
      os.remove(part)  # corrupt: a retry must not resume from it
    logging.warning("%s: sha256 mismatch (download %d of 2)", relative, attempt)
  raise DownloadError(f"{relative}: sha256 does not match {CHECKSUMS} after two downloads "
                      f"from {url}; the file on the server or the connection is corrupt")


def _checksums_text(base_url: str, cache_dir: str) -> str:
  """The listing from the server (a copy is kept in cache_dir), or the kept copy offline."""
  url = base_url.rstrip("/") + "/" + CHECKSUMS
  local = os.path.join(cache_dir, CHECKSUMS)
  try:
    with _open(url, 0, cache_dir) as response:
      text = response.read().decode("utf-8")
  except DownloadError:
    if not os.path.exists(local):
      raise
    logging.warning("%s unreachable; using the listing already in %s", url, local)
    with open(local, encoding="utf-8") as f:
      return f.read()
  os.makedirs(cache_dir, exist_ok=True)
  storage.write_text(local, text)
  return text


def download_subset(subset: str,
                    cache_dir: str,
                    *,
                    base_url: str = sleep_edf.PHYSIONET_URL,
                    progress: bool = True,
                    checksums_text: Optional[str] = None) -> list[str]:
  """Downloads (or verifies) every PSG and hypnogram of a subset into cache_dir.

  Args:
    subset: a key of `sleep_edf.SUBSETS`.
    cache_dir: where the files go, laid out as on PhysioNet (sleep-cassette/...).
    base_url: the database's root URL.
    progress: log each file's bytes and rate.
    checksums_text: the SHA256SUMS listing if already at hand; default: fetched from
      base_url (or, offline, the copy kept in cache_dir).

  Returns:
    Local paths of the subset's files, all verified, sorted.

  Raises:
    DownloadError: the listing or a file could not be fetched or verified.
    ValueError: unknown subset.
  """
  if checksums_text is None:
    checksums_text = _checksums_text(base_url, cache_dir)
  files = subset_files(parse_checksums(checksums_text), subset)
  if not files:
    raise DownloadError(f"{base_url}: {CHECKSUMS} lists no file of subset {subset}")
  paths = []
  for i, (relative, digest) in enumerate(files.items()):
    paths.append(download_file(base_url, relative, digest, cache_dir, progress=progress))
    if progress:
      logging.info("[%d/%d] %s verified", i + 1, len(files), relative)
  return paths
