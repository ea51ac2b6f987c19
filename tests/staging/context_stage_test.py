"""Tests for eegmobile.staging.context_stage: a night staged with an export's context stage
gives the stages the Keras models give; outputs name both column groups."""

import csv
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from eegmobile import context
from eegmobile import sequence_head
from eegmobile import spectrogram
from eegmobile import stages
from eegmobile.demo import synthetic
from eegmobile.staging import context_stage
from eegmobile.staging import outputs
from eegmobile.staging import runtimes
from eegmobile.staging import stage_lib
from tests import export_test
from tests import fakes
from trainers import context_lib
from trainers import export_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = stage_lib.StageConfig(batch_size=16, runtime="litert", precision="f32", threads=1)
NIGHT_EPOCHS = 80
LAG = 2
# float32 everywhere (the features file and the heads): the exported files and Keras differ
# by float32 rounding in different summation orders: ~1e-6 relative on the features (the
# per-epoch probabilities agree within PER_EPOCH_TOLERANCE), which the head's six layers
# and decisive last layer amplify (up to 2e-4 seen on its probabilities). Stages are
# compared where Keras' top two probabilities are further apart than MARGIN, 5x that: there
# rounding cannot reorder them.
PER_EPOCH_TOLERANCE = 2e-5
MARGIN = 1e-3


