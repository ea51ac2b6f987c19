"""tf.data builders over a build directory: the functions other projects import.

    from tfrecords import datasets
    train = datasets.make_dataset("out/sleep-edf-20", ["SC00", "SC01"], training=True)
    for images, labels in train: ...   # [16, 224, 224, 3] float32 in 0..255, [16] int32

Images come out in 0..255 RGB (the colour map applied to the stored index), which is what
Keras' MobileNetV3 expects with its built-in `include_preprocessing` rescaling. The shard
list, image size and compression come from the build's manifest. Object-store locations
(s3://, hdfs://, ...) work once tensorflow-io's file systems are registered, which
happens automatically for any path with a scheme.
"""

from typing import Optional, Sequence, Union

import tensorflow as tf

from tfrecords import colormaps
from tfrecords import filesystems
from tfrecords import manifest as manifest_lib
from tfrecords import schema

AUTOTUNE = tf.data.AUTOTUNE
_PARSE_BATCH = 256  # records parsed per vectorised parse call


def num_examples(build_dir: str, subjects: Sequence[str], *, allow_incomplete: bool = False) -> int:
  """Examples held by the given subjects (for steps per epoch)."""
  manifest = manifest_lib.load_manifest(build_dir, allow_incomplete=allow_incomplete)
  return manifest_lib.num_examples(manifest, subjects)


def _records(files: list[str], compression: str, training: bool) -> tf.data.Dataset:
  if training:
    # Parallel reads across shards; order is irrelevant because we shuffle anyway.
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression, buffer_size=1 << 22),
        cycle_length=min(len(files), 8),
        num_parallel_calls=AUTOTUNE,
        deterministic=False)
  # Evaluation: shards in manifest order, records in file order, so output order is stable.
  return tf.data.TFRecordDataset(files, compression, buffer_size=1 << 22)


def colorize(indices: tf.Tensor, color: str = "viridis", dtype: tf.DType = tf.float32) -> tf.Tensor:
  """uint8 colour-map indices [..., H, W] -> RGB [..., H, W, 3] in 0..255 of `dtype`."""
  table = tf.constant(colormaps.lookup_table(color) * 255.0, dtype=dtype)
  return tf.gather(table, tf.cast(indices, tf.int32))


def make_dataset(build_dir: str,
                 subjects: Sequence[str],
                 *,
                 training: bool,
                 batch_size: int = 16,
                 color: Optional[str] = "viridis",
                 cache: Union[str, None] = "memory",
                 shuffle_buffer: int = 4096,
                 seed: Optional[int] = 0,
                 with_metadata: bool = False,
                 output_dtype: tf.DType = tf.float32,
                 drop_remainder: Optional[bool] = None,
                 allow_incomplete: bool = False) -> tf.data.Dataset:
  """Batches of (images, labels[, metadata]) for the given subjects of a build.

  Args:
    build_dir: a build's output directory (local path or object-store URL).
    subjects: subject ids to read, e.g. ["SC00", "SC01"].
    training: shuffle (re-shuffled every epoch) and read shards in parallel; otherwise
      examples come in file order (subject, night, epoch).
    batch_size: examples per batch.
    color: "viridis" (the paper's look), "grey", or None: yield the stored uint8 colour-map
      indices [B, H, W] and let the model apply the colour map on the accelerator
      (`ModelConfig.input_colormap`); the fastest way to feed a GPU.
    cache: "memory", a file path prefix (tf.data's file cache), or None / "none".
    shuffle_buffer: examples in the shuffle buffer (each ~50 KB at 224x224).
    seed: shuffle seed (None: different every run).
    with_metadata: also yield a dict with subject, night, epoch_index, onset_seconds, record.
    output_dtype: image dtype. float32 (default); float16 halves the bytes for mixed
      precision; uint8 RGB quarters them (the backbone's own rescaling casts it) and is
      the fastest to feed (bench/input_pipeline.py).
    drop_remainder: default: True when training (static batch shape), False otherwise.
    allow_incomplete: read a build some of whose recordings failed.

  Returns:
    A tf.data.Dataset of (images [B, H, W, 3], labels int32 [B]) or, with metadata,
    (images, labels, metadata); images are uint8 [B, H, W] indices when color is None.

  Raises:
    FileNotFoundError, ValueError: no usable manifest; KeyError: unknown subject.
  """
  if "://" in build_dir:
    filesystems.register()
  manifest = manifest_lib.load_manifest(build_dir, allow_incomplete=allow_incomplete)
  files = manifest_lib.shard_paths(build_dir, manifest, subjects)
  height, width = manifest["image"]["height"], manifest["image"]["width"]
  ds = _records(files, manifest["compression"], training)
  # Parse many records per call: the vectorised parse is far cheaper than one per record.
  ds = ds.batch(_PARSE_BATCH).map(lambda s: schema.decode_batch(s, height, width, with_metadata),
                                  num_parallel_calls=AUTOTUNE).unbatch()
  if cache and cache != "none":
    # Cache the uint8 images (50 KB each), not float RGB (600 KB each): 42k epochs fit in RAM.
    ds = ds.cache() if cache == "memory" else ds.cache(cache)
  if training:
    # Shuffle after the cache, so every epoch is reshuffled without re-reading files.
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  drop = training if drop_remainder is None else drop_remainder
  ds = ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=AUTOTUNE)

  def finish(example):
    # Colour map per batch, after batching: one gather per batch instead of per image.
    images = (colorize(example[schema.IMAGE], color, output_dtype)
              if color else example[schema.IMAGE])
    if with_metadata:
      return images, example[schema.LABEL], {k: example[k] for k in schema.METADATA_KEYS}
    return images, example[schema.LABEL]

  # Keep the next batches ready while the accelerator works on this one.
  return ds.map(finish, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
