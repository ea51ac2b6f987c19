"""Tests for beam_pipelines.transforms: failure entries and the per-night DoFn."""

import dataclasses
import os

import pytest

from beam_pipelines import transforms
from eegmobile import config as config_lib
from eegmobile import errors
from eegmobile import nights
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile.demo import synthetic
from tests import tfrecord_io
from tfrecords import manifest as manifest_lib
from tfrecords import schema

_SMALL = dataclasses.replace(config_lib.BuildConfig(),
                             spectrogram=config_lib.SpectrogramConfig(image_height=32,
                                                                      image_width=24))
_RECORDING = sleep_edf.Recording(record="SC4001E0",
                                 subject_id="SC00",
                                 subject=0,
                                 night=1,
                                 study="SC",
                                 psg_path="/data/SC4001E0-PSG.edf",
                                 hypnogram_path="/data/SC4001EC-Hypnogram.edf")


def _divide_by_zero_deep_inside():
  return 1 / 0


def test_a_recording_error_is_one_line_without_a_traceback():
  error = errors.ChannelError("/data/SC4001E0-PSG.edf", "no channel 'EEG Fpz-Cz'")
  assert transforms.failure_entry(_RECORDING, error) == {
      "record": "SC4001E0",
      "file": "SC4001E0-PSG.edf",
      "error": "no channel 'EEG Fpz-Cz'",
      "kind": "ChannelError"
  }


def test_an_unexpected_error_keeps_its_traceback():
  try:
    _divide_by_zero_deep_inside()
  except ZeroDivisionError as e:
    entry = transforms.failure_entry(_RECORDING, e)
  assert entry["error"] == "ZeroDivisionError: division by zero"
  assert entry["kind"] == "UnexpectedError" and entry["file"] == "SC4001E0-PSG.edf"
  lines = entry["traceback"].splitlines()
  assert lines[0] == "Traceback (most recent call last):"
  assert lines[-1] == "ZeroDivisionError: division by zero"
  assert "in _divide_by_zero_deep_inside" in entry["traceback"]
  assert "return 1 / 0" in entry["traceback"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("demo"))
  synthetic.make_demo_dataset(directory, subjects=(0,), nights=(1,), hours=1.0)
  (found,), problems = sleep_edf.find_recordings(directory, "sleep-edf-20")
  assert not problems
  return found


def _run(recording, staging_dir, window):
  os.makedirs(os.path.join(staging_dir, transforms.NIGHTS_DIR))
  fn = transforms.BuildNightFn(_SMALL.to_dict(), staging_dir, window)
  fn.setup()
  ((kind, summary),) = list(fn.process(recording))
  assert kind == "built"
  return summary, list(
      tfrecord_io.read_tfrecord(transforms.staged_shard(staging_dir, recording.record)))


def test_the_window_handed_to_the_dofn_is_the_one_used(recording, tmp_path):
  hann = spectrogram.window(dataclasses.replace(_SMALL.spectrogram, window="hann"))
  summary, records = _run(recording, str(tmp_path / "hann"), hann)
  expected = nights.build_night(recording, _SMALL, window=hann)
  assert summary == expected.summary
  assert records == [b"".join(e) for e in schema.night_examples(expected)]
  _, default = _run(recording, str(tmp_path / "default"), None)
  assert default == [
      b"".join(e) for e in schema.night_examples(nights.build_night(recording, _SMALL))
  ]
  assert default != records


def test_finalise_moves_the_shards_and_writes_the_manifest_last(recording, tmp_path, monkeypatch):
  staging, output = str(tmp_path / "staging"), str(tmp_path / "build")
  summary, records = _run(recording, staging, None)
  try:
    raise ZeroDivisionError("boom")
  except ZeroDivisionError as e:
    bug = transforms.failure_entry(dataclasses.replace(_RECORDING, record="SC4002E0"), e)
  written = []
  real = transforms.storage.write_text
  monkeypatch.setattr(transforms.storage, "write_text", lambda path, text:
                      (written.append(os.path.basename(path)), real(path, text)))
  manifest = transforms.finalise([("built", summary), ("failed", bug)],
                                 config=_SMALL.to_dict(),
                                 staging_dir=staging,
                                 output_dir=output,
                                 demo=True,
                                 failures=[],
                                 store_settings={})
  assert written == [transforms.LOG_FILE, manifest_lib.MANIFEST_FILE]  # the manifest last
  assert manifest == manifest_lib.load_manifest(output, allow_incomplete=True)
  assert not manifest["complete"] and manifest["failures"][0]["kind"] == "UnexpectedError"
  assert "traceback" not in manifest["failures"][0]  # tracebacks stay out of the manifest
  assert "ZeroDivisionError: boom" in open(os.path.join(output, transforms.LOG_FILE)).read()
  (shard,) = manifest["subjects"]["SC00"]["shards"]
  assert list(tfrecord_io.read_tfrecord(os.path.join(output, shard))) == records
  assert not os.path.exists(staging)
