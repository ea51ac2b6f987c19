"""Tests for tfrecords.datasets on tiny builds written at test time.

Expected values come from reading the shards without tf.data (tests.tfrecord_io's reader and
the schema's decoder) or from the parameters `tests.fakes` wrote them with.
"""

import collections
import gc
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests import fakes
from tests import tfrecord_io
from eegmobile import colormaps
from tfrecords import datasets
from tfrecords import manifest as manifest_lib
from tfrecords import schema

SUBJECTS = ("SC00", "SC01", "SC02")
SIZE = 16
EPOCHS = 20  # per night; 2 nights per subject


@pytest.fixture(scope="module")
def build(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(directory, subjects=SUBJECTS, epochs_per_night=EPOCHS, image_size=SIZE)
  return directory


def _copy(build_dir: str, tmp_path) -> str:
  """A private copy of a build, for tests that damage or delete its files."""
  return shutil.copytree(build_dir, str(tmp_path / "build"))


def _file_examples(build_dir: str, subjects) -> dict:
  """Every example of the subjects' shards, in file order, read without tf.data."""
  manifest = manifest_lib.load_manifest(build_dir)
  records = [
      record for path in manifest_lib.shard_paths(build_dir, manifest, subjects)
      for record in tfrecord_io.read_tfrecord(path, manifest["compression"])
  ]
  height, width = manifest["image"]["height"], manifest["image"]["width"]
  decoded = schema.decode_batch(tf.constant(records), height, width, with_metadata=True)
  return {key: value.numpy() for key, value in decoded.items()}


def _collect(ds) -> dict:
  """All batches of a (images, labels[, metadata]) dataset, concatenated."""
  out = collections.defaultdict(list)
  for element in ds.as_numpy_iterator():
    out[schema.IMAGE].append(element[0])
    out[schema.LABEL].append(element[1])
    for key, value in (element[2].items() if len(element) == 3 else ()):
      out[key].append(value)
  return {key: np.concatenate(value) for key, value in out.items()}


def _ids(examples: dict) -> list[tuple]:
  return list(zip(examples[schema.SUBJECT], examples[schema.NIGHT], examples[schema.EPOCH_INDEX]))


@pytest.mark.parametrize("cache", ["memory", None])
def test_shapes_dtypes_and_range(build, cache):
  ds = datasets.make_dataset(build, ["SC00"], training=True, batch_size=8, cache=cache)
  # Training drops the remainder: static batch shapes.
  assert ds.element_spec[0].shape == (8, SIZE, SIZE, 3) and ds.element_spec[1].shape == (8,)
  images, labels = next(iter(ds))
  assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == tf.float32
  assert labels.shape == (8,) and labels.dtype == tf.int32
  assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
  assert float(tf.reduce_max(images)) > 1.0  # 0..255, not 0..1
  evaluation = datasets.make_dataset(build, ["SC00"], training=False, batch_size=8, cache=cache)
  assert evaluation.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 3]


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.uint8])
def test_colorize_eagerly_and_inside_tf_data(jit_compile, dtype):
  indices = tf.constant(np.arange(512).reshape(2, 16, 16) % 256, tf.uint8)
  expected = datasets.color_table("viridis", dtype)[indices.numpy()]
  colorize = lambda x: datasets.colorize(x, "viridis", dtype, jit_compile=jit_compile)
  eager = colorize(indices)
  in_data = next(iter(tf.data.Dataset.from_tensors(indices).map(colorize)))
  assert eager.dtype == dtype and eager.shape == (2, 16, 16, 3)
  np.testing.assert_array_equal(eager.numpy(), expected)
  np.testing.assert_array_equal(in_data.numpy(), expected)


def test_without_xla_the_pipeline_gives_the_same_images(build, monkeypatch):
  with_xla = _collect(datasets.make_dataset(build, ["SC00"], training=False))
  monkeypatch.setattr(datasets, "_xla_works", False)  # as where XLA cannot compile
  without = _collect(datasets.make_dataset(build, ["SC00"], training=False))
  np.testing.assert_array_equal(without[schema.IMAGE], with_xla[schema.IMAGE])


