"""Object-store file systems for reading builds: importing tensorflow-io registers them.

TensorFlow itself reads local paths and gs://; tensorflow-io adds s3://, hdfs://, az://
and http:// to `tf.io.gfile` and `tf.data.TFRecordDataset`.
"""

_registered = False


def register() -> None:
  """Imports tensorflow_io once so that its file systems are registered with TensorFlow."""
  global _registered
  if not _registered:
    import tensorflow_io  # pylint: disable=g-import-not-at-top,unused-import
    _registered = True


def schemes() -> list[str]:
  """URL schemes TensorFlow can open after `register()` (e.g. ['s3', 'hdfs', ...])."""
  register()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  found = []
  for scheme in ("s3", "hdfs", "az", "http", "gs"):
    try:
      tf.io.gfile.exists(f"{scheme}://eegmobile-probe-bucket/none")
      found.append(scheme)
    except tf.errors.UnimplementedError:
      pass
    except Exception:  # pylint: disable=broad-except
      found.append(scheme)  # registered, but the probe could not reach it (offline)
  return found
