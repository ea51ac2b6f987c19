"""The build: Sleep-EDF recordings -> Beam -> subject-sharded TFRecords + manifest.

`run()` finds the recordings, builds every night in a Beam pipeline (each night's shard
is written to a staging directory beside the output), then names the shards per subject,
writes the manifest last and moves the staging directory into place. An interrupted run
leaves only `<output_dir>.incomplete-<pid>`, never a directory that looks finished.

The DirectRunner runs offline: Beam's DirectRunner first tries the Prism runner, whose
binary it downloads from GitHub (impossible offline; it then falls back silently), so for
`--runner DirectRunner` we hand Beam the runner it falls back to, the FnApiRunner, in
multi-process mode with one worker per core. Any other `--runner` (Dataflow, Flink,
Spark) is passed through with the rest of Beam's options.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import threading
import time
from typing import Optional, Sequence

from absl import logging

from eegmobile import errors
from eegmobile import sleep_edf
from eegmobile.config import BuildConfig
from tfrecords import manifest as manifest_lib

LOG_FILE = "build.log"  # inside the build: what Beam workers wrote, and tracebacks
_DIRECT = ("DirectRunner", "direct", "BundleBasedDirectRunner", "SwitchingDirectRunner")


@dataclasses.dataclass(frozen=True)
class BuildResult:
  """What a build did."""
  output_dir: str
  manifest: dict
  metrics: dict  # Beam counter name -> value
  seconds: float
  log_path: Optional[str] = None  # Beam workers' output and unexpected errors' tracebacks
  unexpected_errors: int = 0  # failures that are bugs (tracebacks in log_path), not bad input

  @property
  def ok(self) -> bool:
    return self.manifest["complete"]


def pipeline_options(argv: Sequence[str] = ()):
  """Beam options from command-line style arguments; DirectRunner gets one worker a core.

  Args:
    argv: Beam arguments, e.g. ["--runner", "DirectRunner", "--direct_num_workers", "2"].
  """
  from apache_beam.options import pipeline_options as po  # pylint: disable=g-import-not-at-top
  argv = list(argv)
  options = po.PipelineOptions(argv)
  standard = options.view_as(po.StandardOptions)
  standard.runner = standard.runner or "DirectRunner"
  if standard.runner in _DIRECT:
    direct = options.view_as(po.DirectOptions)
    if not any(a.startswith("--direct_num_workers") for a in argv):
      direct.direct_num_workers = os.cpu_count() or 1
    if not any(a.startswith("--direct_running_mode") for a in argv):
      direct.direct_running_mode = ("multi_processing"
                                    if direct.direct_num_workers > 1 else "in_memory")
  if not any(a.startswith("--default_sdk_harness_log_level") for a in argv):
    # Beam's workers log every bundle at INFO; our driver reports progress per night.
    options.view_as(po.WorkerOptions).default_sdk_harness_log_level = "WARNING"
  return options


_ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_workers(options):
  """One BLAS thread per worker process when the DirectRunner runs one worker per core.

  NumPy's BLAS otherwise starts a thread per core in every worker: with 2 workers on 2
  cores that is 4 spinning threads, and the build used 2.4x the CPU time per epoch
  (measured: 2.6 vs 1.1 ms/epoch). Variables the user set are left alone.
  """
  from apache_beam.options import pipeline_options as po  # pylint: disable=g-import-not-at-top
  direct = options.view_as(po.DirectOptions)
  parallel = (options.view_as(po.StandardOptions).runner in _DIRECT and
              direct.direct_running_mode == "multi_processing")
  added = [v for v in _ONE_THREAD if parallel and v not in os.environ]
  os.environ.update({v: "1" for v in added})
  try:
    yield
  finally:
    for v in added:
      os.environ.pop(v, None)


def make_runner(options):
  """The FnApiRunner for the DirectRunner (no Prism download); None lets Beam choose."""
  from apache_beam.options import pipeline_options as po  # pylint: disable=g-import-not-at-top
  if options.view_as(po.StandardOptions).runner not in _DIRECT:
    return None
  # As DirectRunner.run_pipeline builds it after its Prism attempt, minus the attempt.
  from apache_beam.portability.api import beam_provision_api_pb2  # pylint: disable=g-import-not-at-top
  from apache_beam.runners.portability import portable_runner  # pylint: disable=g-import-not-at-top
  from apache_beam.runners.portability.fn_api_runner import fn_runner  # pylint: disable=g-import-not-at-top
  encoded = portable_runner.JobServiceHandle.encode_pipeline_options(options.get_all_options())
  return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
      beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def check_output_dir(output_dir: str, config: BuildConfig, *, demo: bool, overwrite: bool) -> None:
  """Refuses, before any work, to write over something that is not this same build.

  Raises:
    errors.OutputDirError: output_dir holds other files, or a build with other parameters.
  """
  if not os.path.exists(output_dir) or overwrite:
    return
  if not os.path.isdir(output_dir):
    raise errors.OutputDirError(output_dir, "exists and is not a directory")
  if not os.listdir(output_dir):
    return
  if not os.path.exists(os.path.join(output_dir, manifest_lib.MANIFEST_FILE)):
    raise errors.OutputDirError(
        output_dir, "is not empty and holds no build "
        "(no manifest.json); refusing to write into it")
  old = manifest_lib.load_manifest(output_dir, allow_incomplete=True)
  there = _flatten({"config": old.get("config"), "demo": old.get("demo")})
  now = _flatten({"config": config.to_dict(), "demo": demo})
  differences = [
      f"{key}: {there.get(key)!r} there, {value!r} now" for key, value in now.items()
      if there.get(key) != value
  ]
  if differences:
    raise errors.OutputDirError(
        output_dir, "holds a different build (" + "; ".join(differences) +
        "); choose another --output_dir or pass --overwrite")


def _flatten(d: dict, prefix: str = "") -> dict:
  flat = {}
  for key, value in (d or {}).items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


class _Progress:
  """Logs each night as its staged entry appears, from the driver, while Beam runs."""

  def __init__(self, staging_dir: str, total: int, every_s: float = 1.0):
    self._dirs = {
        "built": os.path.join(staging_dir, "nights"),
        "FAILED": os.path.join(staging_dir, "failed")
    }
    self._total, self._every_s, self._seen = total, every_s, set()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, daemon=True)
    self._start = time.monotonic()

  def _report_new(self):
    for status, directory in self._dirs.items():
      for name in sorted(os.listdir(directory)):
        if name.endswith(".json") and name not in self._seen:
          self._seen.add(name)
          logging.info("[%d/%d] %s %s (%.0f s)", len(self._seen), self._total, status,
                       name.split(".")[0],
                       time.monotonic() - self._start)

  def _loop(self):
    while not self._stop.wait(self._every_s):
      self._report_new()

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self._report_new()


def _read_entries(directory: str) -> list[dict]:
  entries = []
  for name in sorted(os.listdir(directory)):
    if name.endswith(".json"):
      with open(os.path.join(directory, name)) as f:
        entries.append(json.load(f))
  return entries


def _pairing_failure(problem: errors.PairingError) -> dict:
  return {
      "record": sleep_edf.parse_name(problem.path).record,
      "file": os.path.basename(problem.path),
      "error": problem.problem,
      "kind": type(problem).__name__
  }


def _beam_counters(result) -> dict:
  counters = {}
  for counter in result.metrics().query()["counters"]:
    value = counter.committed if counter.committed is not None else counter.attempted
    counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + value
  return dict(sorted(counters.items()))


def _finalise(staging_dir: str, output_dir: str, manifest: dict) -> None:
  """Names the shards, writes the manifest last, then swaps staging into output_dir."""
  from beam_pipelines import transforms  # pylint: disable=g-import-not-at-top
  for night in manifest["recordings"]:
    os.replace(transforms.staged_shard(staging_dir, night["record"]),
               os.path.join(staging_dir, night["shard"]))
  shutil.rmtree(os.path.join(staging_dir, transforms.NIGHTS_DIR))
  shutil.rmtree(os.path.join(staging_dir, transforms.FAILED_DIR))
  with open(os.path.join(staging_dir, manifest_lib.MANIFEST_FILE), "w") as f:
    f.write(manifest_lib.dumps(manifest))
  old = None
  if os.path.exists(output_dir):
    old = f"{output_dir.rstrip(os.sep)}.replaced-{os.getpid()}"
    os.replace(output_dir, old)
  os.replace(staging_dir, output_dir)
  if old:
    shutil.rmtree(old)


def check_local_path(path: str, what: str) -> None:
  """Refuses a URL where a local (or mounted shared) path is needed.

  Raises:
    errors.OutputDirError: path has a URL scheme (gs://, s3://, ...): the build reads and
      writes with local file I/O, so such a path would silently become a local folder
      named "gs:".
  """
  if "://" in path:
    raise errors.OutputDirError(
        path, f"{what} must be a local or mounted path; object-store URLs are not "
        f"supported by the build yet (it would become a local folder named "
        f"{path.split('://')[0] + ':'!r})")


def _find(data_dir: str, config: BuildConfig) -> tuple[list, list]:
  """The subset's recordings and the pairing problems (logged, later listed as failures)."""
  recordings, problems = sleep_edf.find_recordings(data_dir, config.subset)
  for problem in problems:
    logging.error("SKIPPED %s", problem)
  if not recordings and not problems:
    raise FileNotFoundError(f"{data_dir}: no Sleep-EDF recordings of subset {config.subset} "
                            "(expected files like sleep-cassette/SC4001E0-PSG.edf)")
  return recordings, problems


@contextlib.contextmanager
def _worker_output_to(log_path: Optional[str]):
  """Sends everything written to file descriptor 2 (Beam workers started now inherit it) to
  log_path, while the driver's own log lines still reach the terminal. None: no change."""
  if log_path is None:
    yield
    return
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  handler = absl_logging.get_absl_handler().python_handler
  sys.stderr.flush()
  terminal_fd = os.dup(2)
  terminal = os.fdopen(os.dup(terminal_fd), "w", buffering=1)
  previous = handler.stream
  with open(log_path, "ab", buffering=0) as log:
    os.dup2(log.fileno(), 2)
    handler.setStream(terminal)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(terminal_fd, 2)
      os.close(terminal_fd)
      handler.setStream(previous)
      terminal.close()


def _write_tracebacks(failures: list[dict], log_path: str) -> int:
  """Appends unexpected errors' tracebacks to the build log; returns how many there were.

  The tracebacks (absolute paths, line numbers) stay out of the manifest, whose bytes
  depend only on the inputs; their failure entries keep the one-line error.
  """
  bugs = [f for f in failures if f.get("traceback")]
  if bugs:
    with open(log_path, "a") as log:
      for failure in bugs:
        log.write(f"\n=== unexpected error building {failure['record']} "
                  f"({failure['file']}) ===\n{failure['traceback']}")
  for failure in failures:
    failure.pop("traceback", None)
  return len(bugs)


def _keep_log(log_path: str, output_dir: str) -> Optional[str]:
  """Moves a failed build's log beside the output (the staging directory is deleted)."""
  if not os.path.exists(log_path) or not os.path.getsize(log_path):
    return None
  kept = f"{output_dir.rstrip(os.sep)}.failed-build.log"
  shutil.move(log_path, kept)
  return kept


def _run_beam(recordings: list, config: BuildConfig, staging_dir: str, options):
  """Runs the Beam job that stages every night's shard and entry; returns Beam's result."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from beam_pipelines import transforms  # pylint: disable=g-import-not-at-top
  with _single_threaded_workers(options), _Progress(staging_dir, len(recordings)):
    pipeline = beam.Pipeline(runner=make_runner(options), options=options)
    _ = (pipeline | "ListRecordings" >> beam.Create(recordings) |
         "BuildNights" >> transforms.BuildNights(config, staging_dir))
    result = pipeline.run()
    result.wait_until_finish()
  return result


def run(data_dir: str,
        output_dir: str,
        config: BuildConfig,
        *,
        beam_args: Sequence[str] = (),
        demo: bool = False,
        overwrite: bool = False,
        verbose: bool = False) -> BuildResult:
  """Builds the TFRecords of one subset.

  Args:
    data_dir: directory holding Sleep-EDF files (searched recursively).
    output_dir: where the build goes (created; see `check_output_dir`).
    config: build parameters.
    beam_args: Beam pipeline arguments (runner and its options).
    demo: mark the build as the synthetic demo set in its manifest.
    overwrite: replace whatever output_dir holds.
    verbose: let Beam's workers write to the terminal; by default what they write goes to
      `<output_dir>/build.log` (`BuildResult.log_path`), with the traceback of every
      unexpected error.

  Returns:
    The build's manifest, Beam counters and wall time. `result.ok` is False when some
    recordings failed; they are listed in the manifest, which is then marked incomplete.

  Raises:
    FileNotFoundError: data_dir is missing or holds no recording of the subset.
    errors.OutputDirError: output_dir holds something else, or a path is a URL.
  """
  from beam_pipelines import transforms  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  check_local_path(data_dir, "--data_dir")
  check_local_path(output_dir, "--output_dir")
  recordings, problems = _find(data_dir, config)
  check_output_dir(output_dir, config, demo=demo, overwrite=overwrite)
  logging.info("building %d nights of %s from %s into %s", len(recordings), config.subset, data_dir,
               output_dir)
  staging_dir = f"{os.path.abspath(output_dir).rstrip(os.sep)}.incomplete-{os.getpid()}"
  shutil.rmtree(staging_dir, ignore_errors=True)
  for sub in (transforms.NIGHTS_DIR, transforms.FAILED_DIR):
    os.makedirs(os.path.join(staging_dir, sub))
  log_path = os.path.join(staging_dir, LOG_FILE)
  options = pipeline_options(beam_args)
  try:
    with _worker_output_to(None if verbose else log_path):
      result = _run_beam(recordings, config, staging_dir, options)
    failures = _read_entries(os.path.join(
        staging_dir, transforms.FAILED_DIR)) + [_pairing_failure(p) for p in problems]
    bugs = _write_tracebacks(failures, log_path)
    summaries = _read_entries(os.path.join(staging_dir, transforms.NIGHTS_DIR))
    manifest = manifest_lib.make_manifest(config, summaries, failures, demo=demo)
    _finalise(staging_dir, output_dir, manifest)
  except KeyboardInterrupt:
    shutil.rmtree(staging_dir, ignore_errors=True)  # nothing half-written stays behind
    raise
  except BaseException as e:
    kept = _keep_log(log_path, output_dir)
    shutil.rmtree(staging_dir, ignore_errors=True)
    if kept:
      e.add_note(f"Beam workers' output: {kept}")
    raise
  log = os.path.join(output_dir, LOG_FILE)
  return BuildResult(output_dir=output_dir,
                     manifest=manifest,
                     metrics=_beam_counters(result),
                     seconds=time.monotonic() - start,
                     log_path=log if os.path.exists(log) else None,
                     unexpected_errors=bugs)
