r"""Stage nights from EDF files with an exported EEGMobile model: `python -m eegmobile.stage`.

  python -m eegmobile.stage NIGHT.edf --model exports/fold_00
  python -m eegmobile.stage nights/ more.edf --model exports/fold_00/images_float16.tflite \
      --output_dir staged --runtime litert --threads 2
  python -m eegmobile.stage SC4001E0-PSG.edf --model exports/fold_00 \
      --hypnogram SC4001EC-Hypnogram.edf
  python -m eegmobile.stage sleep-edf/ --model exports/final --hypnogram_dir sleep-edf/
  python -m eegmobile.stage --stream lsl:MyAmp --model exports/final --channel Fpz-Cz
  python -m eegmobile.stage --board muse_s --channel AF7-TP9 --model exports/final \
      --board_param mac_address=00:55:DA:B0:00:00 --record night-2026-12-06

An export with a context stage (trainers.cv --context) applies it: for a finished night
the smoother's forward-backward or the centred sequence head; --context_lag k stages
causally, as a live night would be (each epoch from the epochs up to k after it);
--context none gives the per-epoch model alone (eegmobile/staging/context_stage.py). A live
night applies it causally, at --context_lag k (default: the lag the export's causal stage
was fitted with): each epoch's context stage is written once k epochs after it have come.

Each night gives <output_dir>/<record>.stages.tsv, .hypnogram.edf, .hypnogram.png and
.sleep_stats.json (eegmobile/staging/outputs.py), and with --hypnogram <record>.metrics.json
(accuracy, Cohen's kappa, per-class F1, confusion matrix). A directory stages every
.edf/.bdf file in it. With --hypnogram_dir each night is scored against its own hypnogram
in that directory (`stage_lib.find_hypnogram`: Sleep-EDF names, or NAME-Hypnogram.edf for
NAME.edf), and the nights' epochs pooled give <output_dir>/metrics_pooled.json (with a row
per night) and confusion_pooled.png. A night with bad input gets one line naming the file
and the problem; the other nights still stage.

Live (`--stream lsl:NAME` or `--board NAME`, eegmobile/staging/live.py): the night is staged
as it is recorded, one line per epoch, the same outputs kept current (each file replaced
whole), <output_dir>/<record>.stream.json holding the night's state; run again with the same
--output_dir and --record it continues the night. Ctrl-C, the end of the stream, a stall
(--on_stall end) or --duration finish it. Needs `pip install 'eegmobile[stream]'`.

Exit status: 0 every night staged (and, with --hypnogram_dir, scored); 1 some night failed
or found no single hypnogram; 2 unusable arguments or model; 3 a bug (its traceback in
<output_dir>/errors.log, named in the message).
"""

import dataclasses
import os
import re
import sys
import threading

from absl import app
from absl import flags

from eegmobile import cli
from eegmobile import errors
from eegmobile import plots
from eegmobile.staging import context_stage
from eegmobile.staging import live
from eegmobile.staging import runtimes
from eegmobile.staging import stage_lib

