"""A trainer workdir that is a local path or an s3:// URL, behind one small interface.

For an s3:// workdir each worker trains in a local scratch mirror
(~/.cache/eegmobile/workdirs/<hash of the URL>/<pid>-XXXX/, deleted when the worker
succeeds), downloads what exists for a fold before resuming it and uploads the fold's
files back; run records are created once with a conditional put (If-None-Match "*"), so
two workers cannot both create them. Endpoint and credentials are boto3's standard
settings (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL);
tensorflow-io's S3_ENDPOINT is accepted as the endpoint when AWS_ENDPOINT_URL is unset, so
the settings that read a build from S3 also reach the workdir.
Only local paths and s3:// URLs are workdirs; other schemes (gs://) are refused.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
from typing import Iterator, Optional

CACHE_ROOT = os.path.join(os.path.expanduser("~"), ".cache", "eegmobile", "workdirs")


class WorkdirError(ValueError):
  """An unusable workdir: unsupported scheme, unreachable store, missing bucket or access."""


def is_s3(path: str) -> bool:
  return path.startswith("s3://")


def check(workdir: str) -> None:
  """Refuses workdirs of schemes other than local paths and s3://.

  Raises:
    WorkdirError: e.g. a gs:// workdir.
  """
  if "://" in workdir and not is_s3(workdir):
    raise WorkdirError(f"{workdir}: only local paths and s3:// URLs are supported as workdirs "
                       "(builds may be read from other stores; train into s3:// or a local "
                       "path)")


def split(url: str) -> tuple[str, str]:
  """(bucket, key) of an s3:// URL."""
  bucket, _, key = url[len("s3://"):].partition("/")
  return bucket, key


def client():
  """A boto3 S3 client from the standard AWS settings (and S3_ENDPOINT)."""
  import boto3  # pylint: disable=g-import-not-at-top
  endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT") or None
  return boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION"))


def mirror(url: str, root: Optional[str] = None) -> str:
  """The local scratch directory that mirrors an s3:// workdir."""
  digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
  return os.path.join(root or CACHE_ROOT, digest)


def scratch(url: str, root: Optional[str] = None) -> str:
  """A new local directory of this process under the mirror of `url` (workers may share a host)."""
  base = mirror(url, root)
  os.makedirs(base, exist_ok=True)
  return tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base)


def remove_scratch(path: str) -> None:
  """Deletes this process's scratch directory, and its URL's mirror once no scratch is left.

  For when everything in it is in the store; a worker that fails keeps its scratch (its
  errors.log is there), and a killed one cannot remove its own.

  Raises:
    ValueError: `path` is not a scratch directory of this process (`scratch`'s naming).
  """
  if not os.path.basename(path.rstrip(os.sep)).startswith(f"{os.getpid()}-"):
    raise ValueError(f"{path}: not a scratch directory of this process")
  shutil.rmtree(path)
  with contextlib.suppress(OSError):  # another process's scratch is still there
    os.rmdir(os.path.dirname(path.rstrip(os.sep)))


@contextlib.contextmanager
def reported(url: str, action: str) -> Iterator[None]:
  """Turns a boto failure into one WorkdirError line naming the URL and what to check."""
  try:
    yield
  except WorkdirError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    from botocore import exceptions  # pylint: disable=g-import-not-at-top
    if not isinstance(e, (exceptions.BotoCoreError, exceptions.ClientError)):
      raise
    raise WorkdirError(f"{url}: cannot {action} there ({type(e).__name__}: {str(e)[:300]}). "
                       "Check the bucket exists, the endpoint (AWS_ENDPOINT_URL or "
                       "S3_ENDPOINT) answers and the credentials (AWS_ACCESS_KEY_ID/"
                       "AWS_SECRET_ACCESS_KEY) allow it.") from e


def create_exclusive(url: str, text: str) -> bool:
  """Creates the object at `url` holding `text` unless it exists; True when this call did."""
  from botocore import exceptions  # pylint: disable=g-import-not-at-top
  bucket, key = split(url)
  with reported(url, "write"):
    try:
      client().put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
    except exceptions.ClientError as e:
      if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412",
                                                     "ConditionalRequestConflict"):
        return False
      raise
  return True


def read_text(url: str) -> Optional[str]:
  """The object's text, or None when there is none."""
  from botocore import exceptions  # pylint: disable=g-import-not-at-top
  bucket, key = split(url)
  with reported(url, "read"):
    try:
      return client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except exceptions.ClientError as e:
      if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
        return None
      raise


def download(url: str,
             local_dir: str,
             skip: tuple[str, ...] = (),
             only: Optional[tuple[str, ...]] = None) -> list[str]:
  """Copies every object under the prefix `url` into `local_dir`; returns the relative names.

  Objects whose base name is in `skip` (e.g. the claim) are left out; with `only`, so is
  every object whose base name is not in it (e.g. the folds' results without checkpoints).
  """
  bucket, prefix = split(url.rstrip("/") + "/")
  names = []
  with reported(url, "read"):
    s3 = client()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
      for item in page.get("Contents", []):
        name = item["Key"][len(prefix):]
        base = name.rsplit("/", 1)[-1]
        if base in skip or (only is not None and base not in only):
          continue
        target = os.path.join(local_dir, *name.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = target + ".download"
        s3.download_file(bucket, item["Key"], partial)
        os.replace(partial, target)  # never a half-downloaded file under its real name
        names.append(name)
  return sorted(names)


def upload(local_dir: str, url: str, skip: tuple[str, ...] = (),
           last: tuple[str, ...] = ()) -> list[str]:
  """Copies every file under `local_dir` to the prefix `url`; returns the relative names.

  Files whose base name is in `skip` (e.g. the claim, which has its own protocol) stay.
  Files whose base name is in `last` go after all others, in that order: a progress marker
  (state.json) is never in the store before the checkpoint it describes.
  """
  bucket, prefix = split(url.rstrip("/") + "/")
  paths = [
      os.path.join(directory, base)
      for directory, _, files in os.walk(local_dir)
      for base in files
      if base not in skip and not base.endswith((".download", ".tmp", ".part"))
  ]
  order = {base: i for i, base in enumerate(last)}
  paths.sort(key=lambda p: (order.get(os.path.basename(p), -1), p))
  names = []
  with reported(url, "write"):
    s3 = client()
    for path in paths:
      name = os.path.relpath(path, local_dir).replace(os.sep, "/")
      s3.upload_file(path, bucket, prefix + name)
      names.append(name)
  return sorted(names)
