"""The one definition of an epoch's TFRecord example: keys, encoding, parse spec, decoding.

Each example is one 30 s epoch of one night:

| key            | type   | what                                                           |
| -------------- | ------ | -------------------------------------------------------------- |
| image          | bytes  | height*width uint8 colour-map indices, row-major; row 0 is the |
|                |        | highest frequency (low frequency at the bottom, as plotted)    |
| image/height   | int64  | rows                                                           |
| image/width    | int64  | columns                                                        |
| label          | int64  | stage index into `eegmobile.stages.STAGES` (W N1 N2 N3 REM)    |
| subject        | bytes  | subject id, e.g. b"SC00"                                       |
| night          | int64  | night number within the subject (1 or 2)                       |
| epoch_index    | int64  | index of the epoch in the night (onset = index * 30 s)         |
| onset_seconds  | float  | epoch onset from the start of the PSG, seconds                 |
| record         | bytes  | source recording name, e.g. b"SC4001E0"                        |

Encoding is written out by hand (the protobuf wire format of `tf.train.Example`, fields in
the fixed order above) so that the writer needs no TensorFlow and the same inputs always
give the same bytes; `schema_test` checks that TensorFlow parses it back exactly.
TensorFlow is imported only by the decoding functions (lazily: the build's workers write
records without it, and it is slow to import: BUILD_NOTES.md "Start-up").
"""

import functools
import struct
from typing import Any

import numpy as np

IMAGE = "image"
HEIGHT = "image/height"
WIDTH = "image/width"
LABEL = "label"
SUBJECT = "subject"
NIGHT = "night"
EPOCH_INDEX = "epoch_index"
ONSET = "onset_seconds"
RECORD = "record"

# key -> kind, in encoding order. Kinds: "bytes", "int64", "float".
FEATURES: dict[str, str] = {
    IMAGE: "bytes",
    HEIGHT: "int64",
    WIDTH: "int64",
    LABEL: "int64",
    SUBJECT: "bytes",
    NIGHT: "int64",
    EPOCH_INDEX: "int64",
    ONSET: "float",
    RECORD: "bytes",
}
METADATA_KEYS: tuple[str, ...] = (SUBJECT, NIGHT, EPOCH_INDEX, ONSET, RECORD)


def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # negative int64 -> two's complement, as protobuf does
  out = bytearray()
  while True:
    byte = value & 0x7F
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _len_field(field_number: int, payload: bytes) -> bytes:
  return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _header(field_number: int, length: int) -> bytes:
  return _varint(field_number << 3 | 2) + _varint(length)


def _feature(kind: str, value: Any) -> bytes:
  if kind == "bytes":
    return _len_field(1, _len_field(1, value))  # Feature.bytes_list{value}
  if kind == "float":
    return _len_field(2, _len_field(1, struct.pack("<f", value)))  # packed FloatList
  return _len_field(3, _len_field(1, _varint(int(value))))  # packed Int64List


def _entry(key: str, feature: bytes) -> bytes:
  return _len_field(1, _len_field(1, key.encode()) + _len_field(2, feature))


# Keys whose value differs between the epochs of a night; the other entries are encoded
# once per value and reused (a night's ~1,000 examples share them).
_PER_EPOCH = frozenset({EPOCH_INDEX, ONSET})


@functools.lru_cache(maxsize=1024)
def _shared_entry(key: str, value: Any) -> bytes:
  return _entry(key, _feature(FEATURES[key], value))


@functools.lru_cache(maxsize=16)
def _image_entry_header(num_bytes: int) -> bytes:
  """The image's map entry up to its first byte: key, then nested length headers."""
  bytes_list = len(_header(1, num_bytes)) + num_bytes
  feature = len(_header(1, bytes_list)) + bytes_list
  key = _len_field(1, IMAGE.encode())
  entry = len(key) + len(_header(2, feature)) + feature
  return _header(1, entry) + key + _header(2, feature) + _header(1, bytes_list) + _header(
      1, num_bytes)


