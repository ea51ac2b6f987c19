r"""Build subject-sharded TFRecords of spectrogram images from Sleep-EDF recordings.

With no --data_dir this builds a small synthetic DEMO set (made on the fly, well under a
minute on 2 cores):

  python -m beam_pipelines.build --runner DirectRunner

Real data (files as PhysioNet lays them out, found recursively), or downloaded first:

  python -m beam_pipelines.build --runner DirectRunner --data_dir ~/sleep-edfx \
      --subset sleep-edf-20 --output_dir out/sleep-edf-20
  python -m beam_pipelines.build --runner DirectRunner --download --subset sleep-edf-20

Any flag this module does not define must be a Beam pipeline option and goes to Beam,
e.g. `--direct_num_workers 2`. Inputs and outputs may be local paths or object-store URLs
(`s3://` with the aws extra; other schemes through fsspec, e.g. `gs://` with gcsfs, untested);
every file goes through `eegmobile.storage`, and the manifest is written last, as the mark
of a complete build. Object-store endpoint and credentials: the standard AWS variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...), or Beam's --s3_* options, which set them. On a Dask cluster (the dask extra; tested here on a local cluster):

  python -m beam_pipelines.build --runner DaskRunner --data_dir /data/sleep-edfx
  python -m beam_pipelines.build --runner DaskRunner --dask_client_address tcp://HOST:8786 \
      --data_dir s3://B/sleep-edfx --output_dir s3://B/builds/sleep-edf-20 \
      --s3_endpoint_url https://S3-ENDPOINT --s3_region_name REGION

Other runners take Beam's own options. They were NOT run here: Flink, Spark and Prism
download a job server at start, and Dataflow needs Google Cloud. Their workers must be able
to import this package (`--setup_file ./setup.py` or a container image) and to reach the
input and output locations:

  python -m beam_pipelines.build --data_dir gs://B/sleep-edfx --output_dir gs://B/out \
      --runner DataflowRunner --project P --region R --temp_location gs://B/tmp \
      --setup_file ./setup.py
  python -m beam_pipelines.build --data_dir s3://B/sleep-edfx --output_dir s3://B/out \
      --runner FlinkRunner --flink_master HOST:8081 --environment_type LOOPBACK
  python -m beam_pipelines.build --data_dir /mnt/shared/sleep-edfx --output_dir /mnt/shared/out \
      --runner SparkRunner --spark_master_url spark://HOST:7077

A flag that is neither this module's nor one of Beam's pipeline options (a typo such as
`--subest`, or `--data-dir` for `--data_dir`) stops the run before any work, naming the
closest flags. What Beam's workers print goes to `<output_dir>/build.log` (`--verbose`
shows it instead), together with the traceback of any unexpected error.

Exit status: 0 when every recording built; 1 when some failed (they are listed at the end
and in the manifest, which is then marked incomplete); 2 for unusable arguments or input;
3 for an unexpected error (a bug: the message names the file holding its traceback).
"""

import dataclasses
import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging

from beam_pipelines import options
from eegmobile import cli
from eegmobile import download
from eegmobile import errors
from eegmobile import storage
from eegmobile.config import BuildConfig
from eegmobile.config import EpochConfig
from eegmobile.config import SpectrogramConfig
from eegmobile.demo import synthetic

# Flags live here only: flags defined in library modules collide when imported twice.
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Directory with Sleep-EDF PSG and hypnogram files (searched "
    "recursively). Unset: build the synthetic demo set, or download with --download.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Where the build goes. Default: out/<subset>, or out/demo.")
_BUILD = cli.define_flags(BuildConfig, ["subset", "compression"])
_EPOCHS = cli.define_flags(EpochConfig, ["channel", "wake_edge_minutes"])
_SPECTROGRAM = cli.define_flags(SpectrogramConfig,
                                ["nperseg", "noverlap", "nfft", "window", "dynamic_range_db"])
_IMAGE_SIZE = flags.DEFINE_integer("image_size", SpectrogramConfig.image_height,
                                   "Image height and width, pixels (the model's input size).")
_DOWNLOAD = flags.DEFINE_bool(
    "download", False, "Download the subset from PhysioNet into --data_dir (default "
    "~/.cache/eegmobile/sleep-edfx) first; resumes and verifies checksums.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False,
                               "Replace an output directory that holds a different build.")
_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Show everything Beam and its workers print (by default it goes to "
    "<output_dir>/build.log) and Beam's own warnings.")


def _parse_flags(argv):
  """Our flags via absl; the rest must be Beam pipeline options, or the run stops here."""
  rest = flags.FLAGS(argv, known_only=True)
  if not _VERBOSE.value:
    _quiet_beam()
  unknown = options.unknown_arguments(rest[1:])
  if unknown:
    print("error: unknown argument(s): " + options.describe_unknown(unknown, list(flags.FLAGS)) +
          ". This command takes its own flags (python -m beam_pipelines.build --helpshort) and "
          "Beam pipeline options.",
          file=sys.stderr)
    sys.exit(2)
  return rest


