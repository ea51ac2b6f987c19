r"""Stage nights from EDF files with an exported EEGMobile model.

  python -m eegmobile.stage NIGHT.edf --model exports/fold_00
  python -m eegmobile.stage nights/ more.edf --model exports/fold_00/images_float16.tflite \
      --output_dir staged --runtime litert --threads 2
  python -m eegmobile.stage SC4001E0-PSG.edf --model exports/fold_00 \
      --hypnogram SC4001EC-Hypnogram.edf
  python -m eegmobile.stage sleep-edf/ --model exports/final --hypnogram_dir sleep-edf/

Each night gives <output_dir>/<record>.stages.tsv, .hypnogram.edf, .hypnogram.png and
.sleep_stats.json (eegmobile/night_outputs.py), and with --hypnogram <record>.metrics.json
(accuracy, Cohen's kappa, per-class F1, confusion matrix). A directory stages every
.edf/.bdf file in it. With --hypnogram_dir each night is scored against its own hypnogram
in that directory (`stage_lib.find_hypnogram`: Sleep-EDF names, or NAME-Hypnogram.edf for
NAME.edf), and the nights' epochs pooled give <output_dir>/metrics_pooled.json (with a row
per night) and confusion_pooled.png. A night with bad input gets one line naming the file
and the problem; the other nights still stage.

Exit status: 0 every night staged (and, with --hypnogram_dir, scored); 1 some night failed
or found no single hypnogram; 2 unusable arguments or model; 3 a bug (its traceback in
<output_dir>/errors.log, named in the message).
"""

import os
import sys

from absl import app
from absl import flags

