r"""Build subject-sharded TFRecords of spectrogram images from Sleep-EDF recordings.

With no --data_dir this builds a small synthetic DEMO set (made on the fly, well under a
minute on 2 cores):

  python -m beam_pipelines.build --runner DirectRunner

Real data (files as PhysioNet lays them out, found recursively), or downloaded first:

  python -m beam_pipelines.build --runner DirectRunner --data_dir ~/sleep-edfx \
      --subset sleep-edf-20 --output_dir out/sleep-edf-20
  python -m beam_pipelines.build --runner DirectRunner --download --subset sleep-edf-20

Any flag this module does not define is a Beam pipeline option and goes to Beam, e.g.
`--direct_num_workers 2`, or another runner (not run here; the output directory must be
a path every worker can write, e.g. a shared file system):

  python -m beam_pipelines.build --data_dir /mnt/sleep-edfx --output_dir /mnt/out \
      --runner FlinkRunner --flink_master localhost:8081 --environment_type LOOPBACK
  python -m beam_pipelines.build --data_dir /mnt/sleep-edfx --output_dir /mnt/out \
      --runner SparkRunner --spark_master_url spark://localhost:7077
  python -m beam_pipelines.build ... --runner DataflowRunner --project P --region R \
      --temp_location gs://B/tmp --setup_file ./setup.py

Exit status: 0 when every recording built; 1 when some failed (they are listed at the end
and in the manifest, which is then marked incomplete); 2 for unusable arguments.
"""

import dataclasses
import os
import sys

from absl import app
from absl import flags
from absl import logging

# Flags live here only: flags defined in library modules collide when imported twice.
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Directory with Sleep-EDF PSG and hypnogram files (searched "
    "recursively). Unset: build the synthetic demo set, or download with --download.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Where the build goes. Default: out/<subset>, or out/demo.")
_SUBSET = flags.DEFINE_enum("subset", "sleep-edf-20",
                            ["sleep-edf-20", "sleep-edf-78", "sleep-edf-st", "all"],
                            "Which recordings to build.")
_CHANNEL = flags.DEFINE_string("channel", "EEG Fpz-Cz", "EEG channel label (aliases accepted).")
_WAKE_EDGE = flags.DEFINE_string(
    "wake_edge_minutes", "30", "Minutes of wake kept before the first and after the last "
    "sleep epoch; 'all' keeps the whole recording.")
_NPERSEG = flags.DEFINE_integer("nperseg", 30, "STFT segment length, samples.")
_NOVERLAP = flags.DEFINE_integer("noverlap", 16, "STFT segment overlap, samples.")
_NFFT = flags.DEFINE_integer("nfft", 1024, "FFT length.")
_WINDOW = flags.DEFINE_string("window", "tukey", "STFT window (scipy name).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Image height and width, pixels.")
_COMPRESSION = flags.DEFINE_enum("compression", "", ["", "GZIP"], "Shard compression.")
_DOWNLOAD = flags.DEFINE_bool(
    "download", False, "Download the subset from PhysioNet into --data_dir (default "
    "~/.cache/eegmobile/sleep-edfx) first; resumes and verifies checksums.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False,
                               "Replace an output directory that holds a different build.")


def _parse_flags(argv):
  """Our flags via absl; everything else is left for Beam."""
  return flags.FLAGS(argv, known_only=True)


def _config():
  from eegmobile import config as config_lib  # pylint: disable=g-import-not-at-top
  wake = None if _WAKE_EDGE.value.lower() in ("all", "none") else float(_WAKE_EDGE.value)
  defaults = config_lib.BuildConfig()
  return dataclasses.replace(defaults,
                             subset=_SUBSET.value,
                             compression=_COMPRESSION.value,
                             epochs=dataclasses.replace(defaults.epochs,
                                                        channel=_CHANNEL.value,
                                                        wake_edge_minutes=wake),
                             spectrogram=dataclasses.replace(defaults.spectrogram,
                                                             nperseg=_NPERSEG.value,
                                                             noverlap=_NOVERLAP.value,
                                                             nfft=_NFFT.value,
                                                             window=_WINDOW.value,
                                                             image_height=_IMAGE_SIZE.value,
                                                             image_width=_IMAGE_SIZE.value))


def _recordings_dir(subset: str) -> tuple[str, bool]:
  """(directory of recordings, whether it is the demo set)."""
  if _DOWNLOAD.value:
    from eegmobile import download  # pylint: disable=g-import-not-at-top
    data_dir = _DATA_DIR.value or os.path.expanduser("~/.cache/eegmobile/sleep-edfx")
    download.download_subset(subset, data_dir)
    return data_dir, False
  if _DATA_DIR.value:
    return _DATA_DIR.value, False
  from eegmobile.demo import synthetic  # pylint: disable=g-import-not-at-top
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
  return "\n".join(lines)


def _quiet_beam() -> None:
  """Beam's runner logs every bundle and worker message at INFO; keep warnings only."""
  import logging as std_logging  # pylint: disable=g-import-not-at-top
  for name in ("apache_beam", "apache_beam.runners.portability.local_job_service"):
    std_logging.getLogger(name).setLevel(std_logging.WARNING)


def main(argv):
  from beam_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  _quiet_beam()
  from eegmobile import errors  # pylint: disable=g-import-not-at-top
  try:
    config = _config()
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  output_dir = _OUTPUT_DIR.value or os.path.join(
      "out", "demo" if not (_DATA_DIR.value or _DOWNLOAD.value) else config.subset)
  try:
    data_dir, demo = _recordings_dir(config.subset)
    result = pipeline.run(data_dir,
                          output_dir,
                          config,
                          beam_args=argv[1:],
                          demo=demo,
                          overwrite=_OVERWRITE.value)
  except (FileNotFoundError, errors.RecordingError, ConnectionError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(_report(result))
  return 0 if result.ok else 1


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
