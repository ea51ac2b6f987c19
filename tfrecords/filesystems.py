"""Object-store file systems for reading builds: importing tensorflow-io registers them.

TensorFlow itself reads local paths, gs:// and ram://; tensorflow-io adds s3://, hdfs://,
az://, http(s):// and others to `tf.io.gfile` and `tf.data.TFRecordDataset`.
"""

_registered = False


def register() -> None:
  """Imports tensorflow_io once so that its file systems are registered with TensorFlow."""
  global _registered
  if not _registered:
    import tensorflow_io  # pylint: disable=g-import-not-at-top,unused-import
    _registered = True


def schemes() -> list[str]:
  """URL schemes TensorFlow can open after `register()`, e.g. ['s3', 'hdfs', ...]."""
  register()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(s for s in tf.io.gfile.get_registered_schemes() if s)
