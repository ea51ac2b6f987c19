"""The build: Sleep-EDF recordings -> Beam -> subject-sharded TFRecords + manifest.

`run()` finds the recordings and runs the Beam pipeline of `transforms.BuildNights`: each
night's shard is written to a staging directory beside the output, and the pipeline's last
step names the shards per subject, moves them into place and writes the manifest last;
the driver takes its results (the manifest, Beam's counters) from the pipeline. An
interrupted run leaves only `<output_dir>.incomplete` (removed by the next run), never a
directory that looks finished.

The DirectRunner runs offline: Beam's DirectRunner first tries the Prism runner, whose
binary it downloads from GitHub (impossible offline; it then falls back silently), so for
`--runner DirectRunner` we hand Beam the runner it falls back to, the FnApiRunner, in
multi-process mode with one worker per core. Any other `--runner` (Dataflow, Flink,
Spark) is passed through with the rest of Beam's options.
"""

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from typing import Optional, Sequence

from absl import logging
import apache_beam as beam
from apache_beam.options import pipeline_options as po
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability import portable_runner
from apache_beam.runners.portability.fn_api_runner import fn_runner

from beam_pipelines import transforms
from eegmobile import errors
from eegmobile import sleep_edf
from eegmobile import storage
from eegmobile.config import BuildConfig
from tfrecords import manifest as manifest_lib

