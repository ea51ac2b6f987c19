"""tf.data builders over a build directory: the functions other projects import.

    from tfrecords import datasets
    info = datasets.dataset_info("out/sleep-edf-20", ["SC00", "SC01"])
    train = datasets.make_dataset("out/sleep-edf-20", ["SC00", "SC01"], training=True)
    for images, labels in train: ...   # [16, 224, 224, 3] float32 in 0..255, [16] int32

Images come out as RGB in 0..255 (the colour map applied to the stored index), not in
0..1: Keras' MobileNetV3 with `include_preprocessing=True` (what `eegmobile.model` builds)
rescales 0..255 input itself, so scaling here as well would squash the input twice.

The pipeline, and why each step is where it is:

    shards -> parse 256 records per call -> cache (uint8 indices) -> shuffle -> batch
           -> colour lookup per batch -> prefetch
    without a cache: shards -> shuffle records -> batch -> parse the batch -> colour -> prefetch

Shards are read in parallel when training and in file order otherwise; the cache holds the
1-byte colour-map indices (a 224x224 epoch is 50 KB; as float RGB it would be 602 KB, and
Sleep-EDF-78's ~195k epochs would need 117 GB); shuffling after the cache reshuffles every
epoch without re-reading; the colour lookup runs once per batch, XLA-compiled (a plain
`tf.gather` of 3 floats per pixel is the slowest step on a CPU). bench/input_pipeline.py
measures all of it. The shard list, image size and compression come from the manifest.
Object-store locations (s3://, hdfs://, ...) work: any path with a scheme registers
tensorflow-io's file systems first.
"""

import dataclasses
import hashlib
import json
import os
import posixpath
from typing import Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from tfrecords import colormaps
from tfrecords import filesystems
from tfrecords import manifest as manifest_lib
from tfrecords import schema

