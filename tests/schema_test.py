"""Tests for tfrecords.schema: the hand-written encoding is what TensorFlow parses."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecords import schema

_EXAMPLE = dict(label=3,
                subject="SC07",
                night=2,
                epoch_index=1234,
                onset_seconds=37020.0,
                record="SC4072E0")


def _image(h=6, w=5, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)


def test_tensorflow_parses_every_field_back():
  image = _image()
  proto = tf.train.Example.FromString(schema.encode_example(image=image, **_EXAMPLE))
  features = proto.features.feature
  assert set(features) == set(schema.FEATURES)
  assert features[schema.IMAGE].bytes_list.value[0] == image.tobytes()
  assert features[schema.HEIGHT].int64_list.value[0] == 6
  assert features[schema.WIDTH].int64_list.value[0] == 5
  assert features[schema.LABEL].int64_list.value[0] == 3
  assert features[schema.SUBJECT].bytes_list.value[0] == b"SC07"
  assert features[schema.NIGHT].int64_list.value[0] == 2
  assert features[schema.EPOCH_INDEX].int64_list.value[0] == 1234
  assert features[schema.ONSET].float_list.value[0] == 37020.0
  assert features[schema.RECORD].bytes_list.value[0] == b"SC4072E0"


def test_encoding_is_deterministic_and_matches_the_protobuf_library_semantically():
  image = _image(seed=1)
  ours = schema.encode_example(image=image, **_EXAMPLE)
  assert ours == schema.encode_example(image=image.copy(), **_EXAMPLE)
  reparsed = tf.train.Example.FromString(ours)
  assert tf.train.Example.FromString(reparsed.SerializeToString()) == reparsed


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**40, -1, -(2**40)])
def test_int64_varints_round_trip(value):
  proto = tf.train.Example.FromString(
      schema.encode_example(image=_image(), **{
          **_EXAMPLE, "epoch_index": value
      }))
  assert proto.features.feature[schema.EPOCH_INDEX].int64_list.value[0] == value


def test_decode_eagerly_and_inside_tf_data_agree():
  images = [_image(seed=s) for s in range(4)]
  serialized = [
      schema.encode_example(image=im, **{
          **_EXAMPLE, "epoch_index": i
      }) for i, im in enumerate(images)
  ]
  eager = schema.decode_batch(tf.constant(serialized), 6, 5, with_metadata=True)
  in_data = next(
      iter(
          tf.data.Dataset.from_tensor_slices(serialized).batch(4).map(
              lambda s: schema.decode_batch(s, 6, 5, with_metadata=True))))
  for decoded in (eager, in_data):
    np.testing.assert_array_equal(decoded[schema.IMAGE].numpy(), np.stack(images))
    assert decoded[schema.LABEL].dtype == tf.int32
    np.testing.assert_array_equal(decoded[schema.EPOCH_INDEX].numpy(), [0, 1, 2, 3])
    assert decoded[schema.SUBJECT].numpy().tolist() == [b"SC07"] * 4
  single = schema.decode_example(tf.constant(serialized[2]), 6, 5)
  np.testing.assert_array_equal(single[schema.IMAGE].numpy(), images[2])


def test_decode_rejects_a_wrong_image_size():
  serialized = schema.encode_example(image=_image(), **_EXAMPLE)
  with pytest.raises(tf.errors.InvalidArgumentError):
    schema.decode_example(tf.constant(serialized), 7, 5)


def test_encode_rejects_non_uint8_images():
  with pytest.raises(ValueError, match="uint8"):
    schema.encode_example(image=np.zeros((4, 4), np.float32), **_EXAMPLE)


def test_parts_join_to_the_example_and_share_the_images_memory():
  images = np.stack([_image(seed=s) for s in range(3)])  # one array, as a night's images
  head, pixels, rest = schema.encode_example_parts(image=images[1], **_EXAMPLE)
  assert b"".join([head, pixels, rest]) == schema.encode_example(image=images[1].copy(), **_EXAMPLE)
  assert np.shares_memory(pixels, images) and not pixels.flags.writeable
  assert pixels.dtype == np.uint8 and pixels.shape == (images[1].size,)
  # A non-contiguous image is copied into a contiguous one, with the same bytes.
  strided = np.asfortranarray(images[2])
  assert b"".join(schema.encode_example_parts(image=strided, **_EXAMPLE)) == (schema.encode_example(
      image=images[2], **_EXAMPLE))