_MODEL = flags.DEFINE_string("model", None, "Export directory or one of its .tflite files.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "staged", "Where the outputs go.")
_CHANNEL = flags.DEFINE_string(
    "channel", "EEG Fpz-Cz", "EEG channel label; 'A-B' also finds two referential "
    "channels A and B and stages A minus B.")
_HYPNOGRAM = flags.DEFINE_string(
    "hypnogram", None, "An expert's hypnogram (EDF+ annotations) to score the night "
    "against; only with one night.")
_HYPNOGRAM_DIR = flags.DEFINE_string(
    "hypnogram_dir", None, "A directory of experts' hypnograms: each night is scored against "
    "its own (Sleep-EDF names pair SC4001E0-PSG.edf with SC4001EC-Hypnogram.edf; NAME.edf "
    "pairs with NAME-Hypnogram.edf) and the pooled metrics are written too.")
_RUNTIME = flags.DEFINE_enum(
    "runtime", "auto", ["auto", "tensorflow", "litert", "openvino"],
    "Runtime. auto, for a .tflite: openvino in bf16 where installed and the CPU has bf16 "
    "(AMX or AVX-512 BF16), else litert where installed, else tensorflow; an export "
    "directory runs on tensorflow.")
_PRECISION = flags.DEFINE_enum(
    "precision", "auto", ["auto", "f32", "bf16"],
    "Inference precision. bf16 (openvino only; the CPU's matrix units) kept f32's top "
    "class on a short-trained model, not its probabilities bit for bit (BUILD_NOTES.md, "
    "'Runtimes'); auto: bf16 where openvino runs on such a CPU, else f32.")
_THREADS = flags.DEFINE_integer(
    "threads", None, "CPU threads for the runtime (default: every core this process may use).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32,
                                   "Epochs turned into images and scored at a time.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Leave TensorFlow's logs on the terminal.")

_SUFFIXES = (".edf", ".bdf")


def _nights(args: list[str]) -> list[str]:
  paths = []
  for arg in args:
    if os.path.isdir(arg):
      found = sorted(
          os.path.join(arg, name)
          for name in os.listdir(arg)
          if name.lower().endswith(_SUFFIXES) and "hypnogram" not in name.lower())
      if not found:
        raise ValueError(f"{arg}: no .edf or .bdf file in this directory")
      paths += found
    else:
      paths.append(arg)
  return paths


def _run(args: list[str]) -> int:
  from eegmobile import errors  # pylint: disable=g-import-not-at-top
  from eegmobile import runtimes  # pylint: disable=g-import-not-at-top
  from eegmobile import stage_lib  # pylint: disable=g-import-not-at-top
  try:
    if not _MODEL.value:
      raise ValueError("--model is required (an export directory or one of its .tflite files)")
    if not args:
      raise ValueError("give one or more EDF files or directories to stage")
    if _BATCH_SIZE.value < 1:
      raise ValueError(f"--batch_size must be at least 1, got {_BATCH_SIZE.value}")
    nights = _nights(args)
    if _HYPNOGRAM.value and len(nights) != 1:
      raise ValueError(f"--hypnogram goes with one night; {len(nights)} were given "
                       "(--hypnogram_dir scores several)")
    if _HYPNOGRAM.value and _HYPNOGRAM_DIR.value:
      raise ValueError("give --hypnogram or --hypnogram_dir, not both")
    if _HYPNOGRAM_DIR.value and not os.path.isdir(_HYPNOGRAM_DIR.value):
      raise ValueError(f"--hypnogram_dir {_HYPNOGRAM_DIR.value}: not a directory")
    model = runtimes.load(_MODEL.value,
                          runtime=_RUNTIME.value,
                          threads=_THREADS.value,
                          precision=_PRECISION.value)
    config = stage_lib.StageConfig(channel=_CHANNEL.value, chunk_epochs=_BATCH_SIZE.value)
    stage_lib.check_preprocessing(model, config)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"model {model.path} ({model.input_kind}; {model.runtime} {model.precision}, "
        f"{model.threads} threads); {len(nights)} night(s)")
  failed, not_scored, scored = [], [], []
  for i, path in enumerate(nights, 1):
    hypnogram, unpaired = _HYPNOGRAM.value, None
    if _HYPNOGRAM_DIR.value:
      try:
        hypnogram = stage_lib.find_hypnogram(path, _HYPNOGRAM_DIR.value)
      except errors.PairingError as e:
        unpaired = e
    try:
      result = stage_lib.stage_night(path,
                                     model,
                                     _OUTPUT_DIR.value,
                                     config,
                                     hypnogram_path=hypnogram)
    except (errors.RecordingError, FileNotFoundError) as e:
      print(f"[{i}/{len(nights)}] error: {e}", file=sys.stderr)
      failed.append(path)
      continue
    trailing = (f", trailing {result['trailing_seconds']:g} s not staged"
                if result["trailing_seconds"] else "")
    print(f"[{i}/{len(nights)}] {path}: {result['epochs']} epochs{trailing}, "
          f"{result['seconds']:.1f} s -> {_OUTPUT_DIR.value}/{result['record']}.*")
    if unpaired:
      print(f"  not scored: {unpaired}", file=sys.stderr)
      not_scored.append(path)
    if "metrics" in result:
      m = result["metrics"]
      scored.append(result)
      print(f"  against {hypnogram}: accuracy {m['acc']:.1f}%, kappa {m['kappa']:.3f}, "
            f"macro F1 {m['mf1']:.1f}% ({m['num_epochs']} epochs) -> "
            f"{result['outputs']['metrics']}")
  print(f"staged {len(nights) - len(failed)} of {len(nights)} night(s)" +
        (f"; failed: {', '.join(failed)}" if failed else ""))
  if _HYPNOGRAM_DIR.value:
    if scored:
      pooled = stage_lib.write_pooled_metrics(_OUTPUT_DIR.value, scored)
      m = pooled["metrics"]
      per_class = ", ".join(f"{s} {f:.1f}" for s, f in m["f1"].items())
      print(f"pooled over {len(scored)} scored night(s), {m['num_epochs']} epochs: accuracy "
            f"{m['acc']:.1f}%, kappa {m['kappa']:.3f}, macro F1 {m['mf1']:.1f}% (F1 "
            f"{per_class}) -> {pooled['outputs']['metrics']}, {pooled['outputs']['confusion']}")
    if not_scored:
      print(f"not scored (no single hypnogram in {_HYPNOGRAM_DIR.value}): "
            f"{', '.join(not_scored)}")
  return 1 if failed or not_scored else 0


def main(argv):
  from trainers import cli_lib  # pylint: disable=g-import-not-at-top
  cli_lib.quiet(_VERBOSE.value)
  try:
    return _run(argv[1:])
  except Exception as e:  # pylint: disable=broad-except
    log = cli_lib.report_bug(_OUTPUT_DIR.value, e)
    print(cli_lib.bug_message(e, log), file=sys.stderr)
    return 3


if __name__ == "__main__":
  app.run(main)
