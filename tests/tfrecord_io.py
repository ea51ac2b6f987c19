"""Test support: reading TFRecord files back without TensorFlow, and framing one record.

The build only writes TFRecords (`tfrecords.writer`); tests read them back here, checking
both CRCs of every record, to compare shards byte for byte.
"""

import gzip
import struct
from typing import Iterator

from tfrecords import writer


def frame(record: writer.Record) -> bytes:
  """One record in TFRecord framing, as `writer.write_tfrecord` writes it."""
  return b"".join(writer.frame_pieces(record))


def read_tfrecord(path: str, compression: str = "") -> Iterator[bytes]:
  """Reads records back, verifying both CRCs.

  Args:
    path: a TFRecord file.
    compression: "" or "GZIP".

  Yields:
    Each record's bytes, in file order.

  Raises:
    ValueError: a truncated record or a CRC mismatch (names the file and offset).
  """
  opener = gzip.open if compression == "GZIP" else open
  with opener(path, "rb") as f:
    offset = 0
    while True:
      header = f.read(12)
      if not header:
        return
      if len(header) < 12:
        raise ValueError(f"{path}: truncated record header at byte {offset}")
      (length,), (length_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
      if writer.masked_crc32c(header[:8]) != length_crc:
        raise ValueError(f"{path}: corrupt length at byte {offset}")
      body = f.read(length + 4)
      if len(body) < length + 4:
        raise ValueError(f"{path}: truncated record at byte {offset}")
      if writer.masked_crc32c(body[:length]) != struct.unpack("<I", body[length:])[0]:
        raise ValueError(f"{path}: corrupt record at byte {offset}")
      yield body[:length]
      offset += 12 + length + 4
