"""Tests for eegmobile.stage_lib and eegmobile.staging.runtimes: a tiny random-weights model (32x32)
exported as trainers.export does, nights written as EDF at test time."""

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from eegmobile import errors
from eegmobile.staging import runtimes
from eegmobile import spectrogram
from eegmobile.staging import stage_lib
from eegmobile.config import SpectrogramConfig
from tests import edf_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = SpectrogramConfig(image_height=32, image_width=32)
CONFIG = stage_lib.StageConfig(batch_size=4)


def _night(path, seconds=305.0, **kwargs):
  rng = np.random.default_rng(1)
  n = int(seconds * kwargs.get("fs", 100))
  signal = kwargs.pop("signal", None)
  if signal is None:
    signal = np.cumsum(rng.normal(size=n)) * 2
    signal = np.clip(signal - signal.mean(), -190, 190)
  return edf_files.write_psg(str(path), seconds=seconds, signal=signal, **kwargs)


def test_staged_images_equal_a_builds_and_every_epoch_is_scored(export_dir, tmp_path):
  edf = tmp_path / "night.edf"
  _night(edf)
  model = runtimes.load(export_dir, runtime="tensorflow")
  seen = []
  predict = model.predict
  model.predict = lambda batch: (seen.append(batch), predict(batch))[1]
  result = stage_lib.stage_night(str(edf), model, str(tmp_path / "out"), CONFIG)
  assert result["epochs"] == 10 and result["trailing_seconds"] == pytest.approx(5.0)
  signal = stage_lib.read_night(str(edf), CONFIG).signal
  expected = spectrogram.spectrogram_images(signal[:30000].reshape(10, 3000), SPEC)
  np.testing.assert_array_equal(np.concatenate(seen), expected)
  assert [len(b) for b in seen] == [4, 4, 2]  # chunks, never the whole night
  for path in result["outputs"].values():
    assert os.path.exists(path)
  rows = open(result["outputs"]["tsv"]).read().splitlines()
  assert sum(1 for r in rows if r and r[0].isdigit()) >= 10


def test_tflite_files_give_the_saved_models_probabilities(export_dir, tmp_path):
  edf = tmp_path / "night.edf"
  _night(edf)
  night = stage_lib.read_night(str(edf), CONFIG)
  saved = runtimes.load(export_dir, runtime="tensorflow")
  reference = stage_lib.score_night(night, saved, SPEC, CONFIG)
  for name in ("eegmobile_float32.tflite", "images_float16.tflite"):
    model = runtimes.load(os.path.join(export_dir, name), runtime="tensorflow")
    assert model.input_kind == ("epochs" if "float32" in name else "images")
    got = stage_lib.score_night(night, model, SPEC, CONFIG)
    # float16 weights and the in-graph front end (a pixel 1 colour index off in ~0.1%)
    # move the softened model's outputs by far less than the epochs differ from one another.
    np.testing.assert_allclose(got, reference, atol=0.05)
  spread = np.abs(reference[:, None] - reference[None]).max(axis=2)
  assert np.median(spread[np.triu_indices(len(reference), 1)]) > 0.06


def test_an_int8_models_rows_are_renormalised_and_its_night_is_written(export_dir, tmp_path):
  edf = tmp_path / "night.edf"
  _night(edf)
  model = runtimes.load(os.path.join(export_dir, "images_int8.tflite"), runtime="tensorflow")
  night = stage_lib.read_night(str(edf), CONFIG)
  probabilities = stage_lib.score_night(night, model, SPEC, CONFIG)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
  result = stage_lib.stage_night(str(edf), model, str(tmp_path / "out"), CONFIG)
  assert os.path.exists(result["outputs"]["edf"])


def test_a_rate_is_resampled_and_units_are_scaled(tmp_path):
  t = np.arange(200 * 60) / 200
  signal = 0.05 * np.sin(2 * np.pi * 3 * t)  # 50 uV in mV
  edf_files.write_psg(str(tmp_path / "n.edf"),
                      seconds=60,
                      fs=200,
                      unit="mV",
                      signal=signal,
                      physical_range=0.2)
  night = stage_lib.read_night(str(tmp_path / "n.edf"), CONFIG)
  assert night.fs == 100 and night.original_fs == 200 and night.num_epochs == 2
  assert 45 < np.max(np.abs(night.signal[100:-100])) < 55


