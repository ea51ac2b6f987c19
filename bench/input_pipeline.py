r"""Input pipeline throughput per shuffle and cache mode, against the raw read rate of the shards.

  python bench/input_pipeline.py                      # a few minutes on 2 cores
  python bench/input_pipeline.py --build_dir out/sleep-edf-20 --subjects SC00,SC01
  python bench/input_pipeline.py --modes memory,full --batch_sizes 16 --repeats 2  # shorter

Without --build_dir it writes a realistic build in a temporary directory (the real schema,
writer and manifest; 224x224 images; 20 subjects x 2 nights x 200 epochs = 8,000
examples; images random but compressible, like spectrograms: smooth structure plus a
little noise). It then times whole training epochs of
`tfrecords.datasets.make_dataset(training=True)` at batch 16 and at batch 128 (--modes
picks the groups):

  * full: shuffle="full" (the default): the load (the make_dataset call, which reads every
    example into memory; its seconds and the resident memory it adds: meaningful for the
    run's first load only, as later ones reuse memory freed by earlier rows), the first epoch
    (traces and compiles) and steady epochs, each a uniform random permutation of all
    examples;
  * disk: shuffle="stream", cache=None, from disk: the shards are evicted from the page
    cache before each epoch (posix_fadvise DONTNEED on each file: no root needed, no
    other file touched);
  * memory: shuffle="stream", cache="memory" (interleaved shards, a shuffle buffer after
    the cache): the first epoch (fills the cache) and the steady state after it;
  * file: shuffle="stream", a file cache: the same, the cache files evicted before every
    steady epoch;

each paired with a raw read of the same shard bytes from disk just before it
(tf.data.TFRecordDataset only counting bytes: the ceiling), reported as the ratio within
the pair, plus the process's CPU time per image (idle-spinning pool threads included). An
epoch's images/s counts its whole wall time, shuffle-buffer filling included; rows give the
median and the best of --repeats epochs; the default buffer is 1/8 of the epoch, as the
trainer's 4,096 is of a Sleep-EDF-20 fold. A last table times the colour lookup alone
(tf.gather against the XLA-compiled gather that datasets.colorize uses), and the ratio of
each full-permutation row to the memory-cache shuffle-buffer row of the same output.
"""

import argparse
import gc
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

from tests import fakes
from tfrecords import datasets
# pylint: enable=g-import-not-at-top,wrong-import-position

PARALLEL_READS = 4  # shards tfrecords.datasets reads at once when training


