"""Beam transforms of the build: one DoFn that builds a night and stages its shard.

Examples never travel through Beam: each night's DoFn call writes its own shard to the
staging directory (a night is ~1,000 epochs, ~50 MB), and only the small manifest entry
is emitted, so the job needs no shuffle of image bytes. Every built, failed or dropped
item is counted with Beam metrics under the namespace `eegmobile`.
"""

import dataclasses
import json
import os
import time
import traceback
from typing import Optional

import apache_beam as beam
from absl import logging
import numpy as np

from beam_pipelines import storage
from eegmobile import errors
from eegmobile import nights
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile.config import BuildConfig
from tfrecords import writer

NAMESPACE = "eegmobile"
NIGHTS_DIR = "nights"  # staged shards and manifest entries, one pair per night
FAILED_DIR = "failed"  # one JSON per recording that could not be built


def staged_shard(staging_dir: str, record: str) -> str:
  return storage.join(staging_dir, NIGHTS_DIR, record + ".tfrecord")


def _write_json(path: str, value: dict) -> None:
  storage.write_bytes(path, json.dumps(value, sort_keys=True).encode())  # never half a file


def _write_shard(path: str, examples, compression: str) -> None:
  """The night's shard, whole or not at all (local: .part then rename; object: one upload)."""
  if storage.is_url(path):
    with storage.create(path) as stream:
      writer.write_records(stream, examples, compression)
    return
  writer.write_tfrecord(path + ".part", examples, compression)
  os.replace(path + ".part", path)


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
  """Recording -> staged shard + manifest entry (main output) or a failure (tag 'failed').

  Args:
    config: `BuildConfig.to_dict()`.
    staging_dir: where shards, entries and failures are staged.
    window: the STFT window, computed once on the driver, so that workers need not
      import scipy.signal; None computes it in each worker.
    filesystem_options: the object-store pipeline options (endpoints, credentials) that
      FileSystems needs in each worker.
  """

  def __init__(self,
               config: dict,
               staging_dir: str,
               window: Optional[np.ndarray] = None,
               filesystem_options: Optional[dict] = None):
    super().__init__()
    self._config_dict = config  # plain dict: small, picklable, no reference to the caller
    self._staging_dir = staging_dir
    self._window = window
    self._filesystem_options = filesystem_options or {}

  def setup(self):
    if self._filesystem_options:  # object-store endpoint and credentials, in this worker too
      from apache_beam.options import pipeline_options as po  # pylint: disable=g-import-not-at-top
      storage.configure(po.PipelineOptions.from_dictionary(self._filesystem_options))
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
      logging.error("FAILED %s: %s: %s", recording.record, failure["file"], failure["error"])
      _write_json(storage.join(self._staging_dir, FAILED_DIR, recording.record + ".json"), failure)
      yield beam.pvalue.TaggedOutput("failed", failure)
      return
    shard = staged_shard(self._staging_dir, recording.record)
    _write_shard(shard, night.examples, self._config.compression)
    _write_json(shard + ".json", night.summary)
    self._count(night.summary)
    elapsed = time.monotonic() - start
    self._seconds.update(int(elapsed * 1000))
    logging.info("built %s: %d epochs in %.1f s", recording.record, night.summary["num_examples"],
                 elapsed)
    yield night.summary

  def _count(self, summary: dict) -> None:
    self._built.inc()
    self._epochs.inc(summary["num_examples"])
    for stage, count in summary["class_counts"].items():
      beam.metrics.Metrics.counter(NAMESPACE, f"epochs_{stage}").inc(count)
    for reason, count in summary["dropped"].items():
      beam.metrics.Metrics.counter(NAMESPACE, f"dropped_{reason}").inc(count)


class BuildNights(beam.PTransform):
  """PCollection[Recording] -> (built manifest entries, failures).

  The STFT window is computed here, once, on the driver and handed to every worker.
  """

  def __init__(self, config: BuildConfig, staging_dir: str, options=None):
    super().__init__()
    self._config = config.to_dict()
    self._staging_dir = staging_dir
    self._window = spectrogram.window(config.spectrogram)
    # Only the object-store settings travel to the workers (endpoints, credentials).
    self._filesystem_options = {} if options is None else {
        k: v
        for k, v in options.get_all_options(drop_default=True).items()
        if k.startswith(("s3_", "gcs_", "hdfs_", "azure_", "blob_"))
    }

  def expand(self, recordings):
    return (recordings
            # Spread nights over workers: Create alone may hand them all to one worker.
            | "SpreadNights" >> beam.Reshuffle() | "BuildNight" >> beam.ParDo(
                BuildNightFn(self._config, self._staging_dir, self._window,
                             self._filesystem_options)).with_outputs("failed", main="built"))