def test_a_bipolar_channel_is_derived_from_two_referential_ones(tmp_path):
  edf = tmp_path / "n.edf"
  edf_files.write_psg(str(edf), seconds=60, channels=("EEG Fpz", "EEG Cz"))
  import pyedflib  # pylint: disable=g-import-not-at-top
  with pyedflib.EdfReader(str(edf)) as r:
    expected = r.readSignal(0) - r.readSignal(1)
  night = stage_lib.read_night(str(edf), CONFIG)
  assert night.label == "EEG Fpz - EEG Cz"
  np.testing.assert_allclose(night.signal, expected, atol=1e-3)


@pytest.mark.parametrize("kind,message", [
    ("channel", "no channel 'EEG Fpz-Cz'; the file has 'EEG C3', 'EEG Pz-Oz'"),
    ("rate", "sampled at 40 Hz"),
    ("short", "shorter than one 30 s epoch"),
    ("nan", "NaN"),
    ("flat", "flat"),
    ("truncated", "truncated"),
    ("edf+d", "discontinuous"),
    ("unit", "unit 'degC'"),
])
def test_bad_nights_are_refused_naming_the_file_and_the_problem(kind, message, tmp_path):
  edf = str(tmp_path / "bad.edf")
  if kind == "channel":
    edf_files.write_psg(edf, seconds=60, channels=("EEG C3", "EEG Pz-Oz"))
  elif kind == "rate":
    edf_files.write_psg(edf, seconds=60, fs=40)
  elif kind == "short":
    edf_files.write_psg(edf, seconds=20)
  elif kind == "nan":
    # EDF's integer samples cannot hold NaN; the reader's own check (which read_night runs,
    # also on a derived channel) is tested on an array.
    with pytest.raises(errors.ChannelError, match="NaN"):
      from eegmobile import edf_reader  # pylint: disable=g-import-not-at-top
      edf_reader._check_samples(edf, "EEG Fpz-Cz", np.array([0.0, np.nan]))  # pylint: disable=protected-access
    return
  elif kind == "flat":
    edf_files.write_psg(edf, seconds=60, signal=np.zeros(6000))
  elif kind == "truncated":
    edf_files.write_psg(edf, seconds=60)
    with open(edf, "r+b") as f:
      f.truncate(os.path.getsize(edf) - 1000)
  elif kind == "edf+d":
    edf_files.write_psg(edf, seconds=60)
    with open(edf, "r+b") as f:
      f.seek(192)
      f.write(b"EDF+D".ljust(44))
  elif kind == "unit":
    edf_files.write_psg(edf, seconds=60, unit="degC")
  with pytest.raises(errors.RecordingError) as raised:
    stage_lib.read_night(edf, CONFIG)
  assert edf in str(raised.value) and message in str(raised.value)


def test_a_model_with_other_preprocessing_is_refused_naming_the_parameters(export_dir, tmp_path):
  other = tmp_path / "export"
  shutil.copytree(export_dir, other)
  record = json.load(open(other / "export.json"))
  record["preprocessing"]["spectrogram"]["nperseg"] = 64
  json.dump(record, open(other / "export.json", "w"))
  model = runtimes.load(str(other / "images_float16.tflite"), runtime="tensorflow")
  with pytest.raises(runtimes.ModelError, match=r"nperseg 64 \(model\) vs 30 \(staging\)"):
    stage_lib.check_preprocessing(model, CONFIG)


def test_staging_follows_the_colour_scale_floor_the_model_was_built_with(export_dir, tmp_path):
  """A model of an image-version-1 build (no floor recorded) stages without the floor."""
  older = tmp_path / "export"
  shutil.copytree(export_dir, older)
  record = json.load(open(older / "export.json"))
  del record["preprocessing"]["spectrogram"]["dynamic_range_db"]
  json.dump(record, open(older / "export.json", "w"))
  model = runtimes.load(str(older / "images_float16.tflite"), runtime="tensorflow")
  assert stage_lib.check_preprocessing(model, CONFIG).dynamic_range_db is None
  current = runtimes.load(os.path.join(export_dir, "images_float16.tflite"), runtime="tensorflow")
  assert stage_lib.check_preprocessing(current, CONFIG).dynamic_range_db == 100.0


