"""The context stage an export carries, loaded for staging (no TensorFlow, no Keras).

An export made from a run with a context stage (`trainers.cv --context`) records it in
export.json's "context" (`eegmobile.export_format`): the stage staging applies ("smoother"
or "head"), the smoother's transitions and priors and, for a head, its two TFLite files
(centred, and causal with the lag it was trained with). `load` makes the
`eegmobile.context.ContextStage` that `stage_lib.stage_night` applies:

  what     "auto": the export's own stage (none for an export without one); "none": the
           per-epoch model alone; "smoother" or "head": that one (it must be exported)
  lag      None: a finished night (forward-backward; the centred head); k >= 0: live,
           causal, epoch t decided from epochs up to t + k (the smoother takes any k; the
           causal head only the lag it was trained with)

The head runs on the runtime the image model runs on (`runtimes.tflite_function`), in
float32. A live stager feeding epochs one at a time takes `live_smoother` or `live_head`
(`eegmobile.context.CausalSmoother`, `CausalHead`), or `live_stage` (what
`eegmobile.staging.live` applies: the asked or recorded stage, at the asked or recorded
lag): their rows equal the causal `ContextStage`'s on the whole night.
"""

import json
import os
from typing import Callable, Optional, Union

import numpy as np

from eegmobile import context
from eegmobile import export_format
from eegmobile.staging import runtimes

CHOICES = ("auto",) + context.STAGE_KINDS


def export_directory(model_path: str) -> str:
  """The export directory of a model path (the directory itself, or a file's)."""
  return model_path if os.path.isdir(model_path) else os.path.dirname(os.path.abspath(model_path))


def recorded(model_path: str) -> Optional[dict]:
  """export.json's "context" of the export a model path belongs to, or None."""
  path = os.path.join(export_directory(model_path), export_format.EXPORT_FILE)
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None  # not an export: runtimes.load says so, naming the file
  return record.get(export_format.CONTEXT_KEY) if isinstance(record, dict) else None


def resolve(record: Optional[dict], asked: str) -> str:
  """The stage to apply: "none", "smoother" or "head".

  Raises:
    runtimes.ModelError: an unknown choice, or a stage the export does not hold.
  """
  if asked not in CHOICES:
    raise runtimes.ModelError(f"unknown context {asked!r}; choose one of {', '.join(CHOICES)}")
  if asked == "auto":
    return record["stage"] if record else "none"
  if asked == "none":
    return "none"
  if not record or (asked == "head" and "head" not in record):
    held = f"only a {record['stage']}" if record else "no context stage"
    raise runtimes.ModelError(f"context {asked} asked for, but the export holds {held} "
                              "(train with trainers.cv --context head and export again)")
  return asked


def _head_function(path: str, lag: int, runtime: str,
                   threads: int) -> Callable[[np.ndarray], np.ndarray]:
  """features [n, F] of a night -> probabilities [n, 5], through the head's TFLite file.

  For a causal head trained with lag k the night is followed by k rows of zeros and output
  t is epoch t - k's, as in training (`eegmobile.sequence_head.night_inputs`).
  """
  run = runtimes.tflite_function(path, runtime=runtime, threads=threads)

  def head(features: np.ndarray) -> np.ndarray:
    padded = np.concatenate([features, np.zeros((lag, features.shape[1]), np.float32)])
    return np.asarray(run(padded[None].astype(np.float32)))[0, lag:]

  return head


def load(model_path: str,
         asked: str = "auto",
         lag: Optional[int] = None,
         *,
         runtime: str = "litert",
         threads: int = 1) -> Optional[context.ContextStage]:
  """The context stage to stage with, or None (none recorded, or "none" asked).

  Args:
    model_path: the export directory or one of its .tflite files.
    asked: one of CHOICES.
    lag: None (a finished night) or k >= 0 (live, causal).
    runtime: the runtime the head runs on ("litert", "openvino" or "tensorflow").
    threads: CPU threads for it.

  Raises:
    runtimes.ModelError: see `resolve`, a lag the causal head was not trained with, or
      an unloadable head file.
  """
  record = recorded(model_path)
  kind = resolve(record, asked)
  if kind == "none":
    return None
  smoother = context.Smoother.from_dict(record["smoother"])
  if kind == "smoother":
    return context.ContextStage("smoother", lag=lag, smoother=smoother)
  variant = record["head"]["head" if lag is None else "head_causal"]
  if lag is not None and lag != variant["lag"]:
    raise runtimes.ModelError(f"the exported causal head was trained with lag {variant['lag']}; "
                              f"--context_lag {lag} needs the smoother (--context smoother)")
  path = os.path.join(export_directory(model_path), variant["file"])
  head = _head_function(path, variant["lag"], runtime, threads)
  return context.ContextStage("head", lag=lag, head=head, head_lag=variant["lag"])


def live_smoother(model_path: str, lag: int) -> context.CausalSmoother:
  """The export's smoother for a live night (`CausalSmoother`, any lag).

  Raises:
    runtimes.ModelError: the export holds no context stage.
  """
  record = recorded(model_path)
  resolve(record, "smoother")
  return context.CausalSmoother(context.Smoother.from_dict(record["smoother"]), lag)


def live_head(model_path: str, *, runtime: str = "litert", threads: int = 1) -> context.CausalHead:
  """The export's causal head for a live night (`CausalHead`, at the lag it was trained
  with: `.lag`), fed one epoch's features at a time.

  Raises:
    runtimes.ModelError: the export holds no sequence head.
  """
  record = recorded(model_path)
  resolve(record, "head")
  variant = record["head"]["head_causal"]
  run = runtimes.tflite_function(os.path.join(export_directory(model_path), variant["file"]),
                                 runtime=runtime,
                                 threads=threads)
  return context.CausalHead(lambda features: np.asarray(run(features[None].astype(np.float32)))[0],
                            record["window"], variant["lag"])


def live_stage(model_path: str,
               asked: str = "auto",
               lag: Optional[int] = None,
               *,
               runtime: str = "litert",
               threads: int = 1) -> Optional[Union[context.CausalSmoother, context.CausalHead]]:
  """The context stage a live night applies (causally), or None (none recorded, or "none").

  Args:
    model_path: the export directory or one of its .tflite files.
    asked: one of CHOICES.
    lag: epochs after an epoch that its context stage reads; None: the export's own (the
      lag its causal variants were fitted and scored with).
    runtime: the runtime the head runs on ("litert", "openvino" or "tensorflow").
    threads: CPU threads for it.

  Raises:
    runtimes.ModelError: see `resolve`, or a lag the causal head was not trained with.
  """
  record = recorded(model_path)
  kind = resolve(record, asked)
  if kind == "none":
    return None
  lag = record["lag"] if lag is None else lag
  if kind == "smoother":
    return live_smoother(model_path, lag)
  head = live_head(model_path, runtime=runtime, threads=threads)
  if lag != head.lag:
    raise runtimes.ModelError(f"the exported causal head was trained with lag {head.lag}; "
                              f"--context_lag {lag} needs the smoother (--context smoother)")
  return head
