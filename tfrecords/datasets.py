"""tf.data builders over a build directory: the functions other projects import.

    from tfrecords import datasets
    info = datasets.dataset_info("out/sleep-edf-20", ["SC00", "SC01"])
    train = datasets.make_dataset("out/sleep-edf-20", ["SC00", "SC01"], training=True)
    for images, labels in train: ...   # [16, 224, 224, 3] float32 in 0..255, [16] int32

Images come out as RGB in 0..255 (the colour map applied to the stored index), not in
0..1: Keras' MobileNetV3 with `include_preprocessing=True` (what `eegmobile.model` builds)
rescales 0..255 input itself, so scaling here as well would squash the input twice.

Training shuffles in one of two ways (`shuffle`):

    "full" (default):  shards, in file order -> parse 256 records per call -> one uint8
        array of all examples, in memory, read once;
        each epoch: a uniform random permutation of the example indices -> batch
        -> gather the batch -> colour lookup per batch -> prefetch
    "stream", for data that does not fit in memory:
        shards, 4 at a time -> parse 256 records per call -> cache (uint8 indices: memory
        or a file) -> shuffle buffer -> batch -> colour lookup per batch -> prefetch
      without a cache: shards -> shuffle records -> batch -> parse the batch -> colour
        -> prefetch

A full permutation makes every batch a uniform random sample of all training examples,
as Keras' `fit(shuffle=True)` on in-memory arrays does; a shuffle buffer only mixes the
nights being read, so streamed batches hold examples of few nights. Evaluation reads in
file order. What is held is the 1-byte colour-map indices (a 224x224 epoch is 50 KB; as
float RGB it would be 602 KB, and Sleep-EDF-78's ~195k epochs would need 117 GB); the
colour lookup runs once per batch, XLA-compiled (a plain `tf.gather` of 3 floats per pixel
is slow on a CPU). bench/input_pipeline.py measures all of it. The shard list, image size
and compression come from the manifest. Object-store locations (s3://, or any scheme
`eegmobile.storage` reads) work in any program: their shards are streamed through the
storage layer (`writer.read_records`), not through a TensorFlow file-system plugin, so a
program that read them exits normally.
"""

import dataclasses
import gzip
import hashlib
import json
import os
from typing import Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from eegmobile import colormaps
from eegmobile import storage
from tfrecords import manifest as manifest_lib
from tfrecords import schema
from tfrecords import writer

AUTOTUNE = tf.data.AUTOTUNE
_PARSE_BATCH = 256  # records per vectorised parse call
SHUFFLE_MODES = ("full", "stream")  # see make_dataset
_Store = dict[str, tf.Variable]  # field name -> all examples' values, in file order
_READ_BUFFER = 8 << 20  # bytes buffered per open shard: large sequential reads
# Shards read at once when streaming: enough to overlap reads with parsing, few enough to
# keep each read sequential on a disk (bench/input_pipeline.py compares counts).
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
  return manifest_lib.load_manifest(build_dir, allow_incomplete=allow_incomplete)


def dataset_info(build_dir: str,
                 subjects: Optional[Sequence[str]] = None,
                 *,
                 allow_incomplete: bool = False) -> DatasetInfo:
  """Sizes and class counts of some subjects of a build (e.g. for steps per epoch).

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


def color_table(color: str = "viridis", dtype: tf.DType = tf.float32) -> np.ndarray:
  """A colour map's read-only (256, 3) RGB table in 0..255 (`colormaps.rgb_table`).

  Floating types hold `table * 255`; uint8 holds matplotlib's bytes (`cmap(i, bytes=True)`,
  truncated), i.e. the pixels of the paper's PNG images.

  Args:
    color: "viridis" or "grey".
    dtype: a TensorFlow dtype, floating or uint8; the table has its numpy type.

  Raises:
    ValueError: unknown colour map, or a dtype that is neither floating nor uint8.
  """
  dtype = tf.as_dtype(dtype)
  if dtype != tf.uint8 and not dtype.is_floating:
    raise ValueError(f"output dtype must be floating or uint8, got {dtype.name}")
  return colormaps.rgb_table(color, dtype.as_numpy_dtype)


@tf.function(jit_compile=True)
def _gather_xla(table: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  # XLA compiles the lookup to one tight loop, where tf.gather copies index by index.
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
    jit_compile: XLA-compile the lookup (same values, faster on a CPU: BUILD_NOTES.md);
      falls back to tf.gather where XLA is unavailable.

  Returns:
    The coloured images.
  """
  table = tf.constant(color_table(color, dtype))
  if jit_compile and _xla_available():
    return _gather_xla(table, indices)
  return tf.gather(table, tf.cast(indices, tf.int32))