def test_a_known_index_maps_to_the_tables_colour_times_255():
  rgb = datasets.colorize(tf.constant([[0, 255]], tf.uint8)).numpy()
  # viridis[0] = (0.267004, 0.004874, 0.329415), viridis[255] = (0.993248, 0.906157, 0.143936).
  np.testing.assert_allclose(rgb[0, 0], [68.08602, 1.24287, 84.000825], rtol=1e-6)
  np.testing.assert_allclose(rgb[0, 1], [253.27824, 231.070035, 36.70368], rtol=1e-6)
  grey = datasets.colorize(tf.constant([[0, 7, 255]], tf.uint8), "grey").numpy()
  np.testing.assert_allclose(grey[0], [[0] * 3, [7] * 3, [255] * 3], atol=1e-4)


def test_uint8_table_holds_matplotlibs_bytes():
  matplotlib = pytest.importorskip("matplotlib")
  reference = matplotlib.colormaps["viridis"](np.arange(256), bytes=True)[:, :3]
  np.testing.assert_array_equal(datasets.color_table("viridis", tf.uint8), reference)


def test_colour_table_refuses_bad_names_and_dtypes():
  with pytest.raises(ValueError, match="unknown colour map 'jet'"):
    datasets.color_table("jet")
  with pytest.raises(ValueError, match="floating or uint8, got int32"):
    datasets.color_table("viridis", tf.int32)


@pytest.mark.parametrize("color", ["viridis", "grey"])
def test_images_are_the_stored_indices_coloured(build, color):
  stored = _file_examples(build, ["SC01"])[schema.IMAGE]
  got = _collect(datasets.make_dataset(build, ["SC01"], training=False, color=color))
  lut = colormaps.lookup_table(color).astype(np.float64) * 255.0
  np.testing.assert_allclose(got[schema.IMAGE], lut[stored], rtol=1e-6, atol=1e-4)
  if color == "grey":
    np.testing.assert_allclose(got[schema.IMAGE][..., 1], stored, atol=1e-4)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.uint8])
def test_output_dtypes(build, dtype):
  images, _ = next(iter(datasets.make_dataset(build, ["SC00"], training=False, output_dtype=dtype)))
  reference, _ = next(iter(datasets.make_dataset(build, ["SC00"], training=False)))
  assert images.dtype == dtype
  # float16 keeps ~3 significant digits, bfloat16 ~2; uint8 truncates.
  np.testing.assert_allclose(tf.cast(images, tf.float32).numpy(), reference.numpy(), atol=1.0)


def test_indices_for_a_colour_map_on_the_device(build):
  images, _ = next(
      iter(datasets.make_dataset(build, ["SC00"], training=False, batch_size=5, color=None)))
  assert images.shape == (5, SIZE, SIZE) and images.dtype == tf.uint8
  np.testing.assert_array_equal(images.numpy(), _file_examples(build, ["SC00"])["image"][:5])


def test_evaluation_order_is_file_order_with_the_metadata_written(build):
  make = lambda: datasets.make_dataset(
      build, ["SC01", "SC00"], training=False, batch_size=7, with_metadata=True, color=None)
  batches = list(make().as_numpy_iterator())
  assert [len(b[1]) for b in batches] == [7] * 11 + [3]  # the remainder is kept
  got, expected = _collect(make()), _file_examples(build, ["SC01", "SC00"])
  for key in expected:
    np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
  # What fakes.make_fake_build wrote: subjects as asked, nights in order, epochs in order.
  epochs = np.tile(np.arange(EPOCHS), 4)
  assert got[schema.SUBJECT].tolist() == [b"SC01"] * 40 + [b"SC00"] * 40
  assert got[schema.NIGHT].tolist() == ([1] * EPOCHS + [2] * EPOCHS) * 2
  np.testing.assert_array_equal(got[schema.EPOCH_INDEX], epochs)
  np.testing.assert_allclose(got[schema.ONSET], 30.0 * epochs)
  assert got[schema.RECORD].tolist() == [
      f"SC4{s}{n}E0".encode() for s in ("01", "00") for n in (1, 2) for _ in range(EPOCHS)
  ]
  np.testing.assert_array_equal(got[schema.LABEL], epochs % 5)
  assert got[schema.LABEL].dtype == np.int32
  again = _collect(make())
  np.testing.assert_array_equal(again[schema.IMAGE], got[schema.IMAGE])


