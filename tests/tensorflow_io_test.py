"""tensorflow-io with this TensorFlow, and the readers on a build at a URL."""

import functools
import http.server
import os
import threading

import pytest
import tensorflow as tf

from eegmobile import storage
from tests import fakes
from tfrecords import datasets
from tfrecords import manifest as manifest_lib
from tfrecords import writer


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  """Serves files without logging each request."""

  def log_message(self, *args):
    pass


def test_tensorflow_io_registers_its_file_systems_with_this_tensorflow():
  import tensorflow_io  # pylint: disable=import-outside-toplevel,unused-import
  assert {"hdfs", "az", "http"} <= set(tf.io.gfile.get_registered_schemes())


def test_tensorflow_io_file_system_really_reads_with_this_tensorflow(tmp_path):
  """tensorflow-io's compiled http file system, loaded into this TensorFlow, reads a
  TFRecord file from a local server: a TensorFlow / tensorflow-io pair that does not
  fit fails here rather than on a cluster."""
  records = [b"first", b"second" * 100, b""]
  writer.write_tfrecord(str(tmp_path / "night.tfrecord"), records)
  handler = functools.partial(_QuietHandler, directory=str(tmp_path))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    import tensorflow_io  # pylint: disable=import-outside-toplevel,unused-import
    url = f"http://127.0.0.1:{server.server_port}/night.tfrecord"
    assert tf.io.gfile.exists(url)
    assert tf.io.gfile.stat(url).length == os.path.getsize(tmp_path / "night.tfrecord")
    assert [r.numpy() for r in tf.data.TFRecordDataset(url)] == records
  finally:
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_readers_stream_a_url_build_through_the_storage_layer(tmp_path, compression):
  pytest.importorskip("fsspec")
  fakes.make_fake_build(str(tmp_path),
                        subjects=("SC00", "SC01"),
                        epochs_per_night=4,
                        image_size=8,
                        compression=compression)
  url = f"memory://eegmobile-test-build-{compression or 'none'}"
  storage.upload_tree(str(tmp_path), url)
  manifest = manifest_lib.load_manifest(url)
  assert manifest_lib.shard_paths(url, manifest, ["SC01"])[0].startswith(url + "/")
  labels = [
      l for _, batch in datasets.make_dataset(url, ["SC01"], training=False, batch_size=3)
      for l in batch.numpy()
  ]
  assert labels == [0, 1, 2, 3] * 2
