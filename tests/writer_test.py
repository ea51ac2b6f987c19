"""Tests for tfrecords.writer: byte-identical to TensorFlow's writer, GZIP, corruption."""

import os

import pytest
import tensorflow as tf

from tfrecords import writer

_RECORDS = [b"", b"a", b"hello world" * 100, bytes(range(256)) * 7]


def test_uncompressed_bytes_equal_tensorflows_writer(tmp_path):
  ours, theirs = tmp_path / "ours", tmp_path / "theirs"
  assert writer.write_tfrecord(str(ours), _RECORDS) == len(_RECORDS)
  with tf.io.TFRecordWriter(str(theirs)) as w:
    for r in _RECORDS:
      w.write(r)
  assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_tensorflow_reads_back_what_we_write(tmp_path, compression):
  path = str(tmp_path / "shard")
  writer.write_tfrecord(path, _RECORDS, compression)
  read = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]
  assert read == _RECORDS
  assert list(writer.read_tfrecord(path, compression)) == _RECORDS


def test_gzip_output_is_deterministic(tmp_path):
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  writer.write_tfrecord(a, _RECORDS, "GZIP")
  writer.write_tfrecord(b, _RECORDS, "GZIP")
  assert open(a, "rb").read() == open(b, "rb").read()


def test_corruption_is_detected_and_names_the_file(tmp_path):
  path = str(tmp_path / "shard")
  writer.write_tfrecord(path, _RECORDS)
  data = bytearray(open(path, "rb").read())
  data[30] ^= 0xFF
  open(path, "wb").write(bytes(data))
  with pytest.raises(ValueError, match="shard: corrupt"):
    list(writer.read_tfrecord(path))


def test_truncation_is_detected(tmp_path):
  path = str(tmp_path / "shard")
  writer.write_tfrecord(path, _RECORDS)
  os.truncate(path, os.path.getsize(path) - 3)
  with pytest.raises(ValueError, match="truncated"):
    list(writer.read_tfrecord(path))
