r"""Input pipeline throughput per cache mode, against the raw read rate of the same shards.

  python bench/input_pipeline.py [--build_dir /tmp/eegmobile-bench/build] [--subjects 8]

Reads the given subjects of a build (default: the full-scale build that
bench/build_throughput.py leaves in /tmp/eegmobile-bench/build; otherwise it makes one
from the demo set) and measures steady-state images/s of `tfrecords.datasets.make_dataset`
(training=True) for cache = memory, file and none, and the raw read rate of the same shard
bytes in the same run (tf.data.TFRecordDataset, bytes only: the ceiling), as ratios.
"From disk" means from the OS page cache unless dropping caches works (reported).
Takes about 3 minutes on 2 cores.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfrecords import datasets  # pylint: disable=wrong-import-position
from tfrecords import manifest as manifest_lib  # pylint: disable=wrong-import-position


def _drop_page_cache() -> bool:
  try:
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
      f.write("3\n")
    return True
  except OSError:
    return False


def _rate(ds, skip: int, count_fn) -> tuple[float, int]:
  """(items per second after `skip` elements, items counted)."""
  iterator = iter(ds)
  for _ in range(skip):
    next(iterator)
  items, start = 0, time.perf_counter()
  for element in iterator:
    items += count_fn(element)
  return items / (time.perf_counter() - start), items


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--build_dir", default="/tmp/eegmobile-bench/build")
  parser.add_argument("--subjects", type=int, default=8)
  parser.add_argument("--batch_size", type=int, default=16)
  args = parser.parse_args()
  build_dir = args.build_dir
  if not os.path.exists(os.path.join(build_dir, manifest_lib.MANIFEST_FILE)):
    from beam_pipelines import pipeline  # pylint: disable=g-import-not-at-top
    from eegmobile import config as config_lib  # pylint: disable=g-import-not-at-top
    from eegmobile import synthetic  # pylint: disable=g-import-not-at-top
    recordings = tempfile.mkdtemp()
    synthetic.make_demo_dataset(recordings, subjects=range(8), hours=6)
    build_dir = tempfile.mkdtemp()
    pipeline.run(recordings, build_dir, config_lib.BuildConfig(), overwrite=True)
  manifest = manifest_lib.load_manifest(build_dir)
  subjects = manifest_lib.subjects(manifest)[:args.subjects]
  files = manifest_lib.shard_paths(build_dir, manifest, subjects)
  total = manifest_lib.num_examples(manifest, subjects)
  shard_bytes = sum(os.path.getsize(f) for f in files)
  dropped = _drop_page_cache()

  raw, _ = _rate(
      tf.data.TFRecordDataset(files, manifest["compression"], buffer_size=1 << 22).batch(256), 0,
      lambda b: int(b.shape[0]))
  rows = [("raw read of the shard bytes (ceiling)", raw, 1.0)]
  batches = lambda: total // args.batch_size
  count = lambda e: int(e[1].shape[0])
  skip = 20
  for name, color in (("RGB float32", "viridis"), ("uint8 indices, colour map on device", None)):
    _drop_page_cache()
    none, _ = _rate(
        datasets.make_dataset(build_dir,
                              subjects,
                              training=True,
                              color=color,
                              batch_size=args.batch_size,
                              cache=None), skip, count)
    rows.append((f"no cache (from disk), {name}", none, none / raw))
  file_cache = lambda: os.path.join(tempfile.mkdtemp(), "c")
  for name, cache, dtype, color in (("memory cache, RGB float32", "memory", tf.float32, "viridis"),
                                    ("memory cache, RGB float16", "memory", tf.float16, "viridis"),
                                    ("memory cache, uint8 indices (colour map on device)", "memory",
                                     tf.uint8, None), ("file cache, RGB float32", file_cache(),
                                                       tf.float32, "viridis"),
                                    ("file cache, uint8 indices (colour map on device)",
                                     file_cache(), tf.uint8, None)):
    ds = datasets.make_dataset(build_dir,
                               subjects,
                               training=True,
                               batch_size=args.batch_size,
                               cache=cache,
                               output_dtype=dtype,
                               color=color)
    first, _ = _rate(ds, 0, count)  # fills the cache
    steady, _ = _rate(ds, skip, count)
    rows.append((f"{name}, 1st epoch (filling)", first, first / raw))
    rows.append((f"{name}, steady state", steady, steady / raw))
  print(f"\n{len(subjects)} subjects, {total} examples, {shard_bytes / total:.0f} bytes/example, "
        f"batch {args.batch_size}, {batches()} batches/epoch, page cache dropped: {dropped}\n")
  print("| pipeline | images/s | ratio to raw read |\n| --- | --- | --- |")
  for name, rate, ratio in rows:
    print(f"| {name} | {rate:.0f} | {ratio:.2f} |")
  print(f"\nraw read: {raw * shard_bytes / total / 1e6:.0f} MB/s")
  print(f"command: python bench/input_pipeline.py --build_dir {args.build_dir} "
        f"--subjects {args.subjects} --batch_size {args.batch_size}")


if __name__ == "__main__":
  main()
