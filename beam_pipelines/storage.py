"""The build's one file-system layer: local paths and object stores through Beam's FileSystems.

Every file the build reads or writes (recordings, staged shards, failure records, the
manifest) goes through these functions, so the same job runs on a laptop and on a cluster
with `s3://` (the `aws` extra) or `gs://` (Beam's `gcp` extra) locations. Object stores
have no directories and no atomic directory rename: a "directory" is a key prefix, and a
build is complete only once its manifest is written (see `pipeline._finalise`).

Object-store credentials and endpoints are Beam pipeline options (`--s3_endpoint_url`,
`--s3_access_key_id`, ...); `configure(options)` hands them to FileSystems in the driver,
and Beam hands them to its workers.
"""

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

from apache_beam.io.filesystems import FileSystems


class StorageError(OSError):
  """A location cannot be reached, read or written (the message names the URL or path)."""


def is_url(path: str) -> bool:
  return "://" in path


def configure(options) -> None:
  """Gives FileSystems the pipeline options (object-store endpoints and credentials)."""
  FileSystems.set_options(options)


def join(base: str, *names: str) -> str:
  return FileSystems.join(base.rstrip("/"), *names) if is_url(base) else os.path.join(base, *names)


def absolute(path: str) -> str:
  """An absolute local path (workers may start elsewhere), or the URL unchanged."""
  return path if is_url(path) else os.path.abspath(path)


def exists(path: str) -> bool:
  return FileSystems.exists(path)


def list_names(directory: str) -> list[str]:
  """Names of the files directly in a directory (or below a prefix), sorted; [] if none."""
  if not is_url(directory):
    if not os.path.isdir(directory):
      return []
    return sorted(n for n in os.listdir(directory) if os.path.isfile(os.path.join(directory, n)))
  prefix = directory.rstrip("/") + "/"
  found = FileSystems.match([prefix + "*"])[0].metadata_list
  return sorted(m.path[len(prefix):] for m in found if "/" not in m.path[len(prefix):])


def find_files(directory: str) -> list[str]:
  """Every file below a directory or prefix, recursively (full paths), sorted.

  Raises:
    FileNotFoundError: a local directory that does not exist.
    StorageError: an object store that cannot be listed.
  """
  if not is_url(directory):
    if not os.path.isdir(directory):
      raise FileNotFoundError(f"{directory}: data directory does not exist")
    return sorted(os.path.join(root, f) for root, _, files in os.walk(directory) for f in files)
  with reported(directory, "list"):
    found = FileSystems.match([directory.rstrip("/") + "/**"])[0].metadata_list
  return sorted(m.path for m in found)


def has_files(directory: str) -> bool:
  """Whether a local directory exists, or any object has the prefix."""
  if not is_url(directory):
    return os.path.exists(directory)
  return bool(find_files(directory))


def make_dirs(directory: str) -> None:
  """Creates a local directory (parents too); object stores need none."""
  if not is_url(directory):
    os.makedirs(directory, exist_ok=True)


@contextlib.contextmanager
def create(path: str) -> Iterator:
  """A binary stream writing a new file; on an object store the object appears on close."""
  with FileSystems.create(path) as stream:
    yield stream


def write_bytes(path: str, data: bytes) -> None:
  """Writes a whole file; a reader never sees half of it (local: .part then rename)."""
  if is_url(path):
    with create(path) as f:  # one PUT: an object is there whole or not at all
      f.write(data)
    return
  with open(path + ".part", "wb") as f:
    f.write(data)
  os.replace(path + ".part", path)


def read_bytes(path: str) -> bytes:
  with FileSystems.open(path) as f:
    return f.read()


def rename(source: str, destination: str) -> None:
  """Moves one file (an object store copies it, then deletes the source)."""
  if is_url(source):
    FileSystems.rename([source], [destination])
  else:
    os.replace(source, destination)


def delete(paths: list[str]) -> None:
  if paths:
    FileSystems.delete(paths)


def delete_tree(directory: str) -> None:
  """Deletes a directory (or every object below a prefix); nothing if it is not there."""
  if not is_url(directory):
    shutil.rmtree(directory, ignore_errors=True)
    return
  delete(find_files(directory))


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
  """A local path holding the file: the path itself, or a temporary copy of an object."""
  if not is_url(path):
    yield path
    return
  with tempfile.TemporaryDirectory(prefix="eegmobile-") as directory:
    local = os.path.join(directory, os.path.basename(path))
    with FileSystems.open(path) as source, open(local, "wb") as target:
      shutil.copyfileobj(source, target, 8 << 20)
    yield local


_EXTRAS = {"s3": "aws", "gs": "gcp"}  # scheme -> the extra that installs its file system


def check_writable(directory: str) -> None:
  """Writes and deletes a small probe object, so an unreachable endpoint, a missing bucket,
  missing credentials or an uninstalled file system fail before any work, location named.

  Raises:
    StorageError: the location cannot be written.
  """
  created = not is_url(directory) and not os.path.exists(directory)
  with reported(directory, "write"):
    probe = join(directory, ".eegmobile-write-probe")
    make_dirs(directory)
    write_bytes(probe, b"probe")
    delete([probe])
    if created:
      os.rmdir(directory)  # the build creates it when it has something to put there


@contextlib.contextmanager
def reported(location: str, action: str) -> Iterator[None]:
  """Turns a file system's failure into a StorageError naming the location and the fix."""
  try:
    yield
  except (FileNotFoundError, StorageError):
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Beam wraps boto/GCS errors in its own types; the cause's text says what went wrong.
    cause = e.__cause__ or e
    scheme = location.split("://")[0] if is_url(location) else ""
    if "Unable to get filesystem" in str(e) or "Missing boto3" in str(e):
      extra = _EXTRAS.get(scheme)
      how = f"pip install 'eegmobile[{extra}]' (Beam's {extra} extra)" if extra else (
          "no Beam file system handles it")
      raise StorageError(f"{location}: {scheme}:// locations need a file system that is "
                         f"not installed: {how}") from e
    raise StorageError(f"{location}: cannot {action} there ({type(cause).__name__}: "
                       f"{str(cause)[:400]}). Check the bucket exists, the endpoint "
                       "(--s3_endpoint_url) answers and the credentials "
                       "(--s3_access_key_id/--s3_secret_access_key) allow it.") from e
