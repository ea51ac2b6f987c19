"""Beam transforms of the build: build every night, then finalise the build from the results.

    recordings -> Reshuffle -> BuildNight (per night: images -> staged shard; emits the
    night's manifest entry, or its failure) -> ToList -> Finalise
    (the manifest from the entries, shards moved into place, the manifest written last)
    -> the build's manifest

Examples never travel through Beam: each night's DoFn call writes its own shard to the
staging directory (a night is ~1,000 epochs, ~50 MB), and only the small manifest entry is
emitted, so the job needs no shuffle of image bytes. Every built, failed or dropped item is
counted with Beam metrics under the namespace `eegmobile`, and each finished night prints
one line (a worker's standard output: the terminal locally, the worker's log on a
cluster).
"""

import concurrent.futures
import dataclasses
import os
import time
import traceback
from typing import Optional, Sequence

import apache_beam as beam
from absl import logging
import numpy as np

from eegmobile import errors
from eegmobile import nights
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile import storage
from eegmobile.config import BuildConfig
from tfrecords import manifest as manifest_lib
from tfrecords import schema
from tfrecords import writer

NAMESPACE = "eegmobile"
NIGHTS_DIR = "nights"  # staged shards, one per night
LOG_FILE = "build.log"  # inside the build: unexpected errors' tracebacks, Beam workers' output
_RENAME_THREADS = 16  # parallel shard moves on object stores (each a server-side copy)


def staged_shard(staging_dir: str, record: str) -> str:
  return storage.join(staging_dir, NIGHTS_DIR, record + ".tfrecord")


def failure_entry(recording: sleep_edf.Recording, error: Exception) -> dict:
  """The record of a recording that failed, naming the file and the problem.

  A `errors.RecordingError` (bad input) is a one-line message. Any other exception is a
  fault in the code, so its entry also keeps the formatted traceback ("traceback").
  """
  if isinstance(error, errors.RecordingError):
    return {
        "record": recording.record,
        "file": os.path.basename(error.path or ""),
        "error": error.problem,
        "kind": type(error).__name__
    }
  return {
      "record": recording.record,
      "file": os.path.basename(recording.psg_path),
      "error": f"{type(error).__name__}: {error}",
      "kind": "UnexpectedError",
      "traceback": "".join(traceback.format_exception(error))
  }


class BuildNightFn(beam.DoFn):
  """Recording -> staged shard, and ("built", its manifest entry) or ("failed", failure).

  One tagged output rather than Beam's multiple outputs: the DaskRunner delivers every
  element to each output of a multi-output ParDo.

  Args:
    config: `BuildConfig.to_dict()`.
    staging_dir: where shards are staged.
    window: the STFT window, computed once on the driver, so that workers need not
      import scipy.signal; None computes it in each worker.
    store_settings: `storage.s3_settings()` of the driver (endpoint, credentials), for
      workers that do not share its environment.
  """

  def __init__(self,
               config: dict,
               staging_dir: str,
               window: Optional[np.ndarray] = None,
               store_settings: Optional[dict] = None):
    super().__init__()
    self._config_dict = config  # plain dict: small, picklable, no reference to the caller
    self._staging_dir = staging_dir
    self._window = window
    self._store_settings = store_settings or {}

  def setup(self):
    storage.apply_settings(self._store_settings)
    self._config = BuildConfig.from_dict(self._config_dict)
    self._built = beam.metrics.Metrics.counter(NAMESPACE, "recordings_built")
    self._failed = beam.metrics.Metrics.counter(NAMESPACE, "recordings_failed")
    self._epochs = beam.metrics.Metrics.counter(NAMESPACE, "epochs_written")
    self._seconds = beam.metrics.Metrics.distribution(NAMESPACE, "night_build_ms")

  def process(self, recording: sleep_edf.Recording):
    start = time.monotonic()
    try:
      with storage.local_copy(recording.psg_path) as psg, storage.local_copy(
          recording.hypnogram_path) as hypnogram:
        local = dataclasses.replace(recording, psg_path=psg, hypnogram_path=hypnogram)
        night = nights.build_night(local, self._config, window=self._window)
    except Exception as e:  # pylint: disable=broad-except
      # One bad recording must not cost the others: record it and carry on.
      failure = failure_entry(recording, e)
      self._failed.inc()
      print(f"FAILED {recording.record}: {failure['file']}: {failure['error']}", flush=True)
      yield "failed", failure
      return
    with storage.atomic_path(staged_shard(self._staging_dir, recording.record)) as part:
      writer.write_tfrecord(part, schema.night_examples(night), self._config.compression)
    self._count(night.summary)
    elapsed = time.monotonic() - start
    self._seconds.update(int(elapsed * 1000))
    print(f"built {recording.record}: {night.summary['num_examples']} epochs in {elapsed:.1f} s",
          flush=True)
    yield "built", night.summary

  def _count(self, summary: dict) -> None:
    self._built.inc()
    self._epochs.inc(summary["num_examples"])
    for stage, count in summary["class_counts"].items():
      beam.metrics.Metrics.counter(NAMESPACE, f"epochs_{stage}").inc(count)
    for reason, count in summary["dropped"].items():
      beam.metrics.Metrics.counter(NAMESPACE, f"dropped_{reason}").inc(count)