# Training's ways to shuffle: a full permutation, and streaming from a cache or the shards.
MODES = [("memory", "full"), ("memory", "stream"), (None, "stream")]


@pytest.mark.parametrize("cache,shuffle", MODES)
def test_training_shuffles_each_epoch_but_keeps_the_examples(build, cache, shuffle):
  ds = datasets.make_dataset(build, ["SC00", "SC01"],
                             training=True,
                             batch_size=10,
                             cache=cache,
                             shuffle=shuffle,
                             with_metadata=True)
  in_files = _ids(_file_examples(build, ["SC00", "SC01"]))
  first, second = _ids(_collect(ds)), _ids(_collect(ds))
  assert collections.Counter(first) == collections.Counter(second) == collections.Counter(in_files)
  assert len(first) == 80 and first != in_files and second != first


@pytest.mark.parametrize("cache,shuffle", MODES)
def test_training_images_and_labels_stay_together(build, cache, shuffle):
  expected = _file_examples(build, ["SC02"])
  got = _collect(
      datasets.make_dataset(build, ["SC02"],
                            training=True,
                            batch_size=8,
                            cache=cache,
                            shuffle=shuffle,
                            with_metadata=True,
                            color=None))
  where = {key: i for i, key in enumerate(_ids(expected))}
  order = [where[key] for key in _ids(got)]
  for key in expected:
    np.testing.assert_array_equal(got[key], expected[key][order], err_msg=key)


def test_training_drops_the_remainder_and_steps_per_epoch_says_so(build):
  info = datasets.dataset_info(build, ["SC00", "SC01"])
  batches = list(datasets.make_dataset(build, ["SC00", "SC01"], training=True, batch_size=30))
  assert len(batches) == info.steps_per_epoch(30) == 2
  assert all(b[0].shape[0] == 30 for b in batches)
  kept = datasets.make_dataset(build, ["SC00", "SC01"],
                               training=True,
                               batch_size=30,
                               drop_remainder=False)
  assert len(list(kept)) == info.steps_per_epoch(30, drop_remainder=False) == 3


@pytest.mark.parametrize("cache,shuffle", MODES)
def test_a_seed_fixes_the_order_and_none_does_not(build, cache, shuffle):
  order = lambda seed: [
      _ids(_collect(ds)) for ds in [
          datasets.make_dataset(build,
                                list(SUBJECTS),
                                training=True,
                                batch_size=4,
                                seed=seed,
                                cache=cache,
                                shuffle=shuffle,
                                with_metadata=True)
      ] for _ in range(2)
  ]
  assert order(3) == order(3)  # both epochs, in two separately built datasets
  assert order(3) != order(4)
  assert order(None) != order(None)
  tf.random.set_seed(1)  # a global seed (Keras' set_random_seed) leaves unseeded random
  try:
    assert order(None) != order(None)
    assert order(3) == order(3)
  finally:
    tf.random.set_seed(None)


@pytest.mark.parametrize("training", [True, False])
def test_only_the_requested_subjects_files_are_opened(build, tmp_path, training):
  damaged = _copy(build, tmp_path)
  manifest = manifest_lib.load_manifest(damaged)
  for path in manifest_lib.shard_paths(damaged, manifest, ["SC00", "SC01"]):
    with open(path, "wb") as f:
      f.write(b"not a tfrecord file")
  got = _collect(
      datasets.make_dataset(damaged, ["SC02"], training=training, batch_size=8, with_metadata=True))
  assert set(got[schema.SUBJECT]) == {b"SC02"} and len(got[schema.LABEL]) == 40
  with pytest.raises(tf.errors.DataLossError):  # the damage is noticed where it is read
    _collect(datasets.make_dataset(damaged, ["SC00"], training=training))