def spectrogram_like(rng: np.random.Generator, size: int) -> np.ndarray:
  """A uint8 image that compresses like a spectrogram: smooth field, band, light noise."""
  coarse = rng.normal(0.0, 1.0, (size // 8, size // 8)).cumsum(axis=1)  # slow drift in time
  image = np.kron(coarse, np.ones((8, 8)))
  image = (image - image.min()) / (np.ptp(image) + 1e-9) * 200.0
  image[rng.integers(0, size - 16):][:16] += 40.0  # a brighter frequency band
  image += rng.integers(0, 12, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def make_build(build_dir: str, subjects: int, nights: int, epochs_per_night: int, size: int,
               compression: str) -> None:
  """Writes a complete build (shards + manifest) through the real schema, writer and
  manifest (tests.fakes), with spectrogram-like images."""
  fakes.make_fake_build(build_dir,
                        subjects=[f"SC{s:02d}" for s in range(subjects)],
                        nights=range(1, nights + 1),
                        epochs_per_night=epochs_per_night,
                        image_size=size,
                        compression=compression,
                        image_fn=lambda label, rng, height, width: spectrogram_like(rng, height))


def evict(paths) -> None:
  """Drops the files' pages from the OS page cache, so the next read comes from the disk."""
  for path in paths:
    fd = os.open(path, os.O_RDONLY)
    try:
      os.fdatasync(fd)  # dirty pages cannot be dropped
      os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
      os.close(fd)


def files_under(prefix: str) -> list[str]:
  directory = os.path.dirname(prefix)
  name = os.path.basename(prefix)
  return [os.path.join(directory, f) for f in os.listdir(directory) if f.startswith(name)]


def _resident_mb() -> float:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def epoch(ds: tf.data.Dataset, before=None) -> tuple[float, float]:
  """(images/s, CPU microseconds per image) of one whole pass, iterator start to end."""
  if before:
    before()
  count, cpu, start = 0, _cpu_seconds(), time.perf_counter()
  for element in ds:
    count += int(element[1].shape[0])
  return count / (time.perf_counter() - start), (_cpu_seconds() - cpu) / count * 1e6


def raw_read(files: list[str], compression: str, parallel: bool) -> tf.data.Dataset:
  """The shard bytes, read and counted, nothing parsed: the ceiling of any pipeline."""
  ds = tf.data.TFRecordDataset(files,
                               compression,
                               buffer_size=8 << 20,
                               num_parallel_reads=PARALLEL_READS if parallel else None)
  # (bytes, records) pairs, shaped like (images, labels) so that epoch() counts them.
  return ds.batch(256).map(lambda s: (tf.reduce_sum(tf.strings.length(s)), s))


def lookup_rates(batch: int, size: int, seconds: float = 2.0) -> list[tuple[str, float]]:
  """Images/s of the colour lookup alone, inside a parallel tf.data map."""
  indices = tf.constant(np.random.default_rng(0).integers(0, 256, (batch, size, size)), tf.uint8)
  rows = []
  for dtype in (tf.float32, tf.float16, tf.uint8):
    for jit in (False, True):
      ds = tf.data.Dataset.from_tensors(indices).repeat().map(
          lambda x, d=dtype, j=jit: datasets.colorize(x, "viridis", d, jit_compile=j),
          num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
      iterator = iter(ds)
      next(iterator)
      count, start = 0, time.perf_counter()
      while time.perf_counter() - start < seconds:
        next(iterator)
        count += batch
      name = f"{'XLA gather' if jit else 'tf.gather'}, {dtype.name} RGB out"
      rows.append((name, count / (time.perf_counter() - start)))
  return rows


class Table:
  """Rows of (batch, pipeline, images/s, ratio to the raw read, CPU us/image), as medians.

  Each pipeline epoch is paired with a raw read of the shards from disk taken just before
  it, and the ratio is taken within the pair: the shared machine's speed drifts (it runs
  at about half speed at times), and a ratio of two adjacent passes cancels most of that.
  """

  def __init__(self, raw: tf.data.Dataset, files: list[str]):
    self.raw, self.files, self.rows, self.raw_rates = raw, files, [], []

  def add(self, batch: int, name: str, ds: tf.data.Dataset, repeats: int, before=None):
    rates, ratios, cpus = [], [], []
    for _ in range(repeats):
      raw, _ = epoch(self.raw, before=lambda: evict(self.files))
      rate, cpu = epoch(ds, before)
      self.raw_rates.append(raw)
      rates.append(rate)
      ratios.append(rate / raw)
      cpus.append(cpu)
    med = statistics.median
    self.rows.append((batch, name, med(rates), max(rates), med(ratios), med(cpus)))


def main():
  temporary = []  # what this run made in a temporary directory, removed at the end
  try:
    _main(temporary)
  finally:
    for path in temporary:
      shutil.rmtree(path, ignore_errors=True)


VARIANTS = (("RGB float32", "viridis", tf.float32), ("RGB float16", "viridis", tf.float16),
            ("RGB uint8", "viridis", tf.uint8), ("uint8 indices (colour map on device)", None,
                                                 tf.uint8))
MODES = ("full", "disk", "memory", "file")


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--build_dir", help="an existing build; default: write one in a tmp dir")
  parser.add_argument("--subjects", help="comma-separated subject ids; default: all")
  parser.add_argument("--batch_sizes", default="16,128")
  parser.add_argument("--modes",
                      default=",".join(MODES),
                      help=f"comma-separated groups of rows, of {', '.join(MODES)}")
  parser.add_argument("--shuffle_buffer",
                      type=int,
                      default=1024,
                      help="default: 1/8 of the 8,000 examples, as 4,096 is of a 38k-example fold")
  parser.add_argument("--compression", default="", choices=["", "GZIP"])
  parser.add_argument("--repeats", type=int, default=3, help="epochs per row (median)")
  parser.add_argument("--work_dir",
                      default=None,
                      help="default: a new temporary directory, removed at the end")
  args = parser.parse_args()
  unknown = set(args.modes.split(",")) - set(MODES)
  if unknown:
    parser.error(f"unknown --modes {sorted(unknown)}; choose from {MODES}")
  return args


class Bench:
  """The rows of one run: which build, which settings, and what each group measured."""

  def __init__(self, args: argparse.Namespace, build_dir: str, info: datasets.DatasetInfo,
               work_dir: str):
    self.args, self.build_dir, self.info, self.work_dir = args, build_dir, info, work_dir
    self.files = list(info.shards)
    self.table = Table(raw_read(self.files, info.compression, parallel=False), self.files)
    self.loads = []  # (batch, output, seconds, resident MB added, peak MB added)
    self.cache_bytes = 0

  def make(self, batch: int, cache, color, dtype, shuffle: str = "stream") -> tf.data.Dataset:
    return datasets.make_dataset(self.build_dir,
                                 self.info.subjects,
                                 training=True,
                                 batch_size=batch,
                                 cache=cache,
                                 shuffle=shuffle,
                                 color=color,
                                 output_dtype=dtype,
                                 shuffle_buffer=self.args.shuffle_buffer)

  def full(self, batch: int) -> None:
    for name, color, dtype in VARIANTS[::3]:
      gc.collect()  # the previous row's examples are freed before this load is measured
      resident, peak, start = _resident_mb(), _peak_mb(), time.perf_counter()
      ds = self.make(batch, "memory", color, dtype, shuffle="full")
      self.loads.append(
          (batch, name, time.perf_counter() - start, _resident_mb() - resident, _peak_mb() - peak))
      self.table.add(batch, f"full permutation, memory, {name}, 1st epoch", ds, 1)
      self.table.add(batch, f"full permutation, memory, {name}, steady state", ds,
                     self.args.repeats)
      del ds

  def disk(self, batch: int) -> None:
    for name, color, dtype in VARIANTS[::3]:
      self.table.add(batch,
                     f"no cache, from disk, {name}",
                     self.make(batch, None, color, dtype),
                     self.args.repeats,
                     before=lambda: evict(self.files))

  def memory(self, batch: int) -> None:
    for name, color, dtype in VARIANTS:
      ds = self.make(batch, "memory", color, dtype)
      self.table.add(batch, f"memory cache, {name}, 1st epoch (fills it)", ds, 1)
      self.table.add(batch, f"memory cache, {name}, steady state", ds, self.args.repeats)

  def file(self, batch: int) -> None:
    for name, color, dtype in VARIANTS[::3]:
      prefix = os.path.join(tempfile.mkdtemp(dir=self.work_dir), "cache")
      ds = self.make(batch, prefix, color, dtype)
      self.table.add(batch, f"file cache, {name}, 1st epoch (writes it)", ds, 1)
      self.table.add(batch,
                     f"file cache, {name}, steady state, from disk",
                     ds,
                     self.args.repeats,
                     before=lambda p=prefix: evict(files_under(p)))
      self.cache_bytes = sum(os.path.getsize(f) for f in files_under(prefix))


def _build(args: argparse.Namespace, work_dir: str) -> str:
  if args.build_dir:
    return args.build_dir
  build_dir = os.path.join(work_dir, "build")
  os.makedirs(build_dir, exist_ok=True)
  start = time.perf_counter()
  make_build(build_dir, 20, 2, 200, 224, args.compression)
  print(f"wrote the build in {time.perf_counter() - start:.1f} s: {build_dir}")
  return build_dir


def _raw_rates(files: list[str], compression: str) -> dict:
  raw = {}
  for parallel in (False, True):
    ds = raw_read(files, compression, parallel)
    for state, before in (("disk", lambda: evict(files)), ("page cache", None)):
      raw[state, parallel] = statistics.median(epoch(ds, before)[0] for _ in range(3))
  return raw


def _main(temporary: list) -> None:
  args = _parse_args()
  work_dir = args.work_dir
  if not work_dir:
    work_dir = tempfile.mkdtemp(prefix="eegmobile-input-bench-")
    temporary.append(work_dir)  # ~2 GB of shards and caches: not left in /tmp
  build_dir = _build(args, work_dir)
  info = datasets.dataset_info(build_dir, args.subjects.split(",") if args.subjects else None)
  load_before, started = os.getloadavg()[0], time.perf_counter()
  raw = _raw_rates(list(info.shards), info.compression)
  bench = Bench(args, build_dir, info, work_dir)
  for batch in (int(b) for b in args.batch_sizes.split(",")):
    for mode in args.modes.split(","):
      getattr(bench, mode)(batch)
  lookups = lookup_rates(16, info.image_height)
  shard_bytes = sum(os.path.getsize(f) for f in bench.files)
  total, image_bytes = info.num_examples, info.image_height * info.image_width
  print(f"\n{len(info.subjects)} subjects, {total:,} examples, {len(bench.files)} shards, "
        f"compression {info.compression or 'none'}, shuffle buffer {args.shuffle_buffer}; "
        f"{shard_bytes / 1e6:.0f} MB of shards per epoch ({shard_bytes / total:,.0f} "
        f"bytes/example); images {total * image_bytes / 1e6:.0f} MB as uint8 indices; file "
        f"cache {bench.cache_bytes / 1e6:.0f} MB; float32 RGB output "
        f"{total * image_bytes * 12 / 1e9:.1f} GB/epoch. {os.cpu_count()} cores, load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
        f"{time.perf_counter() - started:.0f} s of measuring.\n")
  _print_raw(raw, shard_bytes, total, bench.table)
  _print_rows(bench)
  print("\n| colour lookup alone, batch 16, in a parallel tf.data map | images/s |\n| --- | --- |")
  for name, rate in lookups:
    print(f"| {name} | {rate:,.0f} |")
  _print_targets(bench.table)
  print("command: python bench/input_pipeline.py " + " ".join(sys.argv[1:]))


def _print_raw(raw: dict, shard_bytes: int, total: int, table: Table) -> None:
  print("| raw read of the shard bytes | images/s | MB/s |\n| --- | --- | --- |")
  for (state, parallel), rate in raw.items():
    how = f"{PARALLEL_READS} shards in parallel" if parallel else "sequential"
    print(f"| {how}, from {state} | {rate:,.0f} | {rate * shard_bytes / total / 1e6:,.0f} |")
  spread = sorted(table.raw_rates)
  if spread:
    print(f"\nsequential raw read from disk, paired with each pipeline epoch: median "
          f"{statistics.median(spread):,.0f} images/s (range {spread[0]:,.0f} - "
          f"{spread[-1]:,.0f})\n")


def _print_rows(bench: Bench) -> None:
  print("| batch | pipeline (training=True) | images/s, median | best | ratio to raw read, "
        "median | CPU us/image |\n| --- | --- | --- | --- | --- | --- |")
  for batch, name, rate, best, ratio, cpu in bench.table.rows:
    print(f"| {batch} | {name} | {rate:,.0f} | {best:,.0f} | {ratio:.2f} | {cpu:.0f} |")
  if not bench.loads:
    return
  print("\n| batch | full permutation: load (the make_dataset call), output | seconds | "
        "images/s | resident MB added | peak MB added |\n| --- | --- | --- | --- | --- | --- |")
  for batch, name, seconds, resident, peak in bench.loads:
    print(f"| {batch} | {name} | {seconds:.1f} | {bench.info.num_examples / seconds:,.0f} | "
          f"{resident:,.0f} | {peak:,.0f} |")
  rows = {(r[0], r[1]): r for r in bench.table.rows}
  print("\n| batch | output | full permutation / memory cache + shuffle buffer, steady "
        "images/s (medians) | the same, ratios to the raw read |\n| --- | --- | --- | --- |")
  for batch, name, _, _, _ in bench.loads:
    full = rows[batch, f"full permutation, memory, {name}, steady state"]
    buffer = rows.get((batch, f"memory cache, {name}, steady state"))
    if buffer:
      print(f"| {batch} | {name} | {full[2] / buffer[2]:.2f} | {full[4] / buffer[4]:.2f} |")


def _print_targets(table: Table) -> None:
  rows = {(r[0], r[1]): r for r in table.rows}
  memory = rows.get((16, "memory cache, RGB float32, steady state"))
  disk = rows.get((16, "no cache, from disk, RGB float32"))
  full = rows.get((16, "full permutation, memory, RGB float32, steady state"))
  for name, row in (("full permutation", full), ("memory cache", memory)):
    if row:
      print(f"\ntarget (batch 16, RGB float32): {name} >= 5,000 images/s: {row[2]:,.0f} "
            f"({'met' if row[2] >= 5000 else 'NOT met'})")
  if disk:
    print(f"target (batch 16, RGB float32): from disk >= 0.5 x raw read: {disk[4]:.2f} "
          f"({'met' if disk[4] >= 0.5 else 'NOT met'})")


if __name__ == "__main__":
  main()