def _head(config, seed):
  """A random head whose last layer is scaled up: decisive outputs that depend on the
  features (a random head's outputs are all near 1/5)."""
  keras.utils.set_random_seed(seed)
  head = sequence_head.build_head(config, np.zeros(224), np.ones(224))
  last = head.get_layer("stages")
  last.set_weights([w * 10 for w in last.get_weights()])
  return head


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """(export dir, keras model, keras heads {variant: head}, smoother, night path)."""
  directory = tmp_path_factory.mktemp("model")
  build = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(build, subjects=("SC00",), nights=(1,), epochs_per_night=12)
  night = str(directory / "night.edf")
  rng = np.random.default_rng(0)
  synthetic.synthesize_psg(night, np.repeat(rng.integers(0, 5, NIGHT_EPOCHS // 8), 8), seed=1)
  signal = stage_lib.read_night(night, CONFIG).signal
  # Softened on the whole night: with nearly one-hot outputs float32 rounding of large
  # logits moves probabilities by ~1e-3 (`export_test._save_model`).
  images = spectrogram.spectrogram_images(signal.reshape(-1, 3000), export_test.SPEC)
  path = export_test._save_model(  # pylint: disable=protected-access
      str(directory / "checkpoint.keras"),
      "viridis",
      soften_on=images)
  config = context_lib.ContextConfig(stage="head", lag=LAG, window=9)
  heads = {
      "head": _head(config.head_config(False), 1),
      "head_causal": _head(config.head_config(True), 2)
  }
  transitions = np.full((5, 5), 0.02) + np.eye(5) * 0.9
  smoother = context.Smoother(transitions / transitions.sum(axis=1, keepdims=True),
                              np.array([0.2, 0.1, 0.4, 0.1, 0.2]))
  context_lib.save(str(directory / "context"), config, {
      "smoother": smoother,
      "training_subjects": ["SC00"],
      "seconds": {},
      **heads
  })
  out = str(directory / "export")
  export_lib.export(path,
                    out,
                    preprocessing=export_lib.load_preprocessing(build),
                    formats=("float16",))
  return out, export_lib.load_keras_model(path), heads, smoother, night


def _keras_night(exported):
  """(per-epoch probabilities, features) of the night through the Keras model."""
  _, model, _, _, night = exported
  spec = dataclasses.replace(stage_lib.StageConfig().spectrogram, image_height=32, image_width=32)
  read = stage_lib.read_night(night, CONFIG)
  images = spectrogram.spectrogram_images(read.signal.reshape(-1, 3000), spec)
  probabilities, features = sequence_head.feature_model(model)(images, training=False)
  return np.asarray(probabilities, np.float64), np.asarray(features)


def _staged(tsv):
  with open(tsv) as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  columns = rows[0].keys()
  stage = np.array([stages.STAGES.index(r["stage"]) for r in rows])
  p = np.array([[float(r[f"p_{s}"]) for s in stages.STAGES] for r in rows])
  per_epoch = (np.array([[float(r[f"per_epoch_p_{s}"]) for s in stages.STAGES] for r in rows])
               if "per_epoch_p_W" in columns else None)
  return stage, p, per_epoch, list(columns)


def _check_same_stages(expected, staged_stage, staged_p):
  top2 = np.sort(expected, axis=1)[:, -2:]
  decided = top2[:, 1] - top2[:, 0] > MARGIN
  assert decided.mean() > 0.9  # the comparison is not vacuous
  np.testing.assert_array_equal(staged_stage[decided], np.argmax(expected, axis=1)[decided])
  np.testing.assert_allclose(staged_p, expected, atol=MARGIN)


def _keras_context(exported, kind, lag):
  _, _, heads, smoother, _ = exported
  probabilities, features = _keras_night(exported)
  if kind == "smoother":
    if lag is None:
      return probabilities, smoother.posteriors(probabilities)
    return probabilities, smoother.causal_posteriors(probabilities, lag)
  config = context_lib.ContextConfig(stage="head", lag=LAG, window=9).head_config(lag is not None)
  head = heads["head" if lag is None else "head_causal"]
  return probabilities, sequence_head.predict_night(head, config, features).astype(np.float64)


# The smoother reads probabilities only, so staging loads the export's fastest image model,
# images_float16.tflite, whose float16 weights move probabilities by up to ~1e-2 from
# Keras'; the smoother cases stage with the export's float32 SavedModel instead
# (tensorflow), the head's with images_features_float32.tflite (litert, openvino) or the
# SavedModel's images_features signature (tensorflow).
CASES = [("head", None, "litert"), ("head", LAG, "litert"), ("head", None, "openvino"),
         ("head", LAG, "tensorflow"), ("smoother", None, "tensorflow"),
         ("smoother", 1, "tensorflow")]


@pytest.mark.parametrize("kind,lag,runtime", CASES)
def test_staging_gives_the_keras_models_smoothed_stages(kind, lag, runtime, exported, tmp_path):
  if runtime == "openvino" and importlib.util.find_spec("openvino") is None:
    pytest.skip("openvino not installed")
  export_dir, _, _, _, night = exported
  # tensorflow: the export directory's SavedModel (its images_features signature).
  model = runtimes.load(export_dir,
                        runtime=runtime,
                        precision="f32",
                        threads=1,
                        features=kind == "head")
  assert model.feature_size == (224 if kind == "head" else 0)
  stage = context_stage.load(export_dir, kind, lag, runtime=model.runtime, threads=1)
  result = stage_lib.stage_night(night, model, str(tmp_path), CONFIG, context=stage)
  assert result["context"] == {"kind": kind, "lag": lag, "mode": stage.describe()["mode"]}
  staged_stage, staged_p, staged_per_epoch, columns = _staged(result["outputs"]["tsv"])
  assert columns == list(outputs.TSV_COLUMNS + outputs.PER_EPOCH_COLUMNS)
  per_epoch, expected = _keras_context(exported, kind, lag)
  np.testing.assert_allclose(staged_per_epoch, per_epoch, atol=PER_EPOCH_TOLERANCE)
  _check_same_stages(expected, staged_stage, staged_p)
  statistics = json.loads(open(result["outputs"]["json"]).read())
  assert statistics["context"]["kind"] == kind


def test_the_context_stage_changes_stages_and_none_stages_as_before(exported, tmp_path):
  export_dir, _, _, smoother, night = exported
  model = runtimes.load(export_dir, runtime="litert", precision="f32", threads=1)
  plain = stage_lib.stage_night(night, model, str(tmp_path / "plain"), CONFIG)
  assert "context" not in plain
  plain_stage, plain_p, plain_per_epoch, columns = _staged(plain["outputs"]["tsv"])
  assert columns == list(outputs.TSV_COLUMNS) and plain_per_epoch is None
  assert "context" not in json.loads(open(plain["outputs"]["json"]).read())
  smoothed = stage_lib.stage_night(night,
                                   model,
                                   str(tmp_path / "smoothed"),
                                   CONFIG,
                                   context=context.ContextStage("smoother", smoother=smoother))
  smoothed_stage, _, per_epoch, _ = _staged(smoothed["outputs"]["tsv"])
  np.testing.assert_array_equal(per_epoch, plain_p)
  assert (smoothed_stage != plain_stage).any()  # sticky transitions: fewer changes
  assert (np.diff(smoothed_stage) != 0).sum() < (np.diff(plain_stage) != 0).sum()


def test_resolve_follows_the_export_and_refuses_what_it_lacks(exported):
  export_dir = exported[0]
  record = context_stage.recorded(export_dir)
  assert record["stage"] == "head" and record["lag"] == LAG
  assert context_stage.recorded(os.path.join(export_dir, "images_float16.tflite")) == record
  assert context_stage.resolve(record, "auto") == "head"
  assert context_stage.resolve(None, "auto") == "none"
  assert context_stage.resolve(record, "none") == "none"
  with pytest.raises(runtimes.ModelError, match="holds no context stage"):
    context_stage.resolve(None, "smoother")
  with pytest.raises(runtimes.ModelError, match="holds only a smoother"):
    context_stage.resolve({"stage": "smoother"}, "head")
  with pytest.raises(runtimes.ModelError, match="trained with lag 2"):
    context_stage.load(export_dir, "head", 0)
  with pytest.raises(runtimes.ModelError, match="needs the per-epoch features"):
    runtimes.load(os.path.join(export_dir, "images_float16.tflite"),
                  runtime="litert",
                  features=True)
  with pytest.raises(runtimes.ModelError, match="gives probabilities and features"):
    runtimes.load(os.path.join(export_dir, "images_features_float32.tflite"), runtime="litert")


def test_the_command_applies_the_exports_context_stage(exported, tmp_path):
  export_dir, _, _, _, night = exported
  cases = (([], True, "context: head, finished night"), (["--context", "none"], False, None),
           (["--context", "smoother", "--context_lag", "3"], True, "context: smoother, live"))
  for i, (args, group, said) in enumerate(cases):
    out = tmp_path / str(i)
    run = subprocess.run([
        sys.executable, "-m", "eegmobile.stage", night, "--model", export_dir, "--output_dir",
        str(out), "--runtime", "litert", "--threads", "1"
    ] + args,
                         env={
                             **os.environ, "PYTHONPATH": ROOT
                         },
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    _, _, per_epoch, _ = _staged(str(out / "night.stages.tsv"))
    assert (per_epoch is not None) == group
    assert (said in run.stdout) if said else "context" not in run.stdout


def test_the_export_command_writes_the_context_stage_unless_told_not_to(exported, tmp_path):
  export_dir = exported[0]
  with open(os.path.join(export_dir, "export.json")) as f:
    model = json.load(f)["model"]["source"]  # the checkpoint, its context/ beside it
  for flags, has_context in (([], True), (["--nocontext"], False)):
    out = tmp_path / str(has_context)
    run = subprocess.run([
        sys.executable, "-m", "trainers.export", f"--model={model}", f"--output_dir={out}",
        f"--preprocessing={export_dir}", "--formats=float16"
    ] + flags,
                         capture_output=True,
                         text=True,
                         cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert ("context: head (causal lag 2)" in run.stdout) == has_context
    with open(out / "export.json") as f:
      assert ("context" in json.load(f)) == has_context
    assert (out / "context_head_causal_float32.tflite").exists() == has_context
    assert (out / "images_features_float32.tflite").exists() == has_context


def test_a_live_stager_gets_the_causal_stages_one_epoch_at_a_time(exported):
  export_dir = exported[0]
  probabilities, features = _keras_night(exported)
  head = context_stage.live_head(export_dir)
  assert head.lag == LAG and head.window == 9
  rows = [head.update(row) for row in features] + [head.finish()]
  whole = context_stage.load(export_dir, "head", LAG).head(features)
  np.testing.assert_allclose(np.concatenate(rows), whole, atol=1e-6)
  assert isinstance(context_stage.live_stage(export_dir), context.CausalHead)  # at LAG
  assert context_stage.live_stage(export_dir, "smoother", 1).lag == 1
  assert context_stage.live_stage(export_dir, "none") is None
  with pytest.raises(runtimes.ModelError, match="trained with lag 2"):
    context_stage.live_stage(export_dir, "head", 0)
  smoother = context_stage.live_smoother(export_dir, lag=1)
  rows = [smoother.update(row) for row in probabilities] + [smoother.finish()]
  np.testing.assert_allclose(np.concatenate(rows),
                             exported[3].causal_posteriors(probabilities, 1),
                             rtol=1e-12)