@pytest.mark.parametrize("cache", ["memory", "file"])
@pytest.mark.parametrize("training", [True, False])
def test_a_cached_pass_reads_no_shards(build, tmp_path, cache, training):
  copy = _copy(build, tmp_path)
  mode = str(tmp_path / "caches" / "new_dir" / "c") if cache == "file" else cache
  ds = datasets.make_dataset(
      copy,
      ["SC00"],
      training=training,
      batch_size=8,  # 40 examples: no remainder dropped
      cache=mode,
      with_metadata=True,
      color=None)
  first = _collect(ds)  # reads the shards and fills the cache
  for name in os.listdir(copy):
    os.remove(os.path.join(copy, name))
  second = _collect(ds)  # reads the cache only
  assert sorted(_ids(first)) == sorted(_ids(second))
  if not training:
    for key in first:
      np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_without_a_cache_every_pass_reads_the_shards(build, tmp_path):
  copy = _copy(build, tmp_path)
  ds = datasets.make_dataset(copy, ["SC00"], training=False, cache=None)
  _collect(ds)
  os.remove(manifest_lib.shard_paths(copy, manifest_lib.load_manifest(copy), ["SC00"])[0])
  with pytest.raises(tf.errors.NotFoundError):
    _collect(ds)
  assert _collect(datasets.make_dataset(build, ["SC00"], training=False, cache="none"))


def test_file_caches_are_named_for_what_they_hold(build, tmp_path):
  prefix = str(tmp_path / "c")
  sc00 = _collect(
      datasets.make_dataset(build, ["SC00"], training=False, cache=prefix, with_metadata=True))
  sc01 = _collect(
      datasets.make_dataset(build, ["SC01"], training=False, cache=prefix, with_metadata=True))
  # Same prefix, other subjects: a cache of its own, never SC00's.
  assert set(sc00[schema.SUBJECT]) == {b"SC00"} and set(sc01[schema.SUBJECT]) == {b"SC01"}
  indexes = sorted(p.name for p in tmp_path.glob("c-*.index"))
  assert len(indexes) == 2
  _collect(datasets.make_dataset(build, ["SC00"], training=False, cache=prefix, with_metadata=True))
  assert sorted(p.name for p in tmp_path.glob("c-*.index")) == indexes  # reused, not rewritten
  _collect(datasets.make_dataset(build, ["SC00"], training=True, cache=prefix))
  assert len(list(tmp_path.glob("c-*.index"))) == 3  # training order and fields differ


def test_gzip_build_reads_the_same_examples(tmp_path):
  plain, gzipped = str(tmp_path / "plain"), str(tmp_path / "gzip")
  for directory, compression in ((plain, ""), (gzipped, "GZIP")):
    fakes.make_fake_build(directory,
                          subjects=("SC00",),
                          epochs_per_night=5,
                          image_size=8,
                          compression=compression)
  shard = manifest_lib.shard_paths(gzipped, manifest_lib.load_manifest(gzipped), ["SC00"])[0]
  with open(shard, "rb") as f:
    assert f.read(2) == b"\x1f\x8b"  # really gzip
  read = lambda d: _collect(
      datasets.make_dataset(d, ["SC00"], training=False, batch_size=3, with_metadata=True))
  got, expected = read(gzipped), read(plain)
  assert got[schema.IMAGE].shape == (10, 8, 8, 3)
  for key in expected:
    np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_unknown_missing_and_repeated_subjects(build):
  with pytest.raises(KeyError, match="subject 'SC99' is not in this build"):
    datasets.make_dataset(build, ["SC00", "SC99"], training=False)
  with pytest.raises(KeyError, match="SC99"):
    datasets.dataset_info(build, ["SC99"])
  with pytest.raises(ValueError, match="no subjects given"):
    datasets.make_dataset(build, [], training=True)
  with pytest.raises(ValueError, match="subjects repeated"):
    datasets.make_dataset(build, ["SC00", "SC00"], training=True)
  with pytest.raises(TypeError, match="not the string|the string 'SC00'"):
    datasets.make_dataset(build, "SC00", training=True)
  with pytest.raises(ValueError, match="unknown colour map"):
    datasets.make_dataset(build, ["SC00"], training=True, color="jet")