AUTOTUNE = tf.data.AUTOTUNE
_PARSE_BATCH = 256  # records per vectorised parse call
_READ_BUFFER = 8 << 20  # bytes buffered per open shard: large sequential reads
# Shards read at once when training: enough to overlap reads with parsing; 8 streams read
# less well from disk than 4 (bench/input_pipeline.py, 2 cores: ~0.6 vs ~0.7-0.8 of a raw read).
_MAX_PARALLEL_READS = 4


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a set of subjects of a build holds, from its manifest (nothing is read).

  Attributes:
    subjects: the subject ids, in the order given.
    num_examples: epochs (examples) they hold.
    image_height, image_width: stored image size.
    compression: "" or "GZIP".
    stages: stage names by label index.
    class_counts: examples per label index.
    shards: shard paths, in reading order for evaluation.
  """
  subjects: tuple[str, ...]
  num_examples: int
  image_height: int
  image_width: int
  compression: str
  stages: tuple[str, ...]
  class_counts: tuple[int, ...]
  shards: tuple[str, ...]

  def steps_per_epoch(self, batch_size: int, *, drop_remainder: bool = True) -> int:
    """Batches in one pass (training drops the remainder by default)."""
    if drop_remainder:
      return self.num_examples // batch_size
    return -(-self.num_examples // batch_size)

  def class_weights(self) -> dict[int, float]:
    """{label: n / (classes * count)} ("balanced", as scikit-learn); 0 for absent classes."""
    classes = len(self.class_counts)
    return {
        label: self.num_examples / (classes * count) if count else 0.0
        for label, count in enumerate(self.class_counts)
    }


def _check_subjects(subjects: Sequence[str]) -> tuple[str, ...]:
  if isinstance(subjects, str):
    raise TypeError(f"subjects must be a sequence of ids, got the string {subjects!r}")
  subjects = tuple(subjects)
  if not subjects:
    raise ValueError("no subjects given")
  if len(set(subjects)) != len(subjects):
    raise ValueError(f"subjects repeated: {subjects}")
  return subjects


def _load(build_dir: str, allow_incomplete: bool) -> dict:
  if "://" in build_dir:
    filesystems.register()
  return manifest_lib.load_manifest(build_dir, allow_incomplete=allow_incomplete)


def dataset_info(build_dir: str,
                 subjects: Optional[Sequence[str]] = None,
                 *,
                 allow_incomplete: bool = False) -> DatasetInfo:
  """Sizes and class counts of some subjects of a build (steps per epoch, class weights).

  Args:
    build_dir: a build's output directory (local path or object-store URL).
    subjects: subject ids; None: all of the build's subjects.
    allow_incomplete: accept a build some of whose recordings failed.

  Returns:
    A DatasetInfo.

  Raises:
    FileNotFoundError, ValueError: no usable manifest; KeyError: unknown subject.
  """
  manifest = _load(build_dir, allow_incomplete)
  subjects = _check_subjects(manifest_lib.subjects(manifest) if subjects is None else subjects)
  shards = manifest_lib.shard_paths(build_dir, manifest, subjects)
  stages = tuple(manifest["stages"])
  counts = [0] * len(stages)
  for subject_id in subjects:
    for stage, count in manifest["subjects"][subject_id]["class_counts"].items():
      counts[stages.index(stage)] += count
  return DatasetInfo(subjects=subjects,
                     num_examples=manifest_lib.num_examples(manifest, subjects),
                     image_height=manifest["image"]["height"],
                     image_width=manifest["image"]["width"],
                     compression=manifest["compression"],
                     stages=stages,
                     class_counts=tuple(counts),
                     shards=tuple(shards))


def num_examples(build_dir: str, subjects: Sequence[str], *, allow_incomplete: bool = False) -> int:
  """Examples held by the given subjects (for steps per epoch)."""
  return dataset_info(build_dir, subjects, allow_incomplete=allow_incomplete).num_examples


def color_table(color: str = "viridis", dtype: tf.DType = tf.float32) -> np.ndarray:
  """A colour map's (256, 3) RGB table in 0..255, as the numpy type of `dtype`.

  Floating types hold the exact `table * 255`; uint8 holds matplotlib's bytes
  (`cmap(i, bytes=True)`, truncated), i.e. the pixels of the paper's PNG images.

  Raises:
    ValueError: unknown colour map, or a dtype that is neither floating nor uint8.
  """
  dtype = tf.as_dtype(dtype)
  table = colormaps.lookup_table(color).astype(np.float64) * 255.0
  if dtype == tf.uint8:
    return table.astype(np.uint8)
  if not dtype.is_floating:
    raise ValueError(f"output dtype must be floating or uint8, got {dtype.name}")
  return table.astype(dtype.as_numpy_dtype)


@tf.function(jit_compile=True)
def _gather_xla(table: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  # XLA compiles the lookup to one tight loop: 3-5x tf.gather's per-index copies on a CPU.
  return tf.gather(table, tf.cast(indices, tf.int32))


_xla_works: Optional[bool] = None


def _xla_available() -> bool:
  """Whether this TensorFlow XLA-compiles the lookup, eagerly and in tf.data (tried once)."""
  global _xla_works
  if _xla_works is None:
    with tf.init_scope():  # run eagerly even when called while a tf.data function traces
      try:
        table, indices = tf.zeros([1, 3]), tf.zeros([1], tf.uint8)
        _gather_xla(table, indices).numpy()
        # XLA once worked eagerly but not inside tf.data (tensorflow/tensorflow#47599, 2.4).
        next(iter(tf.data.Dataset.from_tensors(indices).map(lambda i: _gather_xla(table, i))))
        _xla_works = True
      except (tf.errors.OpError, NotImplementedError, ValueError) as e:
        logging.warning("XLA is not usable here (%s); colour lookup falls back to tf.gather", e)
        _xla_works = False
  return _xla_works


def colorize(indices: tf.Tensor,
             color: str = "viridis",
             dtype: tf.DType = tf.float32,
             *,
             jit_compile: bool = True) -> tf.Tensor:
  """uint8 colour-map indices [..., H, W] -> RGB [..., H, W, 3] in 0..255 (see color_table).

  Args:
    indices: stored images (uint8).
    color: "viridis" or "grey".
    dtype: output dtype (floating or uint8).
    jit_compile: XLA-compile the lookup (same values, several times faster on a CPU);
      falls back to tf.gather where XLA is unavailable.

  Returns:
    The coloured images.
  """
  table = tf.constant(color_table(color, dtype))
  if jit_compile and _xla_available():
    return _gather_xla(table, indices)
  return tf.gather(table, tf.cast(indices, tf.int32))


def _records(files: list[str], compression: str, training: bool,
             seed: Optional[int]) -> tf.data.Dataset:
  """Serialized examples of the shards: interleaved when training, in file order otherwise."""
  if not training:
    # Evaluation: shards in manifest order, records in file order: a stable output order.
    return tf.data.TFRecordDataset(files, compression, buffer_size=_READ_BUFFER)
  # Shard order shuffled too: without a cache, each epoch starts from different nights.
  shards = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
  return shards.interleave(
      lambda f: tf.data.TFRecordDataset(f, compression, buffer_size=_READ_BUFFER),
      cycle_length=min(len(files), _MAX_PARALLEL_READS),
      # Parallel reads: shards are read while earlier records are parsed.
      num_parallel_calls=AUTOTUNE,
      # Seeded runs repeat exactly; an unseeded one takes records as they arrive.
      deterministic=seed is not None)


def _cache_file(prefix: str, manifest: dict, subjects: tuple[str, ...], training: bool,
                with_metadata: bool) -> str:
  """`prefix-<key>`: the key names what is cached, so no run reads another's cache."""
  what = {
      "manifest": manifest,
      "subjects": subjects,
      "training": training,
      "with_metadata": with_metadata
  }
  key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
  directory = posixpath.dirname(prefix) if "://" in prefix else os.path.dirname(prefix)
  if directory:
    tf.io.gfile.makedirs(directory)  # tf.data's file cache fails on a missing directory
  return f"{prefix}-{key}"


