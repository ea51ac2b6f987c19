r"""Build throughput on a full-scale Sleep-EDF-20-shaped set, against the paper's method.

  python bench/build_throughput.py [--work_dir /tmp/eegmobile-bench] [--reference_epochs 60] [--builds 3]

1. Pairs the 39 real hypnograms in ../shared/sleep-edf with synthetic PSGs of matching
   length and the real 7-channel layout (made once, kept in --work_dir).
2. Runs the whole Beam build (DirectRunner, one worker per core) --builds times, each a
   first build into an empty place, and times it: epochs/s of the median build, bytes
   per epoch on disk, peak memory of the driver and of the Beam workers.
3. Runs the paper's method (`spectrogram.reference_images`: scipy spectrogram, pyplot
   pcolormesh, save a PNG file, read it back, resize) on a sample of the same epochs in
   the same session, half before the builds and half after, and the fast path on the
   same sample, and prints the ratios and how closely the images agree. The reference
   rate is per core; for the 2-core ratio it is credited with perfect scaling to every
   core (generous to the reference).

Prints a table; figures (and how long the bench takes) go into BUILD_NOTES.md. The first
run also makes the PSGs; later runs with the same --work_dir reuse them.
"""

import argparse
import glob
import os
import resource
import shutil
import sys
import time

import numpy as np
import threadpoolctl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from eegmobile import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from eegmobile import edf_reader  # pylint: disable=wrong-import-position
from eegmobile import hypnogram  # pylint: disable=wrong-import-position
from eegmobile import nights  # pylint: disable=wrong-import-position
from eegmobile import sleep_edf  # pylint: disable=wrong-import-position
from eegmobile import spectrogram  # pylint: disable=wrong-import-position
from eegmobile import colormaps  # pylint: disable=wrong-import-position

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")