def finalise(results: Sequence[tuple[str, dict]], *, config: dict, staging_dir: str,
             output_dir: str, demo: bool, failures: Sequence[dict], store_settings: dict) -> dict:
  """The build's last step: its manifest from the nights' results, written last.

  Object stores have no atomic directory rename, so completeness is marked by the manifest
  alone: an old build's manifest is deleted before anything of it is touched, the shards
  are moved into place, unexpected errors' tracebacks go to build.log (never into the
  manifest, whose bytes depend only on the inputs), and the new manifest is written only
  once every shard is in place. A reader never takes a location without one.

  Args:
    results: ("built", manifest entry) and ("failed", failure) pairs, one per recording.
    config: `BuildConfig.to_dict()`.
    staging_dir: where the shards were staged (removed at the end).
    output_dir: where the build goes.
    demo: mark the build as the synthetic demo set.
    failures: failures found before the pipeline ran (files without their pair).
    store_settings: `storage.s3_settings()` of the driver.

  Returns:
    The manifest.
  """
  storage.apply_settings(store_settings)
  build_config = BuildConfig.from_dict(config)
  summaries = [value for kind, value in results if kind == "built"]
  failed = [dict(value) for kind, value in results if kind == "failed"] + list(failures)
  tracebacks = [(f["record"], f["file"], f.pop("traceback")) for f in failed if "traceback" in f]
  manifest = manifest_lib.make_manifest(build_config, summaries, failed, demo=demo)
  storage.make_dirs(output_dir)
  old = storage.list_names(output_dir)
  if manifest_lib.MANIFEST_FILE in old:  # from here on the old build no longer looks complete
    storage.delete([storage.join(output_dir, manifest_lib.MANIFEST_FILE)])
  storage.delete([storage.join(output_dir, n) for n in old if n != manifest_lib.MANIFEST_FILE])
  moves = [(staged_shard(staging_dir, night["record"]), storage.join(output_dir, night["shard"]))
           for night in manifest["recordings"]]
  # An object store renames by copying: thousands of shards are moved in parallel.
  with concurrent.futures.ThreadPoolExecutor(
      _RENAME_THREADS if storage.is_url(output_dir) else 1) as pool:
    list(pool.map(lambda move: storage.rename(*move), moves))
  if tracebacks:
    storage.write_text(
        storage.join(output_dir, LOG_FILE),
        "".join(f"\n=== unexpected error building {record} ({file}) ===\n{text}"
                for record, file, text in tracebacks))
  storage.write_text(storage.join(output_dir, manifest_lib.MANIFEST_FILE),
                     manifest_lib.dumps(manifest))
  storage.delete_tree(staging_dir)
  logging.info("finalised %s: %d nights, %d failures", output_dir, len(summaries), len(failed))
  return manifest


class BuildNights(beam.PTransform):
  """PCollection[Recording] -> PCollection holding the build's manifest, once written.

  The STFT window is computed here, once, on the driver and handed to every worker.
  """

  def __init__(self,
               config: BuildConfig,
               staging_dir: str,
               output_dir: str,
               *,
               demo: bool = False,
               failures: Sequence[dict] = ()):
    super().__init__()
    self._config = config.to_dict()
    self._staging_dir = staging_dir
    self._output_dir = output_dir
    self._demo = demo
    self._failures = list(failures)
    self._window = spectrogram.window(config.spectrogram)
    self._store_settings = storage.s3_settings()

  def expand(self, recordings):
    return (recordings
            # Spread nights over workers: Create alone may hand them all to one.
            | "SpreadNights" >> beam.Reshuffle() | "BuildNight" >> beam.ParDo(
                BuildNightFn(self._config, self._staging_dir, self._window, self._store_settings)) |
            "AllNights" >> beam.combiners.ToList() |
            "Finalise" >> beam.Map(finalise,
                                   config=self._config,
                                   staging_dir=self._staging_dir,
                                   output_dir=self._output_dir,
                                   demo=self._demo,
                                   failures=self._failures,
                                   store_settings=self._store_settings))
