"""TFRecord framing without TensorFlow: length, masked CRC32C, payload, masked CRC32C.

Optional GZIP wraps the whole framed stream, as TensorFlow's GZIP TFRecord option does;
the gzip header carries no file name or time, so output bytes depend only on the records.
"""

import gzip
import io
import struct
from typing import BinaryIO, Iterable, Iterator

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC32C of data."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
  """One record in TFRecord framing."""
  length = struct.pack("<Q", len(record))
  return (length + struct.pack("<I", masked_crc32c(length)) + record +
          struct.pack("<I", masked_crc32c(record)))


def write_tfrecord(path: str, records: Iterable[bytes], compression: str = "") -> int:
  """Writes records to a new TFRecord file at path. Returns the number written.

  Args:
    path: destination (overwritten).
    records: serialized examples.
    compression: "" or "GZIP".
  """
  count = 0
  with open(path, "wb") as raw:
    stream: BinaryIO = raw
    if compression == "GZIP":
      stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
    elif compression:
      raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
    buffer = io.BufferedWriter(stream, buffer_size=1 << 20) if compression else stream
    for record in records:
      buffer.write(frame(record))
      count += 1
    buffer.flush()
    if compression:
      stream.close()
  return count


def read_tfrecord(path: str, compression: str = "") -> Iterator[bytes]:
  """Reads records back, verifying both CRCs.

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
      if masked_crc32c(header[:8]) != length_crc:
        raise ValueError(f"{path}: corrupt length at byte {offset}")
      body = f.read(length + 4)
      if len(body) < length + 4:
        raise ValueError(f"{path}: truncated record at byte {offset}")
      if masked_crc32c(body[:length]) != struct.unpack("<I", body[length:])[0]:
        raise ValueError(f"{path}: corrupt record at byte {offset}")
      yield body[:length]
      offset += 12 + length + 4