def test_incomplete_build_is_refused_unless_allowed(tmp_path):
  manifest = fakes.make_fake_build(str(tmp_path), subjects=("SC00",), epochs_per_night=2)
  manifest.update(complete=False, failures=[{"record": "SC4011E0", "file": "x", "error": "y"}])
  (tmp_path / manifest_lib.MANIFEST_FILE).write_text(json.dumps(manifest))
  with pytest.raises(ValueError, match="incomplete build"):
    datasets.make_dataset(str(tmp_path), ["SC00"], training=False)
  with pytest.raises(ValueError, match="incomplete build"):
    datasets.dataset_info(str(tmp_path))
  ds = datasets.make_dataset(str(tmp_path), ["SC00"], training=False, allow_incomplete=True)
  assert len(_collect(ds)[schema.LABEL]) == 4


def test_dataset_info(build, tmp_path):
  info = datasets.dataset_info(build, ["SC02", "SC00"])
  assert info.subjects == ("SC02", "SC00") and info.num_examples == 80
  assert (info.image_height, info.image_width, info.compression) == (SIZE, SIZE, "")
  assert info.stages == ("W", "N1", "N2", "N3", "REM") and info.class_counts == (16,) * 5
  assert [os.path.basename(s) for s in info.shards] == [
      "sleep-edf-20-SC02.tfrecord-00000-of-00002", "sleep-edf-20-SC02.tfrecord-00001-of-00002",
      "sleep-edf-20-SC00.tfrecord-00000-of-00002", "sleep-edf-20-SC00.tfrecord-00001-of-00002"
  ]
  assert datasets.dataset_info(build).num_examples == 120  # all subjects
  assert datasets.dataset_info(build, ["SC01"]).num_examples == 40
  fakes.make_fake_build(str(tmp_path), subjects=("SC00",), nights=(1,), epochs_per_night=7)
  uneven = datasets.dataset_info(str(tmp_path))
  assert uneven.class_counts == (2, 2, 1, 1, 1)  # labels 0 1 2 3 4 0 1
  assert uneven.steps_per_epoch(2) == 3 and uneven.steps_per_epoch(2, drop_remainder=False) == 4


# A full permutation, against what a true permutation gives and what streaming gives.

MANY = dict(subjects=tuple(f"SC{s:02d}" for s in range(20)), epochs_per_night=30, image_size=8)
BATCH = 16


@pytest.fixture(scope="module")
def many_nights(tmp_path_factory):
  """40 nights of 30 examples: 1,200 examples, 75 batches of 16."""
  directory = str(tmp_path_factory.mktemp("many_nights"))
  fakes.make_fake_build(directory, **MANY)
  return directory


def _night_sequences(ds, epochs: int) -> list[np.ndarray]:
  """The night (record) of each example, in output order, for each of `epochs` passes."""
  return [_collect(ds)[schema.RECORD] for _ in range(epochs)]