def test_an_export_directory_stages_with_its_fastest_file(export_dir, tmp_path):
  assert runtimes.fastest_file(export_dir) == os.path.join(export_dir, "images_float16.tflite")
  model = runtimes.load(export_dir, runtime="litert")
  assert model.path.endswith("images_float16.tflite") and model.input_kind == "images"
  assert runtimes.load(export_dir, runtime="tensorflow").path == export_dir  # its SavedModel
  bare = tmp_path / "bare"
  shutil.copytree(export_dir, bare, ignore=shutil.ignore_patterns("*.tflite"))
  assert runtimes.fastest_file(str(bare)) == str(bare)  # no TFLite file: the SavedModel
  assert runtimes.load(str(bare)).runtime == "tensorflow"


def test_a_runtime_gets_every_core_unless_told_otherwise(export_dir, monkeypatch):
  """TFLite's own default is one thread: half the speed on two cores."""
  given = []
  real = runtimes._tflite_predict  # pylint: disable=protected-access
  monkeypatch.setattr(runtimes, "_tflite_predict",
                      lambda path, cls, threads: given.append(threads) or real(path, cls, threads))
  path = os.path.join(export_dir, "images_float16.tflite")
  cores = len(os.sched_getaffinity(0))
  assert runtimes.default_threads() == cores
  assert runtimes.load(path, runtime="tensorflow").threads == cores
  assert runtimes.load(path, runtime="tensorflow", threads=1).threads == 1
  assert given == [cores, 1]
  with pytest.raises(runtimes.ModelError, match="threads must be at least 1, got 0"):
    runtimes.load(path, threads=0)


def test_a_file_that_is_not_our_model_is_refused(tmp_path):
  (tmp_path / "x.tflite").write_bytes(b"not a model")
  with pytest.raises(runtimes.ModelError, match="not an EEGMobile export"):
    runtimes.load(str(tmp_path / "x.tflite"))
  (tmp_path / "model.h5").write_bytes(b"x")
  with pytest.raises(runtimes.ModelError, match="not an EEGMobile model"):
    runtimes.load(str(tmp_path / "model.h5"))


def test_scored_against_an_experts_hypnogram(export_dir, tmp_path):
  edf = tmp_path / "night.edf"
  _night(edf, seconds=300)
  edf_files.write_hypnogram(tmp_path / "hyp.edf", [(0, 120, "Sleep stage W"),
                                                   (120, 180, "Sleep stage 2")])
  model = runtimes.load(export_dir, runtime="tensorflow")
  result = stage_lib.stage_night(str(edf),
                                 model,
                                 str(tmp_path / "out"),
                                 CONFIG,
                                 hypnogram_path=str(tmp_path / "hyp.edf"))
  metrics = result["metrics"]
  assert metrics["num_epochs"] == 10 and sum(map(sum, metrics["confusion"])) == 10
  assert json.load(open(result["outputs"]["metrics"]))["kappa"] == metrics["kappa"]


def test_a_nights_hypnogram_is_found_by_its_name(tmp_path):
  for name in ("SC4001EC-Hypnogram.edf", "SC4002EH-Hypnogram.edf", "SC4002EJ-Hypnogram.edf",
               "night7-hypnogram.EDF", "SC4001E0-PSG.edf", "other-Hypnogram.edf"):
    (tmp_path / name).write_bytes(b"")
  found = lambda night: os.path.basename(stage_lib.find_hypnogram(night, str(tmp_path)))
  assert found("/data/SC4001E0-PSG.edf") == "SC4001EC-Hypnogram.edf"
  assert found("night7.edf") == found("night7-PSG.bdf") == "night7-hypnogram.EDF"
  with pytest.raises(errors.PairingError,
                     match=r"SC4011E0-PSG.edf: no hypnogram .*looked for "
                     r"SC4011E0-Hypnogram.edf or SC4011E\?-Hypnogram.edf"):
    stage_lib.find_hypnogram("SC4011E0-PSG.edf", str(tmp_path))
  with pytest.raises(errors.PairingError,
                     match="SC4002E0-PSG.edf: 2 hypnograms .*SC4002EH-Hypnogram.edf, "
                     "SC4002EJ-Hypnogram.edf; give the one to use with --hypnogram"):
    stage_lib.find_hypnogram("SC4002E0-PSG.edf", str(tmp_path))


