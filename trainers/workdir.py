"""A trainer workdir that is a local path or an s3:// URL: its scratch mirror.

For an s3:// workdir each worker trains in a local scratch mirror
(~/.cache/eegmobile/workdirs/<hash of the URL>/<pid>-XXXX/, deleted when the worker
succeeds), downloads what exists for a fold before resuming it and uploads the fold's
files back (`eegmobile.storage.download_tree` / `upload_tree`); run records are created
once (`storage.create_exclusive`: a conditional put), so two workers cannot both create
them. Endpoint and credentials: `eegmobile.storage`'s convention (the standard AWS
variables). Only local paths and s3:// URLs are workdirs; other schemes are refused.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
from typing import Optional

from eegmobile import storage

CACHE_ROOT = os.path.join(os.path.expanduser("~"), ".cache", "eegmobile", "workdirs")


class WorkdirError(ValueError):
  """An unusable workdir: unsupported scheme, unreachable store, missing bucket or access."""


def is_remote(workdir: str) -> bool:
  """An s3:// workdir (trained in a local mirror)."""
  return storage.scheme(workdir) == "s3"


def check(workdir: str) -> None:
  """Refuses workdirs of schemes other than local paths and s3://.

  Raises:
    WorkdirError: e.g. a gs:// workdir.
  """
  if storage.is_url(workdir) and not is_remote(workdir):
    raise WorkdirError(f"{workdir}: only local paths and s3:// URLs are supported as workdirs "
                       "(builds may be read from other stores; train into s3:// or a local "
                       "path)")


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
