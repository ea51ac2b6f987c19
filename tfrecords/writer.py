"""TFRecord framing without TensorFlow: length, masked CRC32C, payload, masked CRC32C.

Optional GZIP wraps the whole framed stream, as TensorFlow's GZIP TFRecord option does;
the gzip header carries no file name or time, so output bytes depend only on the records.
`read_records` reads the framing back (what `tfrecords.datasets` uses for shards in an
object store, streamed through `eegmobile.storage`), checking both CRCs.
"""

import gzip
import io
import struct
from typing import BinaryIO, Iterable, Iterator, Sequence, Union

import google_crc32c
import numpy as np

_MASK_DELTA = 0xA282EAD8
# A record: its bytes, or its bytes in pieces (e.g. `schema.encode_example_parts`), each
# bytes or a read-only flat uint8 array, written one after the other without joining.
Record = Union[bytes, Sequence[Union[bytes, np.ndarray]]]


def _mask(crc: int) -> int:
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC32C of data."""
  return _mask(google_crc32c.value(data))


def _pieces(record: Record) -> Sequence[Union[bytes, np.ndarray]]:
  return (record,) if isinstance(record, (bytes, bytearray)) else record


def frame_pieces(record: Record) -> list:
  """One record in TFRecord framing, as pieces to write in order (the payload not copied)."""
  pieces = _pieces(record)
  length = struct.pack("<Q", sum(p.nbytes if isinstance(p, np.ndarray) else len(p) for p in pieces))
  crc = 0
  for piece in pieces:
    crc = google_crc32c.extend(crc, piece)
  return [length, struct.pack("<I", masked_crc32c(length)), *pieces, struct.pack("<I", _mask(crc))]


def write_records(stream: BinaryIO, records: Iterable[Record], compression: str = "") -> int:
  """Writes records to an open binary stream (a local file, or an object store's writer).

  Args:
    stream: where the bytes go; it is flushed, not closed.
    records: serialized examples, each as bytes or as pieces (see `Record`).
    compression: "" or "GZIP".

  Returns:
    The number of records written.
  """
  if compression not in ("", "GZIP"):
    raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
  count = 0
  out: BinaryIO = stream
  if compression == "GZIP":
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=stream, mtime=0, compresslevel=6)
    out = io.BufferedWriter(gz, buffer_size=1 << 20)
  for record in records:
    out.writelines(frame_pieces(record))
    count += 1
  out.flush()
  if compression:
    gz.close()  # writes the gzip trailer; leaves `stream` open
  return count


def write_tfrecord(path: str, records: Iterable[Record], compression: str = "") -> int:
  """Writes records to a new local TFRecord file at path. Returns the number written.

  Args:
    path: destination (overwritten).
    records: serialized examples, each as bytes or as pieces (see `Record`).
    compression: "" or "GZIP".
  """
  if compression not in ("", "GZIP"):
    raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
  # A 1 MB buffer: ~20 epochs per write call, and the same memory reused for all of them.
  with open(path, "wb", buffering=1 << 20) as raw:
    return write_records(raw, records, compression)


def read_records(stream: BinaryIO, name: str = "") -> Iterator[bytes]:
  """The records of a TFRecord stream (already decompressed), their CRCs checked.

  Args:
    stream: a binary stream positioned at a record boundary.
    name: the file's name, for errors.

  Raises:
    ValueError: a truncated record or a CRC mismatch (the message names the file and the
      record's number).
  """
  number = 0
  while True:
    header = _read_exactly(stream, 12)
    if not header:
      return
    if len(header) < 12:
      raise ValueError(f"{name}: truncated TFRecord header of record {number}")
    length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
    if masked_crc32c(length_bytes) != length_crc:
      raise ValueError(f"{name}: corrupt length of record {number} (CRC mismatch)")
    (length,) = struct.unpack("<Q", length_bytes)
    data = _read_exactly(stream, length)
    trailer = _read_exactly(stream, 4)
    if len(data) < length or len(trailer) < 4:
      raise ValueError(f"{name}: record {number} is truncated")
    if masked_crc32c(data) != struct.unpack("<I", trailer)[0]:
      raise ValueError(f"{name}: corrupt record {number} (CRC mismatch)")
    yield data
    number += 1


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
  """`size` bytes, fewer only at the end of the stream (network streams return short reads)."""
  chunks, left = [], size
  while left:
    chunk = stream.read(left)
    if not chunk:
      break
    chunks.append(chunk)
    left -= len(chunk)
  return b"".join(chunks)