@pytest.mark.parametrize("runtime, module", [("litert", "ai_edge_litert"),
                                             ("openvino", "openvino")])
def test_a_tflite_runtime_stages_without_importing_tensorflow(runtime, module, export_dir,
                                                              tmp_path):
  if importlib.util.find_spec(module) is None:
    pytest.skip(f"{module} not installed (setup.cfg extras 'lite', 'openvino')")
  edf = tmp_path / "night.edf"
  _night(edf)
  code = ("import sys, numpy as np\n"
          "from eegmobile.staging import runtimes, stage_lib\n"
          f"m = runtimes.load({os.path.join(export_dir, 'images_float16.tflite')!r}, "
          f"runtime={runtime!r})\n"
          f"r = stage_lib.stage_night({str(edf)!r}, m, {str(tmp_path / 'out')!r})\n"
          "print(m.runtime, r['epochs'], 'tensorflow' in sys.modules)\n")
  run = subprocess.run([sys.executable, "-c", code],
                       env={
                           **os.environ, "PYTHONPATH": ROOT
                       },
                       capture_output=True,
                       text=True,
                       timeout=300)
  assert run.returncode == 0, run.stderr
  assert run.stdout.split() == [runtime, "10", "False"]


@pytest.mark.parametrize(
    "openvino_bf16, litert, asked, expected",
    [
        (True, True, ("auto", "auto"), ("openvino", "bf16")),
        (True, True, ("auto", "f32"), ("litert", "f32")),  # f32 asked: exact, not OpenVINO
        (False, True, ("auto", "auto"), ("litert", "f32")),
        (False, False, ("auto", "auto"), ("tensorflow", "f32")),
        (True, True, ("openvino", "auto"), ("openvino", "bf16")),
        (False, True, ("openvino", "auto"), ("openvino", "f32")),  # a CPU without bf16
        (True, True, ("litert", "auto"), ("litert", "f32")),
        (True, True, ("openvino", "f32"), ("openvino", "f32")),
    ])
def test_auto_picks_openvino_bf16_only_where_the_cpu_has_it(openvino_bf16, litert, asked, expected,
                                                            monkeypatch):
  monkeypatch.setattr(runtimes, "_openvino_bf16", lambda: openvino_bf16)
  monkeypatch.setattr(runtimes, "_litert_available", lambda: litert)
  assert runtimes.resolve(*asked) == expected


@pytest.mark.parametrize("openvino_bf16, asked, message", [
    (False, ("auto", "bf16"), "bf16 needs runtime openvino"),
    (True, ("litert", "bf16"), r"bf16 needs runtime openvino \(got litert\)"),
    (True, ("tensorflow", "bf16"), r"bf16 needs runtime openvino \(got tensorflow\)"),
    (True, ("auto", "f16"), "unknown precision 'f16'"),
    (True, ("onnx", "auto"), "unknown runtime 'onnx'"),
])
def test_a_precision_the_runtime_lacks_is_refused(openvino_bf16, asked, message, monkeypatch):
  monkeypatch.setattr(runtimes, "_openvino_bf16", lambda: openvino_bf16)
  with pytest.raises(runtimes.ModelError, match=message):
    runtimes.resolve(*asked)


def test_an_export_directory_runs_on_tensorflow_in_f32(monkeypatch):
  monkeypatch.setattr(runtimes, "_openvino_bf16", lambda: True)
  assert runtimes.resolve("auto", "auto", is_tflite=False) == ("tensorflow", "f32")
