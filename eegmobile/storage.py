"""The one file-system layer: every read, write, listing, rename and URL check goes here.

Local paths, `s3://` URLs and any other scheme fsspec knows take the same calls, so the
build, the readers, the trainers and staging run unchanged on a laptop and on a cluster
with object stores, and a fix lands once. Backends, chosen by what the callers need
(BUILD_NOTES.md, "One storage layer"):

* local paths: the standard library. A file is written to `<path>.part` and renamed into
  place (`os.replace`), so a reader never sees half of it.
* `s3://`: boto3 (the `aws` extra). One PUT per object, so an object is there whole or not
  at all; conditional writes (`If-None-Match: *`, `If-Match: <ETag>`) give
  `create_exclusive` and `put_versioned`, which fold claims and run records need;
  reads stream (`open_read`), which is how `tf.data` reads shards from a store.
* any other scheme (`memory://` in the tests; `gs://` with gcsfs, `az://` with adlfs,
  untested here): fsspec, where its implementation is installed.

Object-store endpoint and credentials follow one convention, the standard AWS variables:
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
AWS_REGION. `configure_s3` maps command-line settings (the build's `--s3_*` flags) onto
them, for this process and the processes it starts; `s3_settings` hands them to remote
workers. tensorflow-io's S3_ENDPOINT is read as the endpoint when AWS_ENDPOINT_URL is
unset.

Object stores have no directories and no atomic rename of a directory: a "directory" is a
key prefix, and whoever needs a whole set of files to appear at once writes a marker last
(a build's manifest).
"""

import contextlib
import os
import shutil
import tempfile
import threading
from typing import BinaryIO, Iterator, Optional, Sequence

PART_SUFFIX = ".part"  # a local file being written; renamed into place when complete
_S3_SETTINGS = {  # configure_s3 keyword -> the standard AWS variable
    "endpoint_url": "AWS_ENDPOINT_URL",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
    "region_name": "AWS_REGION",
}
_EXTRAS = {
    "s3": "pip install 'eegmobile[aws]' (boto3)",
    "gs": "pip install gcsfs",
    "az": "pip install adlfs",
    "abfs": "pip install adlfs"
}
_MISSING_CODES = ("NoSuchKey", "404", "NotFound")
_CONFLICT_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class StorageError(OSError):
  """A location cannot be reached, read or written (the message names it and what to check)."""


# ----------------------------------------------------------------------------- paths


def is_url(path: str) -> bool:
  """Whether `path` is an object-store (or other scheme's) URL rather than a local path."""
  return "://" in str(path)


def scheme(path: str) -> str:
  """The URL scheme ("s3", "memory", ...), or "" for a local path."""
  return str(path).split("://", 1)[0].lower() if is_url(path) else ""


def join(base: str, *names: str) -> str:
  """`base`/`names` with "/" on URLs and the OS separator on local paths."""
  if is_url(base):
    return "/".join([str(base).rstrip("/"), *(n.strip("/") for n in names)])
  return os.path.join(base, *names)


def basename(path: str) -> str:
  return str(path).rstrip("/").rsplit("/", 1)[-1] if is_url(path) else os.path.basename(path)


def parent(path: str) -> str:
  return str(path).rstrip("/").rsplit("/", 1)[0] if is_url(path) else os.path.dirname(path)


def absolute(path: str) -> str:
  """An absolute local path (workers may start elsewhere), or the URL unchanged."""
  return str(path) if is_url(path) else os.path.abspath(path)


def split_bucket(url: str) -> tuple[str, str]:
  """(bucket, key) of an s3:// URL."""
  bucket, _, key = str(url).split("://", 1)[1].partition("/")
  return bucket, key


# ------------------------------------------------------------------ S3 settings, clients


def configure_s3(**settings: Optional[str]) -> None:
  """Sets the standard AWS variables for this process and the processes it starts.

  Args:
    **settings: endpoint_url, access_key_id, secret_access_key, session_token,
      region_name; None or "" leaves a variable as it is.

  Raises:
    ValueError: an unknown setting.
  """
  for name, value in settings.items():
    if name not in _S3_SETTINGS:
      raise ValueError(f"unknown S3 setting {name!r}; known: {', '.join(_S3_SETTINGS)}")
    if value:
      os.environ[_S3_SETTINGS[name]] = str(value)


