"""Object-store file systems for reading builds: importing tensorflow-io registers them.

TensorFlow itself reads local paths, gs:// and ram://; tensorflow-io adds s3://, hdfs://,
az://, http(s):// and others to `tf.io.gfile` and `tf.data.TFRecordDataset`. Its S3 file
system is configured by environment variables: S3_ENDPOINT (with its scheme, e.g.
http://127.0.0.1:9000; AWS_ENDPOINT_URL is ignored), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, and S3_USE_HTTPS / S3_VERIFY_SSL for plain http.

A process that used tensorflow-io's S3 file system aborts when it exits ("pure virtual
method called", status 134; tensorflow/io#2039): the AWS SDK is torn down in the wrong
order. `exits_cleanly` wraps an entry point's main so that such a process ends with its
real exit status instead.
"""

import functools
import os
import sys
import traceback

_registered = False
_object_store_used = False


def register(path: str = "") -> None:
  """Imports tensorflow_io once so that its file systems are registered with TensorFlow.

  Args:
    path: the location about to be read; a URL marks this process as one that must
      leave through `exits_cleanly`.
  """
  global _registered, _object_store_used
  _object_store_used = _object_store_used or "://" in path
  if not _registered:
    import tensorflow_io  # pylint: disable=g-import-not-at-top,unused-import
    _registered = True


def schemes() -> list[str]:
  """URL schemes TensorFlow can open after `register()`, e.g. ['s3', 'hdfs', ...]."""
  register()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(s for s in tf.io.gfile.get_registered_schemes() if s)


def object_store_used() -> bool:
  return _object_store_used


def exits_cleanly(main):
  """Wraps an absl main: after an object store was read, exit with main's status at once.

  Output is flushed first; what is skipped is the process teardown that aborts. Use it on
  entry points only: it ends the process.
  """

  @functools.wraps(main)
  def wrapped(argv):
    try:
      status = main(argv)
    except SystemExit as e:
      status = e.code
    except BaseException:  # pylint: disable=broad-except
      if not _object_store_used:
        raise
      traceback.print_exc()
      status = 1
    if not _object_store_used:
      return status
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status if isinstance(status, int) else 0 if status is None else 1)  # pylint: disable=protected-access

  return wrapped