def _decoder(height: int, width: int, with_metadata: bool):
  """serialized [B] -> {image uint8 [B, H, W], label [B], metadata...}."""

  def decode(serialized):
    batch = schema.decode_batch(serialized, height, width, with_metadata)
    # Keep the static batch size (drop_remainder) that decode_batch's reshape loses.
    batch[schema.IMAGE] = tf.ensure_shape(batch[schema.IMAGE], [serialized.shape[0], height, width])
    return batch

  return decode


def _streamed(path: bytes, compression: bytes):
  """Serialized examples of one shard read through `eegmobile.storage` (a store URL)."""
  name = path.decode()
  with storage.open_read(name) as raw:
    stream = gzip.GzipFile(fileobj=raw) if compression == b"GZIP" else raw
    yield from writer.read_records(stream, name)


def _shard_reader(files: list[str], compression: str):
  """path tensor -> its serialized examples: TensorFlow's reader for local files, the
  storage layer's stream for object-store URLs (no TensorFlow file-system plugin)."""
  if not any(storage.is_url(f) for f in files):
    return lambda path: tf.data.TFRecordDataset(path, compression, buffer_size=_READ_BUFFER)
  return lambda path: tf.data.Dataset.from_generator(
      _streamed, args=(path, compression), output_signature=tf.TensorSpec([], tf.string))


def _records(files: list[str], compression: str, training: bool,
             seed: Optional[int]) -> tf.data.Dataset:
  """Serialized examples of the shards: interleaved when training, in file order otherwise."""
  read = _shard_reader(files, compression)
  if not training:
    # Evaluation: shards in manifest order, records in file order: a stable output order.
    return tf.data.Dataset.from_tensor_slices(files).flat_map(read)
  # Shard order shuffled too: without a cache, each epoch starts from different nights.
  shards = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
  return shards.interleave(
      read,
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
  if storage.is_url(prefix):
    raise ValueError(f"cache {prefix}: a file cache must be a local path")
  if storage.parent(prefix):
    storage.make_dirs(storage.parent(prefix))  # tf.data's file cache fails on a missing directory
  return f"{prefix}-{key}"


def _uncached_batches(records: tf.data.Dataset, decode, batch_size: int, drop: bool, training: bool,
                      shuffle_buffer: int, seed: Optional[int]) -> tf.data.Dataset:
  """Batches parsed straight from the records, every pass reading the shards."""
  if training:
    # No cache to shuffle after: shuffle the serialized records as they are read.
    records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  # Parse whole output batches: nothing runs per example between reading and batching.
  return records.batch(batch_size, drop_remainder=drop).map(decode, num_parallel_calls=AUTOTUNE)


def _cached_batches(records: tf.data.Dataset, decode, cache_file: Optional[str], batch_size: int,
                    drop: bool, training: bool, shuffle_buffer: int,
                    seed: Optional[int]) -> tf.data.Dataset:
  """Batches from tf.data's cache (memory when cache_file is None), filled by the 1st pass."""
  # Parse many records per call: the vectorised parse is far cheaper than one per record.
  ds = records.batch(_PARSE_BATCH).map(decode, num_parallel_calls=AUTOTUNE).unbatch()
  # Cache the uint8 indices, not float RGB (12x smaller): all of Sleep-EDF-20 is ~2 GB.
  ds = ds.cache() if cache_file is None else ds.cache(cache_file)
  if training:
    # Shuffle after the cache, so that every epoch is reshuffled without re-reading files.
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  return ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=AUTOTUNE)


def _shard_counts(build_dir: str, manifest: dict, subjects: tuple[str, ...]) -> list[tuple]:
  """[(shard path, examples the manifest says it holds)], in subject then night order."""
  counts = {r["shard"]: r["num_examples"] for r in manifest["recordings"]}
  out = []
  for subject_id in subjects:
    names = manifest["subjects"][subject_id]["shards"]
    out.extend(
        zip(manifest_lib.shard_paths(build_dir, manifest, [subject_id]),
            (counts[name] for name in names)))
  return out


def _empty_store(num_examples: int, height: int, width: int, with_metadata: bool) -> _Store:
  """Zero-filled CPU variables for every field: the one copy that `_load_examples` fills."""
  n = num_examples
  shapes = {schema.IMAGE: ([n, height, width], tf.uint8), schema.LABEL: ([n], tf.int32)}
  if with_metadata:
    kinds = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
    shapes.update({k: ([n], kinds[schema.FEATURES[k]]) for k in schema.METADATA_KEYS})
  # Variables, not tensors: a tf.data function captures a variable by handle, where it would
  # copy a tensor into its graph as a constant (protos stop at 2 GB).
  return {key: tf.Variable(tf.zeros(*spec), trainable=False) for key, spec in shapes.items()}