def _composition(nights: np.ndarray) -> tuple[float, float]:
  """(distinct nights per batch, spread of a night's positions), means over one epoch.

  A night's spread is the standard deviation of its examples' positions in the epoch, as
  a fraction of the epoch: about 0.29 when they are spread evenly over it.
  """
  batches = nights[:len(nights) // BATCH * BATCH].reshape(-1, BATCH)
  distinct = np.mean([len(set(batch)) for batch in batches])
  position = np.arange(len(nights)) / len(nights)
  spread = np.mean([position[nights == night].std() for night in np.unique(nights)])
  return float(distinct), float(spread)


def _permutation_statistics(nights: np.ndarray, draws: int = 400) -> np.ndarray:
  """[draws, 2] `_composition` of true uniform random permutations of the examples."""
  rng = np.random.default_rng(0)
  return np.array([_composition(rng.permutation(nights)) for _ in range(draws)])


def test_permutation_statistics_match_the_analytic_expectation():
  nights = np.repeat(np.arange(40), 30)
  simulated = _permutation_statistics(nights)
  # P(a night of m examples is in a batch of b drawn from n) = 1 - C(n - m, b) / C(n, b).
  n = len(nights)
  expected = 40 * (1 - math.comb(n - 30, BATCH) / math.comb(n, BATCH))
  assert simulated[:, 0].mean() == pytest.approx(expected, abs=0.05)
  # Positions of m of n examples drawn without replacement: variance (n^2 - 1) / 12 / n^2,
  # less the sample variance's bias (m - 1) / m and the finite population's (n - m) / (n - 1).
  variance = (n**2 - 1) / 12 / n**2 * (29 / 30) * (n / (n - 1))
  assert simulated[:, 1].mean() == pytest.approx(math.sqrt(variance), abs=0.01)


def test_full_permutation_batches_mix_nights_as_a_true_permutation_and_streams_do_not(many_nights):
  file_order = _file_examples(many_nights, MANY["subjects"])[schema.RECORD]
  simulated = _permutation_statistics(file_order)
  mean, sd = simulated.mean(axis=0), simulated.std(axis=0)
  make = lambda **kwargs: datasets.make_dataset(many_nights,
                                                MANY["subjects"],
                                                training=True,
                                                batch_size=BATCH,
                                                color=None,
                                                with_metadata=True,
                                                **kwargs)
  full = [_composition(n) for n in _night_sequences(make(shuffle="full"), epochs=3)]
  # A buffer 1/10 of the examples, as the trainer's 4,096 is of a Sleep-EDF-20 fold.
  stream = [
      _composition(n)
      for n in _night_sequences(make(shuffle="stream", shuffle_buffer=120), epochs=3)
  ]
  for epoch_stats in full:
    assert np.all(np.abs(np.array(epoch_stats) - mean) < 4 * sd), (epoch_stats, mean, sd)
  for epoch_stats in stream:
    assert np.all(np.array(epoch_stats) < mean - 8 * sd), (epoch_stats, mean, sd)


def test_same_seed_same_epochs_in_another_process(many_nights):
  subjects = list(MANY["subjects"][:4])
  code = ("import json, sys; from tfrecords import datasets; "
          f"ds = datasets.make_dataset({many_nights!r}, {subjects!r}, training=True, seed=7, "
          "color=None, with_metadata=True); "
          "print(json.dumps([[int(i) for _, _, m in ds for i in m['epoch_index']] "
          "for _ in range(2)]))")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
  run = subprocess.run([sys.executable, "-c", code],
                       capture_output=True,
                       text=True,
                       cwd=root,
                       env=env,
                       timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  there = json.loads(run.stdout.strip().splitlines()[-1])
  make = lambda seed: datasets.make_dataset(
      many_nights, subjects, training=True, seed=seed, color=None, with_metadata=True)
  here = make(7)
  here = [_collect(here)[schema.EPOCH_INDEX].tolist() for _ in range(2)]
  assert here == there
  assert here[0] != here[1]  # each epoch is a new permutation
  assert sorted(here[0]) == sorted(here[1])
  assert _collect(make(8))[schema.EPOCH_INDEX].tolist() != here[0]


def test_the_held_examples_outlive_the_builders_references(build):
  ds = datasets.make_dataset(build, ["SC00"], training=True, batch_size=8, with_metadata=True)
  gc.collect()  # the variables holding the examples are reachable only through ds
  assert len(_collect(ds)[schema.LABEL]) == 40 and len(_collect(ds)[schema.LABEL]) == 40


def test_full_permutation_without_a_memory_cache_streams_and_says_so(build, caplog):
  ds = datasets.make_dataset(build, ["SC00"], training=True, batch_size=8, cache=None)
  assert "shuffle='full' needs cache='memory'" in caplog.text
  assert sum(len(labels) for _, labels in ds) == 40


def test_unknown_shuffle_mode(build):
  with pytest.raises(ValueError, match="shuffle must be one of .*'full', 'stream'.*got 'random'"):
    datasets.make_dataset(build, ["SC00"], training=True, shuffle="random")


@pytest.mark.parametrize("change", [1, -1])
def test_full_permutation_checks_each_shards_count_against_the_manifest(build, tmp_path, change):
  copy = _copy(build, tmp_path)
  path = os.path.join(copy, manifest_lib.MANIFEST_FILE)
  with open(path) as f:
    manifest = json.load(f)
  night = manifest["recordings"][0]
  night["num_examples"] += change
  manifest["subjects"][night["subject"]]["num_examples"] += change
  with open(path, "w") as f:
    f.write(manifest_lib.dumps(manifest))
  shard = os.path.join(copy, night["shard"])
  expected = ("holds 20 examples, the manifest says 21"
              if change > 0 else "holds more than the 19 examples the manifest says")
  with pytest.raises(ValueError, match=f"{shard}: {expected}"):
    datasets.make_dataset(copy, [night["subject"]], training=True)