# Flags live only in entry modules: defined in libraries they collide when imported twice.
_MODEL = flags.DEFINE_string("model", None, "Export directory or one of its .tflite files.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "staged", "Where the outputs go.")
_HYPNOGRAM = flags.DEFINE_string(
    "hypnogram", None, "An expert's hypnogram (EDF+ annotations) to score the night "
    "against; only with one night.")
_HYPNOGRAM_DIR = flags.DEFINE_string(
    "hypnogram_dir", None, "A directory of experts' hypnograms: each night is scored against "
    "its own (Sleep-EDF names pair SC4001E0-PSG.edf with SC4001EC-Hypnogram.edf; NAME.edf "
    "pairs with NAME-Hypnogram.edf) and the pooled metrics are written too.")
_CONFIG = cli.define_flags(
    stage_lib.StageConfig,
    ["channel", "runtime", "precision", "threads", "batch_size", "context", "context_lag"])
_STREAM = flags.DEFINE_string("stream", None,
                              "Stage an LSL stream as it arrives: lsl:NAME (the stream's name).")
_BOARD = flags.DEFINE_string(
    "board", None, "Stage a BrainFlow board as it records: synthetic, playback:FILE, muse_s, "
    "cyton, ... (BrainFlow's board names, lower case, without _board).")
_BOARD_PARAM = flags.DEFINE_multi_string(
    "board_param", [], "KEY=VALUE for the board's BrainFlowInputParams (serial_port, "
    "mac_address, ip_address, ...); master_board=NAME for a playback file recorded by "
    "another board than the synthetic one. Repeatable.")
_RECORD = flags.DEFINE_string(
    "record", None, "The live night's name (its files' stem); the same record in the same "
    "--output_dir continues that night. Default: the source's name.")
_LIVE = cli.define_flags(live.LiveConfig, [f.name for f in dataclasses.fields(live.LiveConfig)])
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


def _check_arguments(args: list[str]) -> list[str]:
  """The nights to stage.

  Raises:
    ValueError: unusable arguments (the message says which and why).
  """
  if not _MODEL.value:
    raise ValueError("--model is required (an export directory or one of its .tflite files)")
  if not args:
    raise ValueError("give one or more EDF files or directories to stage")
  nights = _nights(args)
  if _HYPNOGRAM.value and len(nights) != 1:
    raise ValueError(f"--hypnogram goes with one night; {len(nights)} were given "
                     "(--hypnogram_dir scores several)")
  if _HYPNOGRAM.value and _HYPNOGRAM_DIR.value:
    raise ValueError("give --hypnogram or --hypnogram_dir, not both")
  if _HYPNOGRAM_DIR.value and not os.path.isdir(_HYPNOGRAM_DIR.value):
    raise ValueError(f"--hypnogram_dir {_HYPNOGRAM_DIR.value}: not a directory")
  return nights


def _stage_one(i: int, nights: list[str], model, config, context=None) -> dict:
  """Stages nights[i - 1] and prints its lines; the result has "failed"/"unpaired" on failure."""
  path = nights[i - 1]
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
                                   hypnogram_path=hypnogram,
                                   context=context)
  except (errors.RecordingError, FileNotFoundError) as e:
    print(f"[{i}/{len(nights)}] error: {e}", file=sys.stderr)
    return {"failed": path}
  if result.get("montage"):
    print(f"  note: {result['montage']['note']}")
  trailing = (f", trailing {result['trailing_seconds']:g} s not staged"
              if result["trailing_seconds"] else "")
  print(f"[{i}/{len(nights)}] {path}: {result['epochs']} epochs{trailing}, "
        f"{result['seconds']:.1f} s -> {_OUTPUT_DIR.value}/{result['record']}.*")
  if unpaired:
    print(f"  not scored: {unpaired}", file=sys.stderr)
    result["unpaired"] = path
  if "metrics" in result:
    m = result["metrics"]
    print(f"  against {hypnogram}: accuracy {m['acc']:.1f}%, kappa {m['kappa']:.3f}, "
          f"macro F1 {m['mf1']:.1f}% ({m['num_epochs']} epochs) -> "
          f"{result['outputs']['metrics']}")
  return result


def _print_pooled(scored: list[dict], not_scored: list[str]) -> None:
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


def _live_arguments(args: list[str]) -> tuple[str, dict]:
  """The live source's spec and board parameters.

  Raises:
    ValueError: unusable arguments.
  """
  if _STREAM.value and _BOARD.value:
    raise ValueError("give --stream or --board, not both")
  if args:
    raise ValueError(f"--stream and --board stage a live source, not files ({' '.join(args)})")
  if _HYPNOGRAM.value or _HYPNOGRAM_DIR.value:
    raise ValueError("--hypnogram and --hypnogram_dir score a finished night: stage the "
                     "live night's outputs afterwards, or stage its recording")
  if not _MODEL.value:
    raise ValueError("--model is required (an export directory or one of its .tflite files)")
  if _BOARD_PARAM.value and not _BOARD.value:
    raise ValueError("--board_param goes with --board")
  params = {}
  for item in _BOARD_PARAM.value:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise ValueError(f"--board_param {item!r}: expected KEY=VALUE")
    params[key.strip()] = value.strip()
  spec = f"lsl:{_STREAM.value[4:]}" if _STREAM.value else f"board:{_BOARD.value}"
  if _STREAM.value and not _STREAM.value.startswith("lsl:"):
    raise ValueError(f"--stream {_STREAM.value!r}: expected lsl:NAME")
  return spec, params


