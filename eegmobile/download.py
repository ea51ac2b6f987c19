"""Downloading a Sleep-EDF subset from PhysioNet: resumable, checksum-verified.

PhysioNet publishes `SHA256SUMS.txt` beside the files; we fetch it first, pick the PSG and
hypnogram files of the subset from it, and for each file: keep it if present with the
right checksum, else download to `<file>.part` (resuming a partial one with an HTTP Range
request), verify the checksum, and only then rename it into place. A file that still
fails its checksum after one fresh retry is an error naming the file.
"""

import hashlib
import os
import time
import urllib.error
import urllib.request
from typing import Optional

from absl import logging

from eegmobile import sleep_edf

CHECKSUMS = "SHA256SUMS.txt"
_CHUNK = 1 << 20


class DownloadError(ConnectionError):
  """A file could not be fetched or verified (the message names it)."""


def parse_checksums(text: str) -> dict[str, str]:
  """{relative path: sha256} from a SHA256SUMS listing."""
  out = {}
  for line in text.splitlines():
    parts = line.split()
    if len(parts) == 2:
      out[parts[1].lstrip("*")] = parts[0].lower()
  return out


def subset_files(checksums: dict[str, str], subset: str) -> dict[str, str]:
  """The PSG and hypnogram files of a subset, from the checksum listing."""
  return {
      path: digest
      for path, digest in sorted(checksums.items())
      if (name := sleep_edf.parse_name(path)) and sleep_edf.in_subset(name, subset)
  }


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(_CHUNK):
      digest.update(block)
  return digest.hexdigest()


def _open(url: str, start: int = 0, timeout: float = 60.0):
  request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
  try:
    return urllib.request.urlopen(request, timeout=timeout)
  except (urllib.error.URLError, OSError) as e:
    raise DownloadError(f"{url}: cannot download ({e}). Offline? Place the Sleep-EDF files "
                        "in the cache directory by hand and run again.") from e


def _fetch(url: str, path: str) -> int:
  """Downloads url to path + '.part', resuming; returns bytes transferred."""
  part = path + ".part"
  start = os.path.getsize(part) if os.path.exists(part) else 0
  with _open(url, start) as response:
    resumed = start and response.status == 206
    if start and not resumed:
      logging.info("%s: server ignored the range request; starting over", url)
    transferred, began = 0, time.monotonic()
    with open(part, "ab" if resumed else "wb") as f:
      while block := response.read(_CHUNK):
        f.write(block)
        transferred += len(block)
  seconds = max(time.monotonic() - began, 1e-6)
  logging.info("%s: %.1f MB in %.1f s (%.1f MB/s)%s", os.path.basename(path), transferred / 1e6,
               seconds, transferred / 1e6 / seconds,
               f", resumed at byte {start}" if resumed else "")
  return transferred


def download_file(base_url: str, relative: str, digest: str, cache_dir: str) -> str:
  """Ensures cache_dir/relative exists with the given sha256; returns its path.

  Raises:
    DownloadError: unreachable, or a checksum mismatch that survives one fresh retry.
  """
  path = os.path.join(cache_dir, relative)
  if os.path.exists(path) and _sha256(path) == digest:
    return path
  os.makedirs(os.path.dirname(path), exist_ok=True)
  url = base_url.rstrip("/") + "/" + relative
  for attempt in (1, 2):
    _fetch(url, path)
    if _sha256(path + ".part") == digest:
      os.replace(path + ".part", path)
      return path
    os.remove(path + ".part")  # corrupt: the next attempt starts from scratch
    logging.warning("%s: checksum mismatch (attempt %d of 2)", relative, attempt)
  raise DownloadError(f"{url}: sha256 does not match {CHECKSUMS} after two downloads")


def download_subset(subset: str,
                    cache_dir: str,
                    *,
                    base_url: str = sleep_edf.PHYSIONET_URL,
                    checksums_text: Optional[str] = None) -> list[str]:
  """Downloads (or verifies) every PSG and hypnogram of a subset into cache_dir.

  Args:
    subset: a key of sleep_edf.SUBSETS.
    cache_dir: where files go, laid out as on PhysioNet (sleep-cassette/...).
    base_url: the database's root URL.
    checksums_text: the SHA256SUMS listing, if already at hand (else fetched).

  Returns:
    Paths of the subset's files, all verified.

  Raises:
    DownloadError: the listing or a file could not be fetched or verified.
  """
  if checksums_text is None:
    with _open(base_url.rstrip("/") + "/" + CHECKSUMS) as response:
      checksums_text = response.read().decode()
  files = subset_files(parse_checksums(checksums_text), subset)
  if not files:
    raise DownloadError(f"{base_url}: {CHECKSUMS} lists no file of subset {subset}")
  paths = []
  for i, (relative, digest) in enumerate(files.items()):
    paths.append(download_file(base_url, relative, digest, cache_dir))
    logging.info("[%d/%d] %s ok", i + 1, len(files), relative)
  return paths