def s3_settings() -> dict[str, str]:
  """The AWS variables set in this process: what a remote worker needs to reach the store."""
  return {v: os.environ[v] for v in (*_S3_SETTINGS.values(), "S3_ENDPOINT") if v in os.environ}


def apply_settings(settings: dict[str, str]) -> None:
  """Sets variables from `s3_settings()` of another process (a remote worker's setup)."""
  os.environ.update(settings)


_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _s3():
  """A boto3 S3 client for the current settings (one per process and settings)."""
  try:
    # Lazy: boto3 is the optional aws extra (and slow to import: BUILD_NOTES.md "Start-up").
    import boto3  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise StorageError(f"s3:// locations need boto3: {_EXTRAS['s3']}") from e
  endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT") or None
  key = (os.getpid(), endpoint, *(os.environ.get(v) for v in _S3_SETTINGS.values()))
  with _CLIENTS_LOCK:
    if key not in _CLIENTS:
      _CLIENTS[key] = boto3.client("s3",
                                   endpoint_url=endpoint,
                                   region_name=os.environ.get("AWS_REGION"))
    return _CLIENTS[key]


def _error_code(error: BaseException) -> str:
  return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _fsspec(path: str):
  try:
    import fsspec  # pylint: disable=g-import-not-at-top  # lazy: only other schemes need it
    return fsspec.filesystem(scheme(path))
  except (ImportError, ValueError) as e:
    how = _EXTRAS.get(scheme(path), "no installed file system handles it")
    raise StorageError(f"{path}: {scheme(path)}:// locations need a file system that is not "
                       f"installed: {how}") from e


@contextlib.contextmanager
def reported(location: str, action: str) -> Iterator[None]:
  """Turns a store's failure into one StorageError naming the location and what to check."""
  try:
    yield
  except (FileNotFoundError, StorageError):
    raise
  except Exception as e:  # pylint: disable=broad-except
    module = type(e).__module__ or ""
    if not module.startswith(("botocore", "boto3", "s3transfer", "urllib3", "fsspec", "gcsfs",
                              "aiohttp")) and not isinstance(e, OSError):
      raise
    detail = f"{type(e).__name__}: {str(e)[:400]}"
    hint = ("Check the bucket exists, the endpoint (AWS_ENDPOINT_URL, or the build's "
            "--s3_endpoint_url) answers and the credentials (AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY) allow it." if scheme(location) == "s3" else "")
    raise StorageError(f"{location}: cannot {action} there ({detail}). {hint}".rstrip()) from e


# ------------------------------------------------------------------------- reading


def exists(path: str) -> bool:
  if not is_url(path):
    return os.path.exists(path)
  if scheme(path) == "s3":
    bucket, key = split_bucket(path)
    with reported(path, "read"):
      try:
        _s3().head_object(Bucket=bucket, Key=key)
        return True
      except Exception as e:  # pylint: disable=broad-except
        if _error_code(e) in _MISSING_CODES:
          return False
        raise
  with reported(path, "read"):
    return _fsspec(path).exists(path)