def _load_model(config: stage_lib.StageConfig) -> tuple[runtimes.StagingModel, str]:
  """--model as `config` asks, with the per-epoch features where the context stage (the
  asked or the export's) is the sequence head; its preprocessing checked against staging's.

  Returns: (the model, the context stage's kind).
  """
  kind = context_stage.resolve(context_stage.recorded(_MODEL.value), config.context)
  model = runtimes.load(_MODEL.value,
                        runtime=config.runtime,
                        threads=config.threads,
                        precision=config.precision,
                        features=kind == "head")
  stage_lib.check_preprocessing(model, config)
  return model, kind


def _run_live(args: list[str]) -> int:
  """`--stream` / `--board`: one night staged as it is recorded."""
  from eegmobile.staging import sources  # pylint: disable=g-import-not-at-top  # lazy: live only
  try:
    spec, params = _live_arguments(args)
    config = cli.from_flags(stage_lib.StageConfig, _CONFIG)
    live_config = cli.from_flags(live.LiveConfig, _LIVE)
    model, kind = _load_model(config)
    context = context_stage.live_stage(_MODEL.value,
                                       kind,
                                       config.context_lag,
                                       runtime=model.runtime,
                                       threads=model.threads)
    source = sources.open_source(spec, config.channel, params)
  except (sources.MissingDependency, ValueError, FileNotFoundError, errors.RecordingError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  record = _RECORD.value or re.sub(r"[^\w.-]+", "_", spec.split(":", 1)[1]).strip("_")
  print(f"model {model.path} ({model.input_kind}; {model.runtime} {model.precision}, "
        f"{model.threads} threads)")
  threading.Thread(target=plots.pyplot, daemon=True).start()
  try:
    result = live.run(source,
                      model,
                      _OUTPUT_DIR.value,
                      record=record,
                      config=config,
                      live=live_config,
                      context=context)
  except live.StateError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0 if result["night_epochs"] else 1


def _run(args: list[str]) -> int:
  if _STREAM.value or _BOARD.value:
    return _run_live(args)
  try:
    nights = _check_arguments(args)
    config = cli.from_flags(stage_lib.StageConfig, _CONFIG)
    model, kind = _load_model(config)
    context = context_stage.load(_MODEL.value,
                                 kind,
                                 config.context_lag,
                                 runtime=model.runtime,
                                 threads=model.threads)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"model {model.path} ({model.input_kind}; {model.runtime} {model.precision}, "
        f"{model.threads} threads); {len(nights)} night(s)" +
        (f"; context: {context.kind}, {context.describe()['mode']}" if context else ""))
  # pyplot is slow to import (BUILD_NOTES.md "Start-up"): import it while the first night is
  # scored, not after.
  threading.Thread(target=plots.pyplot, daemon=True).start()
  results = [_stage_one(i, nights, model, config, context) for i in range(1, len(nights) + 1)]
  failed = [r["failed"] for r in results if "failed" in r]
  not_scored = [r["unpaired"] for r in results if "unpaired" in r]
  print(f"staged {len(nights) - len(failed)} of {len(nights)} night(s)" +
        (f"; failed: {', '.join(failed)}" if failed else ""))
  if _HYPNOGRAM_DIR.value:
    _print_pooled([r for r in results if "metrics" in r], not_scored)
  return 1 if failed or not_scored else 0


def main(argv):
  cli.quiet(_VERBOSE.value)
  try:
    return _run(argv[1:])
  except Exception as e:  # pylint: disable=broad-except
    log = cli.report_bug(e, os.path.join(_OUTPUT_DIR.value, cli.BUG_LOG))
    print(cli.bug_message(e, log), file=sys.stderr)
    return 3


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