def _parsed_chunks(paths: list[str], compression: str, decode) -> tf.data.Dataset:
  """(shard number, parsed chunk of up to `_PARSE_BATCH` examples), in file order.

  No chunk spans two shards, so each shard's count can be checked.
  """

  read = _shard_reader(paths, compression)

  def shard_chunks(path, number):
    return read(path).batch(_PARSE_BATCH).map(lambda chunk: (number, chunk))

  numbered = tf.data.Dataset.from_tensor_slices((paths, tf.range(len(paths))))
  chunks = numbered.flat_map(shard_chunks)
  # Parallel parse, in order; prefetch: the next chunks are parsed while this one is stored.
  return chunks.map(lambda number, records: (number, decode(records)),
                    num_parallel_calls=AUTOTUNE).prefetch(2)


def _load_examples(shards: list[tuple], compression: str, decode, store: _Store) -> None:
  """Fills `store` with every example of the shards, in file order, a chunk at a time.

  Raises:
    ValueError: a shard holds more or fewer examples than the manifest says.
  """
  paths, expected = zip(*shards)
  counts = [0] * len(shards)
  stop = 0
  for number, chunk in _parsed_chunks(list(paths), compression, decode):
    number, count = int(number), len(chunk[schema.LABEL])
    counts[number] += count
    if counts[number] > expected[number]:
      raise ValueError(f"{paths[number]}: holds more than the {expected[number]} examples the "
                       "manifest says")
    rows = tf.range(stop, stop + count)
    for key, variable in store.items():
      # Scatter, not slice assignment: a slice assignment copies the whole variable.
      variable.scatter_update(tf.IndexedSlices(chunk[key], rows))
    stop += count
  for path, want, got in zip(paths, expected, counts):
    if got != want:
      raise ValueError(f"{path}: holds {got} examples, the manifest says {want}")


def _permuted_batches(store: _Store, num_examples: int, batch_size: int, drop: bool,
                      seed: Optional[int]) -> tf.data.Dataset:
  """Batches of a uniform random permutation of all examples, redrawn every epoch.

  The permutation of the k-th pass is a stateless function of (seed, k): the same in every
  process, whatever TensorFlow's global seed (`tf.random.set_seed`, which Keras'
  `set_random_seed` calls, changes what a seeded `Dataset.shuffle` draws).
  """
  passes = tf.Variable(0, dtype=tf.int64, trainable=False)  # counts the passes begun
  # Unseeded: a key from the OS for this dataset. tf.random.shuffle's own seed would follow
  # TensorFlow's global seed where one is set (Keras' set_random_seed, another test), and two
  # "unseeded" datasets then drew the same order.
  key = tf.constant([int.from_bytes(os.urandom(7), "little") if seed is None else seed], tf.int64)

  def permutation(_):
    return tf.random.experimental.stateless_shuffle(tf.range(num_examples, dtype=tf.int64),
                                                    seed=tf.concat([key, [passes.assign_add(1)]],
                                                                   0))

  # Shuffling the indices (8 bytes each) rather than the examples keeps it cheap.
  order = tf.data.Dataset.from_tensors(0).map(permutation).unbatch()
  # Batch the indices, then gather each field's rows at once.
  return order.batch(batch_size, drop_remainder=drop).map(lambda rows: {
      key: tf.gather(variable, rows) for key, variable in store.items()
  },
                                                          num_parallel_calls=AUTOTUNE)


def _full_permutation(build_dir: str, manifest: dict, subjects: Sequence[str], decode,
                      batch_size: int, drop: bool, seed: Optional[int],
                      with_metadata: bool) -> tf.data.Dataset:
  """Reads the subjects once into memory; each epoch is then a new uniform permutation."""
  shards = _shard_counts(build_dir, manifest, subjects)
  total = sum(count for _, count in shards)
  height, width = manifest["image"]["height"], manifest["image"]["width"]
  # Eagerly, even when called while a function traces; on the CPU, where tf.data runs (a
  # GPU's memory is for the model).
  with tf.init_scope(), tf.device("/CPU:0"):
    store = _empty_store(total, height, width, with_metadata)
    _load_examples(shards, manifest["compression"], decode, store)
  logging.info("holding %d examples (%.2f GB of images) for a full permutation", total,
               total * height * width / 1e9)
  return _permuted_batches(store, total, batch_size, drop, seed)