def _s3_keys(prefix_url: str, recursive: bool) -> list[str]:
  bucket, prefix = split_bucket(prefix_url.rstrip("/") + "/")
  keys = []
  with reported(prefix_url, "list"):
    pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                            Prefix=prefix,
                                                            **({} if recursive else {
                                                                "Delimiter": "/"
                                                            }))
    for page in pages:
      keys += [f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", [])]
  return keys


def find_files(directory: str) -> list[str]:
  """Every file below a directory or prefix, recursively, as full paths, sorted.

  Raises:
    FileNotFoundError: a local directory that does not exist.
    StorageError: a store that cannot be listed.
  """
  if not is_url(directory):
    if not os.path.isdir(directory):
      raise FileNotFoundError(f"{directory}: directory does not exist")
    return sorted(os.path.join(root, f) for root, _, files in os.walk(directory) for f in files)
  if scheme(directory) == "s3":
    return sorted(_s3_keys(directory, recursive=True))
  with reported(directory, "list"):
    fs = _fsspec(directory)
    root = directory.rstrip("/")
    if not fs.exists(root):
      return []
    prefix = directory.split("://", 1)[0] + "://"
    return sorted(p if "://" in p else prefix + p.lstrip("/") for p in fs.find(root))


def list_names(directory: str) -> list[str]:
  """Names of the files directly in a directory (or below a prefix), sorted; [] if none."""
  if not is_url(directory):
    if not os.path.isdir(directory):
      return []
    return sorted(n for n in os.listdir(directory) if os.path.isfile(os.path.join(directory, n)))
  prefix = directory.rstrip("/") + "/"
  found = _s3_keys(directory,
                   recursive=False) if scheme(directory) == "s3" else find_files(directory)
  return sorted(p[len(prefix):] for p in found if "/" not in p[len(prefix):])


def has_files(directory: str) -> bool:
  """Whether a local directory exists, or any object has the prefix."""
  if not is_url(directory):
    return os.path.exists(directory)
  return bool(find_files(directory))


@contextlib.contextmanager
def open_read(path: str) -> Iterator[BinaryIO]:
  """A binary stream reading a file; an object is streamed, not downloaded first.

  Raises:
    FileNotFoundError: no such file or object.
    StorageError: the store cannot be read.
  """
  if not is_url(path):
    with open(path, "rb") as f:
      yield f
    return
  if scheme(path) == "s3":
    bucket, key = split_bucket(path)
    with reported(path, "read"):
      try:
        body = _s3().get_object(Bucket=bucket, Key=key)["Body"]
      except Exception as e:  # pylint: disable=broad-except
        if _error_code(e) in _MISSING_CODES:
          raise FileNotFoundError(f"{path}: no such object") from e
        raise
    try:
      yield body
    finally:
      body.close()
    return
  with reported(path, "read"):
    fs = _fsspec(path)
    if not fs.exists(path):
      raise FileNotFoundError(f"{path}: no such object")
    stream = fs.open(path, "rb")
  with stream:
    yield stream


def read_bytes(path: str) -> bytes:
  with open_read(path) as f:
    with reported(path, "read"):
      return f.read()


def read_text(path: str) -> str:
  return read_bytes(path).decode("utf-8")


def read_versioned(path: str) -> tuple[Optional[bytes], Optional[str]]:
  """(content, version) of an object, or (None, None) when there is none.

  The version is what `put_versioned` checks: the object's ETag on S3 (None elsewhere).
  """
  if scheme(path) == "s3":
    bucket, key = split_bucket(path)
    with reported(path, "read"):
      try:
        response = _s3().get_object(Bucket=bucket, Key=key)
      except Exception as e:  # pylint: disable=broad-except
        if _error_code(e) in _MISSING_CODES:
          return None, None
        raise
      return response["Body"].read(), response["ETag"]
  try:
    with open_read(path) as f:
      data = f.read()
  except FileNotFoundError:
    return None, None
  return data, None


# ------------------------------------------------------------------------- writing


def make_dirs(directory: str) -> None:
  """Creates a local directory (parents too); object stores need none."""
  if not is_url(directory):
    os.makedirs(directory, exist_ok=True)


def commit(part: str, path: str) -> None:
  """Renames a finished local file into place (atomic on one file system)."""
  os.replace(part, path)


def _upload(local: str, path: str) -> None:
  if scheme(path) == "s3":
    bucket, key = split_bucket(path)
    with reported(path, "write"):
      _s3().upload_file(local, bucket, key)  # one PUT, or a multipart upload completed once
    return
  with reported(path, "write"):
    _fsspec(path).put_file(local, path)


@contextlib.contextmanager
def atomic_path(path: str, *, keep_extension: bool = False) -> Iterator[str]:
  """A local path to write `path`'s content to; it appears under `path` only when complete.

  Local: `<path>.part` (`<stem>.part<ext>` with keep_extension, for writers that insist on
  an extension, e.g. Keras' `.keras`), renamed into place. A URL: a temporary file with
  the same name, uploaded as one object. On an exception nothing is left behind and
  `path` is unchanged.
  """
  if is_url(path):
    with tempfile.TemporaryDirectory(prefix="eegmobile-") as directory:
      local = os.path.join(directory, basename(path))
      yield local
      _upload(local, path)
    return
  stem, extension = os.path.splitext(path) if keep_extension else (path, "")
  part = stem + PART_SUFFIX + extension
  try:
    yield part
    commit(part, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(part)
    raise


@contextlib.contextmanager
def create(path: str) -> Iterator[BinaryIO]:
  """A binary stream writing a file whole or not at all (see `atomic_path`)."""
  with atomic_path(path) as local:
    with open(local, "wb", buffering=1 << 20) as stream:
      yield stream


def write_bytes(path: str, data: bytes) -> None:
  """Writes a whole file; a reader never sees half of it (local: .part then rename)."""
  if scheme(path) == "s3":
    bucket, key = split_bucket(path)
    with reported(path, "write"):
      _s3().put_object(Bucket=bucket, Key=key, Body=data)
    return
  with create(path) as f:
    f.write(data)


def write_text(path: str, text: str) -> None:
  """Writes text as UTF-8, whole or not at all."""
  write_bytes(path, text.encode("utf-8"))


def create_exclusive(path: str, data: bytes) -> bool:
  """Creates `path` holding `data` unless it exists (all or nothing); True when this call did.

  Local: the data is written to a temporary file and hard-linked to `path` (the link fails
  if it exists). S3: a conditional PUT (If-None-Match: *). Two creators: one wins.
  """
  if scheme(path) == "s3":
    return put_versioned(path, data, if_absent=True) is not None
  if is_url(path):
    raise StorageError(f"{path}: exclusive creation is supported on local paths and s3:// only")
  handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
  try:
    with os.fdopen(handle, "wb") as f:
      f.write(data)
    os.chmod(temporary, 0o644)
    os.link(temporary, path)  # fails if path exists: two workers cannot both create it
    return True
  except FileExistsError:
    return False
  finally:
    os.remove(temporary)


def put_versioned(path: str,
                  data: bytes,
                  *,
                  if_version: Optional[str] = None,
                  if_absent: bool = False) -> Optional[str]:
  """Writes an S3 object under a condition: it is still at `if_version` (its ETag), or it
  does not exist (`if_absent`). One of several writers racing on one condition wins.

  Returns:
    The new version (ETag), or None when the condition failed.

  Raises:
    StorageError: not an s3:// URL (local files take each other over with `rename`).
  """
  if scheme(path) != "s3":
    raise StorageError(f"{path}: conditional writes are supported on s3:// only")
  bucket, key = split_bucket(path)
  condition = {"IfMatch": if_version} if if_version else {"IfNoneMatch": "*"} if if_absent else {}
  with reported(path, "write"):
    try:
      return _s3().put_object(Bucket=bucket, Key=key, Body=data, **condition)["ETag"]
    except Exception as e:  # pylint: disable=broad-except
      if _error_code(e) in _CONFLICT_CODES + _MISSING_CODES:
        return None
      raise


def rename(source: str, destination: str) -> None:
  """Moves one file: atomic locally; an object store copies it, then deletes the source.

  Raises:
    FileNotFoundError: no source (e.g. another process moved it first).
  """
  if not is_url(source):
    os.replace(source, destination)
    return
  if scheme(source) == "s3":
    bucket, key = split_bucket(source)
    to_bucket, to_key = split_bucket(destination)
    with reported(source, "move"):
      _s3().copy({"Bucket": bucket, "Key": key}, to_bucket, to_key)
      _s3().delete_object(Bucket=bucket, Key=key)
    return
  with reported(source, "move"):
    _fsspec(source).mv(source, destination)


def delete(paths: Sequence[str]) -> None:
  """Deletes files or objects; missing ones are ignored."""
  for path in paths:
    if not is_url(path):
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    elif scheme(path) == "s3":
      bucket, key = split_bucket(path)
      with reported(path, "delete"):
        _s3().delete_object(Bucket=bucket, Key=key)
    else:
      with reported(path, "delete"), contextlib.suppress(FileNotFoundError):
        _fsspec(path).rm(path)


def delete_tree(directory: str) -> None:
  """Deletes a directory (or every object below a prefix); nothing if it is not there."""
  if not is_url(directory):
    shutil.rmtree(directory, ignore_errors=True)
    return
  delete(find_files(directory))


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
  """A local path holding the file: the path itself, or a temporary copy of an object
  with the same base name (so that errors name the file the user knows)."""
  if not is_url(path):
    yield path
    return
  with tempfile.TemporaryDirectory(prefix="eegmobile-") as directory:
    local = os.path.join(directory, basename(path))
    with open_read(path) as source, open(local, "wb") as target:
      with reported(path, "read"):
        shutil.copyfileobj(source, target, 8 << 20)
    yield local


def download_tree(url: str,
                  local_dir: str,
                  *,
                  skip: tuple[str, ...] = (),
                  only: Optional[tuple[str, ...]] = None) -> list[str]:
  """Copies every file under `url` into `local_dir`; returns their relative names, sorted.

  Files whose base name is in `skip` are left out; with `only`, so is every file whose
  base name is not in it. Each file appears under its name only when complete.
  """
  prefix = url.rstrip("/") + "/"
  names = []
  for path in find_files(url):
    name = path[len(prefix):]
    base = name.rsplit("/", 1)[-1]
    if base in skip or (only is not None and base not in only):
      continue
    target = os.path.join(local_dir, *name.split("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with atomic_path(target) as part, open_read(path) as source, open(part, "wb") as out:
      with reported(path, "read"):
        shutil.copyfileobj(source, out, 8 << 20)
    names.append(name)
  return sorted(names)


def upload_tree(local_dir: str, url: str, *, skip: tuple[str, ...] = (),
                last: tuple[str, ...] = ()) -> list[str]:
  """Copies every finished file under `local_dir` to `url`; returns the relative names.

  Files whose base name is in `skip` stay, and so do files being written (`.part`,
  `.tmp`). Files whose base name is in `last` go after all others, in that order: a
  progress marker is never in the store before what it describes.
  """
  paths = [
      os.path.join(directory, base)
      for directory, _, files in os.walk(local_dir)
      for base in files
      if base not in skip and not _is_partial(base)
  ]
  order = {base: i for i, base in enumerate(last)}
  paths.sort(key=lambda p: (order.get(os.path.basename(p), -1), p))
  names = []
  for path in paths:
    name = os.path.relpath(path, local_dir).replace(os.sep, "/")
    if is_url(url):
      _upload(path, join(url, name))
    else:
      _copy_local(path, join(url, name))
    names.append(name)
  return sorted(names)


def _is_partial(name: str) -> bool:
  """A file some writer has not finished (`atomic_path`'s, `create_exclusive`'s)."""
  return name.endswith((PART_SUFFIX, ".tmp")) or PART_SUFFIX + "." in name


def _copy_local(source: str, destination: str) -> None:
  os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
  with atomic_path(destination) as part:
    shutil.copyfile(source, part)


def check_writable(directory: str) -> None:
  """Writes and deletes a small probe, so an unreachable endpoint, a missing bucket,
  missing credentials or an uninstalled file system fail before any work, location named.

  Raises:
    StorageError: the location cannot be written.
  """
  created = not is_url(directory) and not os.path.exists(directory)
  probe = join(directory, ".eegmobile-write-probe")
  try:
    with reported(directory, "write"):
      make_dirs(directory)
      write_bytes(probe, b"probe")
      delete([probe])
  except StorageError as e:  # named as the location asked for, not the probe in it
    raise StorageError(str(e).replace(probe, directory)) from e
  if created:
    os.rmdir(directory)  # whoever writes there creates it when it has something to put