def _config() -> BuildConfig:
  """The build's config from the flags (ValueError: an impossible combination)."""
  spectrogram = cli.from_flags(SpectrogramConfig,
                               _SPECTROGRAM,
                               image_height=_IMAGE_SIZE.value,
                               image_width=_IMAGE_SIZE.value)
  return cli.from_flags(BuildConfig,
                        _BUILD,
                        epochs=cli.from_flags(EpochConfig, _EPOCHS),
                        spectrogram=spectrogram)


def _recordings_dir(subset: str) -> tuple[str, bool]:
  """(directory of recordings, whether it is the demo set)."""
  if _DOWNLOAD.value:
    data_dir = _DATA_DIR.value or os.path.expanduser("~/.cache/eegmobile/sleep-edfx")
    download.download_subset(subset, data_dir)
    return data_dir, False
  if _DATA_DIR.value:
    return _DATA_DIR.value, False
  demo_dir = os.path.join("out", "demo-recordings")
  logging.warning(
      "No --data_dir given: building the synthetic DEMO set (recordings made "
      "by eegmobile.demo.synthetic in %s). For real data pass --data_dir or "
      "--download.", demo_dir)
  synthetic.make_demo_dataset(demo_dir)
  return demo_dir, True


def _report(result) -> str:
  manifest = result.manifest
  totals = manifest["totals"]
  lines = [
      f"{'DEMO ' if manifest['demo'] else ''}build of {manifest['subset']} -> "
      f"{result.output_dir}",
      f"  {len(manifest['recordings'])} nights, {len(manifest['subjects'])} subjects, "
      f"{totals['num_examples']} epochs in {result.seconds:.1f} s "
      f"({totals['num_examples'] / max(result.seconds, 1e-9):.0f} epochs/s)",
      "  epochs per stage: " +
      ", ".join(f"{s} {totals['class_counts'].get(s, 0)}" for s in manifest["stages"]),
      "  dropped epochs: " + (", ".join(f"{k} {v}" for k, v in totals["dropped"].items()) or "none")
  ]
  lines.append("  Beam counters: " + ", ".join(f"{k} {v}" for k, v in result.metrics.items()))
  if manifest["failures"]:
    lines.append(f"  FAILED: {len(manifest['failures'])} recording(s); the manifest is "
                 "marked incomplete:")
    lines += [f"    {f['file']}: {f['error']}" for f in manifest["failures"]]
  if result.unexpected_errors:
    lines.append(f"  {result.unexpected_errors} of them failed unexpectedly: a bug, not bad "
                 f"input; please report it with the tracebacks in {result.log_path}")
  elif result.log_path:
    lines.append(f"  Beam workers' output: {result.log_path}")
  return "\n".join(lines)


class _BeamNoise(std_logging.Filter):
  """Drops records below ERROR logged from Beam's code on the root logger (e.g. the
  import-time "apitools not found" warning, irrelevant to a build)."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    beam_code = f"{os.sep}apache_beam{os.sep}" in record.pathname
    return record.levelno >= std_logging.ERROR or not beam_code


def _quiet_beam() -> None:
  """Beam's runner logs every bundle and relays worker messages; keep its errors only."""
  std_logging.getLogger("apache_beam").setLevel(std_logging.ERROR)
  std_logging.getLogger("distributed").setLevel(std_logging.WARNING)  # a Dask cluster's chatter
  std_logging.getLogger().addFilter(_BeamNoise())


def main(argv):
  # Lazy: imported once the flags are parsed, so that --verbose decides whether Beam's
  # import-time warnings (e.g. "apitools not found") reach the terminal (`_quiet_beam`).
  from beam_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  try:
    config = _config()
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  output_dir = _OUTPUT_DIR.value or os.path.join(
      "out", "demo" if not (_DATA_DIR.value or _DOWNLOAD.value) else config.subset)
  try:
    # Before any work (a download, the demo recordings): an output the build cannot write.
    pipeline.configure_store(pipeline.pipeline_options(argv[1:]))
    storage.check_writable(storage.absolute(output_dir))
    if _DOWNLOAD.value and storage.is_url(_DATA_DIR.value or ""):
      raise errors.RecordingError(_DATA_DIR.value, "--download needs a local --data_dir")
    data_dir, demo = _recordings_dir(config.subset)
    result = pipeline.run(data_dir,
                          output_dir,
                          config,
                          beam_args=argv[1:],
                          demo=demo,
                          overwrite=_OVERWRITE.value,
                          verbose=_VERBOSE.value)
  except (FileNotFoundError, errors.RecordingError, ConnectionError, storage.StorageError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    path = cli.report_bug(e, f"{output_dir.rstrip(os.sep)}.error.log")
    print(cli.bug_message(e, path), file=sys.stderr)
    return 3
  print(_report(result))
  return 0 if result.ok else 1


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
