"""Tests for tfrecords.writer (byte-identical to TensorFlow's writer, GZIP, records in pieces)
and for the test reader tests.tfrecord_io (corruption and truncation are detected)."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf

from tests import tfrecord_io
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
  assert list(tfrecord_io.read_tfrecord(path, compression)) == _RECORDS


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
    list(tfrecord_io.read_tfrecord(path))


def test_truncation_is_detected(tmp_path):
  path = str(tmp_path / "shard")
  writer.write_tfrecord(path, _RECORDS)
  os.truncate(path, os.path.getsize(path) - 3)
  with pytest.raises(ValueError, match="truncated"):
    list(tfrecord_io.read_tfrecord(path))


def _in_pieces(record: bytes):
  """A record as writer pieces: bytes, a read-only uint8 array, bytes."""
  middle = np.frombuffer(record[3:-5], np.uint8)  # frombuffer of bytes: read-only
  return (record[:3], middle, record[-5:])


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_records_in_pieces_write_the_same_bytes(tmp_path, compression):
  records = [b"x" * 9, bytes(range(256)) * 200, b"hello world" * 100]
  whole, pieces = str(tmp_path / "whole"), str(tmp_path / "pieces")
  writer.write_tfrecord(whole, records, compression)
  assert writer.write_tfrecord(pieces, [_in_pieces(r) for r in records], compression) == 3
  assert open(whole, "rb").read() == open(pieces, "rb").read()
  assert [tfrecord_io.frame(_in_pieces(r)) for r in records
         ] == [tfrecord_io.frame(r) for r in records]
  read = [r.numpy() for r in tf.data.TFRecordDataset(pieces, compression_type=compression)]
  assert read == records


def test_unknown_compression_is_refused_before_the_file_is_made(tmp_path):
  path = tmp_path / "shard"
  with pytest.raises(ValueError, match="compression must be"):
    writer.write_tfrecord(str(path), _RECORDS, "ZLIB")
  assert not path.exists()


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_writing_to_a_stream_gives_the_bytes_of_the_file_writer(tmp_path, compression):
  records = [b"a" * 10, (b"head", np.arange(7, dtype=np.uint8), b"tail"), b""]
  path = str(tmp_path / "f.tfrecord")
  writer.write_tfrecord(path, records, compression)
  stream = io.BytesIO()
  assert writer.write_records(stream, records, compression) == 3
  assert not stream.closed and stream.getvalue() == open(path, "rb").read()