LOG_FILE = transforms.LOG_FILE
# Beam's S3 options (--s3_<name>) that `storage.configure_s3` takes.
_S3_OPTIONS = ("endpoint_url", "access_key_id", "secret_access_key", "session_token", "region_name")
STAGING_SUFFIX = ".incomplete"  # <output_dir>.incomplete: where a build is staged
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
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
  argv = list(argv)
  options = po.PipelineOptions(argv)
  standard = options.view_as(po.StandardOptions)
  standard.runner = standard.runner or "DirectRunner"
  if standard.runner in ("DaskRunner", "dask"):
    standard.runner = DASK_RUNNER  # Beam knows it only by its full path
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
  cores that is 4 spinning threads, and the build used far more CPU time per epoch
  (BUILD_NOTES.md, "Offline DirectRunner"). Variables the user set are left alone.
  """
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


class ClusterError(ConnectionError):
  """The Dask scheduler cannot be reached (the message names its address)."""


def _dask_options(options):
  # Lazy: the dask extra.
  from apache_beam.runners.dask import dask_runner  # pylint: disable=g-import-not-at-top
  return options.view_as(dask_runner.DaskOptions)


@contextlib.contextmanager
def _dask_cluster(options, num_recordings: int):
  """For the DaskRunner: one night per partition, and a cluster to run on.

  Dask puts up to 128 items into one partition and treats Reshuffle as a no-op, so without
  a partition count one worker would build every night. With no --dask_client_address (or
  scheduler file) a local cluster is started on 127.0.0.1, one single-threaded worker
  process per core, and stopped afterwards.

  Raises:
    ClusterError: the scheduler at --dask_client_address does not answer.
  """
  if options.view_as(po.StandardOptions).runner != DASK_RUNNER:
    yield
    return
  dask = _dask_options(options)
  if dask.npartitions is None and dask.partition_size is None:
    dask.npartitions = max(1, num_recordings)
  if dask.address or dask.scheduler_file:
    _check_scheduler(dask.address, dask.timeout)
    yield
    return
  from dask import distributed  # pylint: disable=g-import-not-at-top  # lazy: the dask extra
  with distributed.LocalCluster(n_workers=os.cpu_count() or 1,
                                threads_per_worker=1,
                                processes=True,
                                host="127.0.0.1",
                                dashboard_address=None,
                                env={v: "1" for v in _ONE_THREAD}) as cluster:
    dask.address = cluster.scheduler_address
    yield


def _check_scheduler(address: Optional[str], timeout) -> None:
  from dask import distributed  # pylint: disable=g-import-not-at-top  # lazy: the dask extra
  if not address:
    return
  seconds = timeout if isinstance(timeout, int) else 10
  try:
    with distributed.Client(address, timeout=seconds):
      pass
  except (OSError, TimeoutError) as e:
    raise ClusterError(f"{address}: no Dask scheduler answers there within {seconds} s "
                       f"({type(e).__name__}: {e}); check --dask_client_address") from e


def make_runner(options):
  """The FnApiRunner for the DirectRunner (no Prism download); None lets Beam choose."""
  if options.view_as(po.StandardOptions).runner not in _DIRECT:
    return None
  # As DirectRunner.run_pipeline builds it after its Prism attempt, minus the attempt.
  encoded = portable_runner.JobServiceHandle.encode_pipeline_options(options.get_all_options())
  return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
      beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def _is_shard_or_log(name: str) -> bool:
  return ".tfrecord-" in name or name == LOG_FILE


def check_output_dir(output_dir: str, config: BuildConfig, *, demo: bool, overwrite: bool) -> None:
  """Refuses, before any work, to write over something that is not this same build.

  A location holding only shards and a log but no manifest is a build that was stopped
  while its files were being moved into place: it is replaced.

  Raises:
    errors.OutputDirError: output_dir is a file, holds other files, or holds a build with
      other parameters.
  """
  if overwrite:
    return
  if not storage.is_url(output_dir) and os.path.exists(
      output_dir) and not os.path.isdir(output_dir):
    raise errors.OutputDirError(output_dir, "exists and is not a directory")
  names = storage.list_names(output_dir)
  if manifest_lib.MANIFEST_FILE not in names:
    others = [n for n in names if not _is_shard_or_log(n)]
    if others:
      raise errors.OutputDirError(
          output_dir, "is not empty and holds no build (no manifest.json; it holds "
          f"{', '.join(others[:5])}{', ...' if len(others) > 5 else ''}); refusing to write "
          "into it")
    return
  path = storage.join(output_dir, manifest_lib.MANIFEST_FILE)
  old = manifest_lib.loads(storage.read_bytes(path).decode(), path, allow_incomplete=True)
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


def _pairing_failure(problem: errors.PairingError) -> dict:
  return {
      "record": sleep_edf.parse_name(problem.path).record,
      "file": os.path.basename(problem.path),
      "error": problem.problem,
      "kind": type(problem).__name__
  }


def _beam_counters(result) -> dict:
  """Beam's counters, or {} where the runner collects none (the DaskRunner raises)."""
  try:
    queried = result.metrics().query()["counters"]
  except NotImplementedError:
    return {}
  counters = {}
  for counter in queried:
    value = counter.committed if counter.committed is not None else counter.attempted
    counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + value
  return dict(sorted(counters.items()))


def _find(data_dir: str, config: BuildConfig) -> tuple[list, list]:
  """The subset's recordings and the pairing problems (logged, later listed as failures)."""
  recordings, problems = sleep_edf.pair_files(storage.find_files(data_dir), config.subset)
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
  handler = logging.get_absl_handler().python_handler
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


def _keep_log(log_path: str, output_dir: str) -> Optional[str]:
  """Keeps a failed build's log beside a local output (or in the temporary directory)."""
  if not os.path.exists(log_path) or not os.path.getsize(log_path):
    return None
  if storage.is_url(output_dir):
    kept = os.path.join(tempfile.gettempdir(), f"eegmobile-failed-build-{os.getpid()}.log")
  else:
    kept = f"{output_dir.rstrip(os.sep)}.failed-build.log"
  shutil.move(log_path, kept)
  return kept


def _run_beam(recordings: list, transform, options):
  """Runs the build's Beam pipeline; returns Beam's result."""
  with _single_threaded_workers(options), _dask_cluster(options, len(recordings)):
    pipeline = beam.Pipeline(runner=make_runner(options), options=options)
    _ = pipeline | "ListRecordings" >> beam.Create(recordings) | "BuildNights" >> transform
    result = pipeline.run()
    try:
      result.wait_until_finish()
    finally:
      client = getattr(result, "client", None)  # the DaskRunner's client to the cluster
      if client is not None:
        client.close()
  return result