def _sample_epochs(data_dir: str, config: config_lib.BuildConfig, count: int, seed: int):
  """`count` labelled epochs drawn evenly from the set's nights (signal rows)."""
  recordings, _ = sleep_edf.find_recordings(data_dir, config.subset)
  rng = np.random.default_rng(seed)
  rows = []
  for recording in recordings[::max(1, len(recordings) // 8)][:8]:
    channel = edf_reader.read_channel(recording.psg_path, config.epochs.channel)
    labelled = hypnogram.label_epochs(edf_reader.read_annotations(recording.hypnogram_path),
                                      psg_duration_s=channel.duration_s)
    epochs = nights.cut_epochs(channel.signal, labelled.epoch_indices,
                               config.epochs.samples_per_epoch)
    rows.append(epochs[rng.choice(len(epochs), size=count // 8 + 1, replace=False)])
  return np.concatenate(rows)[:count]


def _cpu_seconds() -> float:
  usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
  return sum(u.ru_utime + u.ru_stime for u in usage)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--work_dir", default="/tmp/eegmobile-bench")
  parser.add_argument("--reference_epochs", type=int, default=60)
  parser.add_argument("--workers", type=int, default=os.cpu_count())
  parser.add_argument("--builds", type=int, default=3, help="timed builds; the median counts")
  args = parser.parse_args()
  from beam_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  from eegmobile.demo import synthetic  # pylint: disable=g-import-not-at-top

  hypnograms = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if len(hypnograms) != 39:
    sys.exit(f"need the 39 real hypnograms in {SHARED}/sleep-cassette")
  data_dir = os.path.join(args.work_dir, "sleep-edf-20-synthetic")
  if len(glob.glob(os.path.join(data_dir, "**", "*-PSG.edf"), recursive=True)) != 39:
    start = time.monotonic()
    synthetic.synthesize_for_hypnograms(hypnograms, data_dir, seed=0)
    print(f"made 39 synthetic PSGs in {time.monotonic() - start:.0f} s")
  psg_bytes = sum(
      os.path.getsize(p)
      for p in glob.glob(os.path.join(data_dir, "**", "*-PSG.edf"), recursive=True))

  config = config_lib.BuildConfig()
  output_dir = os.path.join(args.work_dir, "build")
  sample = _sample_epochs(data_dir, config, args.reference_epochs, seed=0)
  half = len(sample) // 2

  def reference_seconds(epochs):
    with threadpoolctl.threadpool_limits(1):  # "1 core" means one thread, for both methods
      start = time.monotonic()
      images = spectrogram.reference_images(epochs, config.spectrogram)
      return images, time.monotonic() - start

  # The paper's method is timed in two halves, before and after the builds, so that a
  # slow or fast spell of this shared machine weighs on both sides of the ratio; one
  # untimed epoch first (matplotlib's import and font cache would count against it).
  reference_seconds(sample[:1])
  reference_a, seconds_a = reference_seconds(sample[:half])
  walls, cpus = [], []
  for _ in range(args.builds):
    # A first build each time: the previous output is deleted before the clock starts
    # (replacing it inside the timed run would time the deletion of the last build too).
    shutil.rmtree(output_dir, ignore_errors=True)
    cpu_before = _cpu_seconds()
    result = pipeline.run(data_dir,
                          output_dir,
                          config,
                          overwrite=True,
                          beam_args=["--direct_num_workers",
                                     str(args.workers)])
    cpus.append(_cpu_seconds() - cpu_before)
    walls.append(result.seconds)
  reference_b, seconds_b = reference_seconds(sample[half:])
  reference = np.concatenate([reference_a, reference_b])
  reference_rate = len(sample) / (seconds_a + seconds_b)
  median = int(np.argsort(walls)[len(walls) // 2])
  build_seconds, build_cpu = walls[median], cpus[median]
  epochs = result.manifest["totals"]["num_examples"]
  shard_bytes = sum(
      os.path.getsize(os.path.join(output_dir, s))
      for sub in result.manifest["subjects"].values()
      for s in sub["shards"])
  build_rate = epochs / build_seconds

  with threadpoolctl.threadpool_limits(1):
    spectrogram.spectrogram_images(sample[:8], config.spectrogram)  # warm caches
    repeats = max(1, 2000 // len(sample))
    start = time.monotonic()
    for _ in range(repeats):
      fast = spectrogram.spectrogram_images(sample, config.spectrogram)
    fast_rate = repeats * len(sample) / (time.monotonic() - start)
  agreement = spectrogram.compare_to_reference(
      spectrogram.colorize(fast, colormaps.lookup_table("viridis")), reference)

  peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  peak_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
  rows = [
      ("nights / epochs built", f"{len(result.manifest['recordings'])} / {epochs}"),
      ("class counts", str(result.manifest["totals"]["class_counts"])),
      ("build wall time (s), median of the builds; workers",
       f"{build_seconds:.1f}; {args.workers}"),
      ("build wall times (s), in order", ", ".join(f"{w:.1f}" for w in walls)),
      ("build throughput (epochs/s, whole job, median build)", f"{build_rate:.0f}"),
      ("build CPU seconds (driver + workers), cores busy on average",
       f"{build_cpu:.1f}, {build_cpu / build_seconds:.2f}"),
      ("fast path, spectrogram only (epochs/s, 1 core)", f"{fast_rate:.0f}"),
      ("paper's method (epochs/s, 1 core): before, after the builds, overall",
       f"{half / seconds_a:.2f}, {(len(sample) - half) / seconds_b:.2f}, {reference_rate:.2f}"),
      ("RATIO whole build vs paper's method on all cores (median build; slowest build)",
       f"{build_rate / (reference_rate * args.workers):.0f}x; "
       f"{epochs / max(walls) / (reference_rate * args.workers):.0f}x"),
      ("RATIO fast path vs paper's method, 1 core", f"{fast_rate / reference_rate:.0f}x"),
      ("image agreement (MAE 0-255, PSNR dB, share within 16)",
       f"{agreement['mae']:.2f}, {agreement['psnr_db']:.1f}, "
       f"{agreement['within_tolerance']:.3f}"),
      ("bytes per epoch on disk (shards)", f"{shard_bytes / epochs:.0f}"),
      ("input PSG bytes (39 synthetic nights)", f"{psg_bytes / 1e6:.0f} MB"),
      ("peak RSS driver / largest worker (MB)", f"{peak_self:.0f} / {peak_workers:.0f}"),
  ]
  print("\n| measure | value |\n| --- | --- |")
  for name, value in rows:
    print(f"| {name} | {value} |")
  print(f"\ncommand: python bench/build_throughput.py --work_dir {args.work_dir} "
        f"--reference_epochs {args.reference_epochs} --workers {args.workers} "
        f"--builds {args.builds}")


if __name__ == "__main__":
  main()