def encode_example_parts(*, image: np.ndarray, label: int, subject: str, night: int,
                         epoch_index: int, onset_seconds: float,
                         record: str) -> tuple[bytes, np.ndarray, bytes]:
  """Serializes one epoch as a `tf.train.Example`, in three pieces, the image not copied.

  `b"".join(pieces)` is the serialized example (`encode_example`); `tfrecords.writer`
  frames and writes the pieces as they are, so the ~50 KB image is copied once, into the
  file, instead of three or four times (each copy into fresh memory costs page faults).

  Args:
    image: (height, width) uint8 colour-map indices.
    label: stage index (0..4).
    subject: subject id, e.g. "SC00".
    night: night number.
    epoch_index: index of the epoch within the night.
    onset_seconds: epoch onset from the start of the PSG.
    record: source recording name.

  Returns:
    (bytes before the image, the image's bytes as a read-only flat uint8 view, bytes after).

  Raises:
    ValueError: image is not a 2-D uint8 array.
  """
  if image.dtype != np.uint8 or image.ndim != 2:
    raise ValueError(f"image must be a 2-D uint8 array, got {image.dtype} {image.shape}")
  values = {
      HEIGHT: image.shape[0],
      WIDTH: image.shape[1],
      LABEL: label,
      SUBJECT: subject.encode(),
      NIGHT: night,
      EPOCH_INDEX: epoch_index,
      ONSET: onset_seconds,
      RECORD: record.encode(),
  }
  pixels = np.ascontiguousarray(image).reshape(-1).view()
  pixels.flags.writeable = False  # a view: nobody may change the example under the writer
  entry = _image_entry_header(pixels.nbytes)
  rest = b"".join(
      _entry(key, _feature(kind, values[key])) if key in
      _PER_EPOCH else _shared_entry(key, values[key])
      for key, kind in FEATURES.items()
      if key != IMAGE)
  size = len(entry) + pixels.nbytes + len(rest)
  return _header(1, size) + entry, pixels, rest  # Example.features{feature map entries}


def encode_example(*, image: np.ndarray, label: int, subject: str, night: int, epoch_index: int,
                   onset_seconds: float, record: str) -> bytes:
  """Serializes one epoch as a `tf.train.Example` (arguments: see encode_example_parts).

  Raises:
    ValueError: image is not a 2-D uint8 array.
  """
  head, pixels, rest = encode_example_parts(image=image,
                                            label=label,
                                            subject=subject,
                                            night=night,
                                            epoch_index=epoch_index,
                                            onset_seconds=onset_seconds,
                                            record=record)
  return b"".join([head, pixels, rest])


def night_examples(night) -> list[tuple[bytes, np.ndarray, bytes]]:
  """The examples of a built night (`eegmobile.nights.Night`), in epoch order.

  Returns:
    One `encode_example_parts` triple per epoch (the images are views of the night's
    array, not copies): `tfrecords.writer` writes them as they are, and
    `b"".join(pieces)` is an example's bytes.
  """
  recording = night.recording
  return [
      encode_example_parts(image=image,
                           label=int(label),
                           subject=recording.subject_id,
                           night=recording.night,
                           epoch_index=int(index),
                           onset_seconds=float(onset),
                           record=recording.record) for image, label, index, onset in zip(
                               night.images, night.labels, night.epoch_indices, night.onsets)
  ]


def parse_spec() -> dict:
  """The `tf.io.parse_example` spec for every key."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  # lazy: module docstring
  dtype = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
  return {key: tf.io.FixedLenFeature([], dtype[kind]) for key, kind in FEATURES.items()}


def decode_batch(serialized,
                 image_height: int,
                 image_width: int,
                 with_metadata: bool = False) -> dict:
  """Decodes a batch of serialized examples (a 1-D string tensor).

  Returns:
    {"image": uint8 [batch, height, width], "label": int32 [batch]} plus the
    metadata keys when `with_metadata`.

  Raises:
    tf.errors.InvalidArgumentError: (when run) an image is not height x width.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  # lazy: module docstring
  parsed = tf.io.parse_example(serialized, parse_spec())
  # decode_raw would silently pad or cut an image of another size: check the stored shape.
  checks = [
      tf.debugging.assert_equal(parsed[HEIGHT],
                                tf.constant(image_height, tf.int64),
                                message="image height differs from the expected"),
      tf.debugging.assert_equal(parsed[WIDTH],
                                tf.constant(image_width, tf.int64),
                                message="image width differs from the expected")
  ]
  with tf.control_dependencies(checks):
    images = tf.io.decode_raw(parsed[IMAGE], tf.uint8)
  out = {
      IMAGE: tf.reshape(images, [-1, image_height, image_width]),
      LABEL: tf.cast(parsed[LABEL], tf.int32)
  }
  if with_metadata:
    out.update({key: parsed[key] for key in METADATA_KEYS})
  return out


def decode_example(serialized,
                   image_height: int,
                   image_width: int,
                   with_metadata: bool = False) -> dict:
  """Decodes one serialized example (a scalar string tensor); see `decode_batch`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  # lazy: module docstring
  batch = decode_batch(tf.reshape(serialized, [1]), image_height, image_width, with_metadata)
  return {key: value[0] for key, value in batch.items()}