def make_dataset(build_dir: str,
                 subjects: Sequence[str],
                 *,
                 training: bool,
                 batch_size: int = 16,
                 color: Optional[str] = "viridis",
                 cache: Optional[str] = "memory",
                 shuffle_buffer: int = 4096,
                 seed: Optional[int] = 0,
                 with_metadata: bool = False,
                 output_dtype: tf.DType = tf.float32,
                 drop_remainder: Optional[bool] = None,
                 allow_incomplete: bool = False) -> tf.data.Dataset:
  """Batches of (images, labels[, metadata]) for the given subjects of a build.

  Args:
    build_dir: a build's output directory (local path or object-store URL).
    subjects: subject ids to read, e.g. ["SC00", "SC01"]; only their shards are opened.
    training: shuffle (reshuffled every epoch) and read shards in parallel; otherwise
      examples come in file order (subjects as given, then night, then epoch).
    batch_size: examples per batch.
    color: "viridis" (the paper's look), "grey", or None: yield the stored uint8 colour-map
      indices [B, H, W] and let the model apply the colour map on the accelerator
      (`ModelConfig.input_colormap`); the least host work and the fewest bytes to move.
    cache: "memory"; a file path prefix (tf.data's file cache, e.g. on an SSD or HDD:
      files `<prefix>-<key>.*`, the key naming the build, subjects and fields cached, so a
      cache is reused only for the same data); or None / "none". The cache holds uint8
      indices: about 50 KB an epoch at 224x224.
    shuffle_buffer: examples in the shuffle buffer (training only).
    seed: shuffle seed; the same seed gives the same order in every run (None: a
      different order every run, and shards read as they arrive).
    with_metadata: also yield a dict of subject, night, epoch_index, onset_seconds, record.
    output_dtype: RGB image dtype: float32 (default); float16 or bfloat16 for mixed
      precision; uint8 (matplotlib's RGB bytes; the backbone casts and rescales it).
      Ignored when color is None.
    drop_remainder: default: True when training (static batch shape), False otherwise
      (every example evaluated).
    allow_incomplete: read a build some of whose recordings failed.

  Returns:
    A tf.data.Dataset of (images [B, H, W, 3] in 0..255, labels int32 [B]) or, with
    metadata, (images, labels, metadata); images are uint8 [B, H, W] indices when color is
    None.

  Raises:
    FileNotFoundError, ValueError: no usable manifest, no or repeated subjects, unknown
      colour map or dtype; KeyError: a subject not in the build.
  """
  subjects = _check_subjects(subjects)
  manifest = _load(build_dir, allow_incomplete)
  files = manifest_lib.shard_paths(build_dir, manifest, subjects)
  height, width = manifest["image"]["height"], manifest["image"]["width"]
  if color is not None:
    color_table(color, output_dtype)  # unknown colour or dtype: fail here, not mid-epoch
  records = _records(files, manifest["compression"], training, seed)
  drop = training if drop_remainder is None else drop_remainder

  def decode(serialized):
    batch = schema.decode_batch(serialized, height, width, with_metadata)
    # Keep the static batch size (drop_remainder) that decode_batch's reshape loses.
    batch[schema.IMAGE] = tf.ensure_shape(batch[schema.IMAGE], [serialized.shape[0], height, width])
    return batch

  if cache is None or cache == "none":
    if training:
      # No cache to shuffle after: shuffle the serialized records as they are read.
      records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    # Parse whole output batches: nothing runs per example between reading and batching
    # (bench/input_pipeline.py: ~15% less CPU than parse -> unbatch -> batch).
    ds = records.batch(batch_size, drop_remainder=drop).map(decode, num_parallel_calls=AUTOTUNE)
  else:
    # Parse many records per call: the vectorised parse is far cheaper than one per record.
    ds = records.batch(_PARSE_BATCH).map(decode, num_parallel_calls=AUTOTUNE).unbatch()
    if cache == "memory":
      # Cache the uint8 indices, not float RGB (12x smaller): all of Sleep-EDF-20 is ~2 GB.
      ds = ds.cache()
    else:
      ds = ds.cache(_cache_file(cache, manifest, subjects, training, with_metadata))
    if training:
      # Shuffle after the cache, so that every epoch is reshuffled without re-reading files.
      ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=AUTOTUNE)

  def finish(example):
    # Colour map after batching: one lookup per batch, and the cache stays 1 byte a pixel.
    images = example[schema.IMAGE]
    if color is not None:
      images = colorize(images, color, output_dtype)
    if with_metadata:
      return images, example[schema.LABEL], {k: example[k] for k in schema.METADATA_KEYS}
    return images, example[schema.LABEL]

  # Prefetch: the next batches are made while the model works on this one.
  return ds.map(finish, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
