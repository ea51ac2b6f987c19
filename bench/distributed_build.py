r"""The Sleep-EDF-20-scale build on a Dask cluster and into S3, against the DirectRunner.

  python bench/distributed_build.py --work_dir /tmp/eegmobile-dist [--repeats 2] [--no_s3]

The 39 real Sleep-EDF-20 hypnograms (../shared) are paired with synthetic PSGs of matching
length (made once in --work_dir). In the same run, alternating so that a slow spell of this
shared machine weighs on both sides: the DirectRunner (one worker a core) and a 2-worker
local Dask cluster (started once, before the clock, as a running cluster would be) build
the same set; the wall times, their ratio and a byte comparison of the two builds are
printed. Then (unless --no_s3) the same build is written to a local S3 server (moto, on
127.0.0.1) and tf.data's read rate of that build from S3 is measured against the local
build's, each in its own process (shards streamed through eegmobile.storage, a plain
script that must exit 0). Needs the dask, aws and test extras.
"""

import argparse
import glob
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
SHARED = os.path.join(ROOT, "..", "shared", "sleep-edf")


def _digests(directory: str) -> dict:
  return {
      name: hashlib.sha256(open(os.path.join(directory, name), "rb").read()).hexdigest()
      for name in sorted(os.listdir(directory))
      if name != "build.log"
  }


def _data(work_dir: str) -> str:
  from eegmobile.demo import synthetic  # pylint: disable=g-import-not-at-top
  hypnograms = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if len(hypnograms) != 39:
    sys.exit(f"need the 39 real hypnograms in {SHARED}/sleep-cassette")
  data_dir = os.path.join(work_dir, "sleep-edf-20-synthetic")
  if len(glob.glob(os.path.join(data_dir, "**", "*-PSG.edf"), recursive=True)) != 39:
    synthetic.synthesize_for_hypnograms(hypnograms, data_dir, seed=0)
  return data_dir


def _build(data_dir: str, output: str, beam_args: list) -> float:
  from beam_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  from eegmobile import config as config_lib  # pylint: disable=g-import-not-at-top
  if "://" not in output:
    shutil.rmtree(output, ignore_errors=True)
  start = time.monotonic()
  result = pipeline.run(data_dir, output, config_lib.BuildConfig(), beam_args=beam_args)
  seconds = time.monotonic() - start
  assert result.ok and result.manifest["totals"]["num_examples"] == 42307, result.manifest["totals"]
  return seconds


def _read_rate(build: str, env: dict) -> dict:
  """Images/s of make_dataset over the whole build, measured in a fresh process."""
  code = f"""
import json, sys, time
sys.path.insert(0, {ROOT!r})
from tfrecords import datasets, manifest
m = manifest.load_manifest({build!r})
ds = datasets.make_dataset({build!r}, manifest.subjects(m), training=False, color=None,
                           cache=None, batch_size=256)
start, n = time.monotonic(), 0
for images, labels in ds:
  n += len(labels)
print(json.dumps({{"images": n, "seconds": time.monotonic() - start}}))
"""
  run = subprocess.run([sys.executable, "-c", code],
                       env={
                           **os.environ,
                           **env
                       },
                       capture_output=True,
                       text=True,
                       check=False)
  if run.returncode != 0:
    sys.exit(f"reading {build} failed ({run.returncode}): {run.stderr[-2000:]}")
  out = json.loads(run.stdout.strip().splitlines()[-1])
  return {**out, "images_per_s": out["images"] / out["seconds"], "exit_status": run.returncode}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--work_dir", default="/tmp/eegmobile-dist")
  parser.add_argument("--repeats", type=int, default=2, help="builds per runner, alternating")
  parser.add_argument("--no_s3", action="store_true", help="skip the S3 build and read rates")
  args = parser.parse_args()
  from tests import servers  # pylint: disable=g-import-not-at-top
  data_dir = _data(args.work_dir)
  direct_out = os.path.join(args.work_dir, "direct")
  dask_out = os.path.join(args.work_dir, "dask")
  times = {"direct": [], "dask": []}
  start = time.monotonic()
  with servers.dask_cluster(workers=2) as address:
    cluster_start = time.monotonic() - start
    for _ in range(args.repeats):
      times["direct"].append(_build(data_dir, direct_out, ["--runner", "DirectRunner"]))
      times["dask"].append(
          _build(data_dir, dask_out, ["--runner", "DaskRunner", "--dask_client_address", address]))
  identical = _digests(direct_out) == _digests(dask_out)
  direct, dask = statistics.median(times["direct"]), statistics.median(times["dask"])
  print("\n| measure | value |\n| --- | --- |")
  print(
      f"| DirectRunner, 2 workers: builds (s) | {', '.join(f'{t:.1f}' for t in times['direct'])} |")
  print(f"| DaskRunner, 2-worker local cluster: builds (s) | "
        f"{', '.join(f'{t:.1f}' for t in times['dask'])} |")
  print(f"| Dask / Direct, medians | **{dask / direct:.2f}** (target <= 1.25) |")
  print(f"| Dask cluster start-up (not in the builds) | {cluster_start:.1f} s |")
  print(f"| shards and manifest byte-identical | {identical} |")
  if not args.no_s3:
    with servers.s3_server() as s3:
      url = s3.url("builds", "sleep-edf-20")
      s3_seconds = _build(data_dir, url, ["--runner", "DirectRunner", *s3.beam_args])
      remote = _read_rate(url, s3.env)
      local = _read_rate(direct_out, {})
    print(f"| DirectRunner build written to the local S3 server | {s3_seconds:.1f} s "
          f"({s3_seconds / direct:.2f}x the local build) |")
    print(f"| tf.data read, local disk (page cache warm) | {local['images_per_s']:.0f} images/s |")
    print(f"| tf.data read, local S3 server | {remote['images_per_s']:.0f} images/s "
          f"({remote['images_per_s'] / local['images_per_s']:.2f} of local); reader exit "
          f"status {remote['exit_status']} |")
  print(f"\ncores: {os.cpu_count()}; command: python bench/distributed_build.py --work_dir "
        f"{args.work_dir} --repeats {args.repeats}{' --no_s3' if args.no_s3 else ''}")


if __name__ == "__main__":
  main()