def _shuffle_mode(shuffle: str, training: bool, cache: Optional[str]) -> Optional[str]:
  """"full", "stream", or None (evaluation: file order); see make_dataset's `shuffle`."""
  if shuffle not in SHUFFLE_MODES:
    raise ValueError(f"shuffle must be one of {SHUFFLE_MODES}, got {shuffle!r}")
  if not training:
    return None
  if shuffle == "full" and cache != "memory":
    # cache=None or a file cache says the data is not to be held in memory: stream it.
    logging.warning(
        "shuffle='full' needs cache='memory' (it holds every example in memory); "
        "with cache=%r training streams: interleaved shards and a shuffle buffer", cache)
    return "stream"
  return shuffle


def _finish(ds: tf.data.Dataset, color: Optional[str], output_dtype: tf.DType,
            with_metadata: bool) -> tf.data.Dataset:
  """Batches of fields -> (images, labels[, metadata]), coloured, prefetched."""

  def finish(example):
    # Colour map after batching: one lookup per batch, and what is held stays 1 byte a pixel.
    images = example[schema.IMAGE]
    if color is not None:
      images = colorize(images, color, output_dtype)
    if with_metadata:
      return images, example[schema.LABEL], {k: example[k] for k in schema.METADATA_KEYS}
    return images, example[schema.LABEL]

  # Prefetch: the next batches are made while the model works on this one.
  return ds.map(finish, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def make_dataset(build_dir: str,
                 subjects: Sequence[str],
                 *,
                 training: bool,
                 batch_size: int = 16,
                 color: Optional[str] = "viridis",
                 cache: Optional[str] = "memory",
                 shuffle: str = "full",
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
    training: shuffle (reshuffled every epoch, see `shuffle`); otherwise examples come in
      file order (subjects as given, then night, then epoch).
    batch_size: examples per batch.
    color: "viridis" (the paper's look), "grey", or None: yield the stored uint8 colour-map
      indices [B, H, W] and let the model apply the colour map on the accelerator
      (`ModelConfig.input_colormap`); the least host work and the fewest bytes to move.
    cache: "memory"; a file path prefix (tf.data's file cache, e.g. on an SSD or HDD:
      files `<prefix>-<key>.*`, the key naming the build, subjects and fields cached, so a
      cache is reused only for the same data); or None / "none". What is held is the uint8
      indices: about 50 KB an epoch at 224x224.
    shuffle: how training shuffles. "full": this call reads all the subjects' examples into
      memory once (one uint8 copy of the images, plus labels and metadata), and every
      epoch is a uniform random permutation of all of them, as Keras' `fit(shuffle=True)`
      on arrays; it needs cache="memory", and with any other cache training streams
      instead (logged). "stream": for data that does not fit in memory: up to 4 shards
      read at once, then a `shuffle_buffer`-example buffer (after the cache, if any), so
      a batch holds examples of the few nights being read.
    shuffle_buffer: examples in the shuffle buffer ("stream" only).
    seed: shuffle seed; the same seed gives the same sequence of epochs in every run and
      process (None: a different order every run, and streamed shards read as they arrive).
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
      colour map, dtype or shuffle mode, a shard whose example count differs from the
      manifest's ("full"); KeyError: a subject not in the build.
  """
  subjects = _check_subjects(subjects)
  manifest = _load(build_dir, allow_incomplete)
  if color is not None:
    color_table(color, output_dtype)  # unknown colour or dtype: fail here, not mid-epoch
  mode = _shuffle_mode(shuffle, training, cache)
  drop = training if drop_remainder is None else drop_remainder
  decode = _decoder(manifest["image"]["height"], manifest["image"]["width"], with_metadata)
  if mode == "full":
    ds = _full_permutation(build_dir, manifest, subjects, decode, batch_size, drop, seed,
                           with_metadata)
  else:
    records = _records(manifest_lib.shard_paths(build_dir, manifest, subjects),
                       manifest["compression"], training, seed)
    if cache is None or cache == "none":
      ds = _uncached_batches(records, decode, batch_size, drop, training, shuffle_buffer, seed)
    else:
      cache_file = None if cache == "memory" else _cache_file(cache, manifest, subjects, training,
                                                              with_metadata)
      ds = _cached_batches(records, decode, cache_file, batch_size, drop, training, shuffle_buffer,
                           seed)
  return _finish(ds, color, output_dtype, with_metadata)