def _prepare_staging(output_dir: str) -> str:
  """The staging location beside output_dir, emptied: a killed build's leftovers go now."""
  staging_dir = f"{storage.absolute(output_dir).rstrip('/').rstrip(os.sep)}{STAGING_SUFFIX}"
  if storage.has_files(staging_dir):
    logging.warning("removing %s, left by a build of %s that did not finish", staging_dir,
                    output_dir)
    storage.delete_tree(staging_dir)
  storage.make_dirs(storage.join(staging_dir, transforms.NIGHTS_DIR))
  return staging_dir


def _append_worker_output(log_path: str, output_dir: str) -> None:
  """Adds what Beam's workers wrote to the build's log (after its tracebacks, if any)."""
  if not os.path.exists(log_path) or not os.path.getsize(log_path):
    return
  build_log = storage.join(output_dir, LOG_FILE)
  before = storage.read_bytes(build_log) if storage.exists(build_log) else b""
  with open(log_path, "rb") as f:
    storage.write_bytes(build_log, before + f.read())


def configure_store(options) -> None:
  """Maps Beam's object-store options (--s3_endpoint_url, ...) onto `eegmobile.storage`'s
  one convention (the standard AWS variables), for this process and its workers."""
  s3 = options.get_all_options()
  storage.configure_s3(**{name: s3.get(f"s3_{name}") for name in _S3_OPTIONS})


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
    data_dir: directory or object-store prefix holding Sleep-EDF files (searched
      recursively).
    output_dir: where the build goes: a local path or an object-store URL such as
      s3://bucket/builds/sleep-edf-20 (see `check_output_dir`).
    config: build parameters.
    beam_args: Beam pipeline arguments (runner and its options, object-store endpoints
      and credentials).
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
    errors.OutputDirError: output_dir holds something else.
    storage.StorageError: output_dir cannot be written (bucket, endpoint, credentials).
    ClusterError: the Dask scheduler named by --dask_client_address does not answer.
  """
  start = time.monotonic()
  options = pipeline_options(beam_args)
  configure_store(options)
  given = output_dir  # results name the output as the caller did
  data_dir, output_dir = storage.absolute(data_dir), storage.absolute(output_dir)
  storage.check_writable(output_dir)
  recordings, problems = _find(data_dir, config)
  check_output_dir(output_dir, config, demo=demo, overwrite=overwrite)
  logging.info("building %d nights of %s from %s into %s", len(recordings), config.subset, data_dir,
               output_dir)
  staging_dir = _prepare_staging(output_dir)
  log_path = os.path.join(tempfile.mkdtemp(prefix="eegmobile-build-"), LOG_FILE)
  transform = transforms.BuildNights(config,
                                     staging_dir,
                                     output_dir,
                                     demo=demo,
                                     failures=[_pairing_failure(p) for p in problems])
  try:
    with _worker_output_to(None if verbose else log_path):
      result = _run_beam(recordings, transform, options)
    # The pipeline's output: the manifest its last step wrote (and nothing else read back).
    manifest = manifest_lib.load_manifest(output_dir, allow_incomplete=True)
    _append_worker_output(log_path, output_dir)
  except KeyboardInterrupt:
    storage.delete_tree(staging_dir)  # nothing half-written stays behind
    raise
  except BaseException as e:
    kept = _keep_log(log_path, output_dir)
    storage.delete_tree(staging_dir)
    if kept:
      e.add_note(f"Beam workers' output: {kept}")
    raise
  finally:
    shutil.rmtree(os.path.dirname(log_path), ignore_errors=True)
  log = storage.join(given, LOG_FILE)
  return BuildResult(output_dir=given,
                     manifest=manifest,
                     metrics=_beam_counters(result),
                     seconds=time.monotonic() - start,
                     log_path=log if storage.exists(log) else None,
                     unexpected_errors=sum(
                         f["kind"] == "UnexpectedError" for f in manifest["failures"]))
