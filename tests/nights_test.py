"""Tests for eegmobile.nights: one night -> its examples and manifest entry."""

import dataclasses
import hashlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from eegmobile import config as config_lib
from eegmobile import edf_reader
from eegmobile import errors
from eegmobile import nights
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile import edf_writer
from tfrecords import schema
from tests import edf_files

# A 2-hour night: 20 min of wake, sleep from 20 to 80 min, wake to the end.
_ANNOTATIONS = [(0, 1200, "Sleep stage W"), (1200, 600, "Sleep stage 1"),
                (1800, 1200, "Sleep stage 2"), (3000, 900, "Sleep stage 3"),
                (3900, 300, "Sleep stage 4"), (4200, 600, "Sleep stage R"),
                (4800, 30, "Movement time"), (4830, 2370, "Sleep stage W")]
_SMALL = dataclasses.replace(config_lib.BuildConfig(),
                             spectrogram=config_lib.SpectrogramConfig(image_height=32,
                                                                      image_width=24))


def _recording(tmp_path, seconds=7200, hypnogram_start=None):
  """A PSG written by pyedflib and a hypnogram starting with it (or at hypnogram_start)."""
  psg = tmp_path / "SC4011E0-PSG.edf"
  hypnogram = tmp_path / "SC4011EH-Hypnogram.edf"
  edf_files.write_psg(psg,
                      seconds=seconds,
                      signal=np.random.default_rng(1).normal(0, 30, seconds * 100))
  header = edf_reader.read_header(str(psg))
  startdate, starttime = hypnogram_start or (header.startdate, header.starttime)
  edf_writer.write_hypnogram(str(hypnogram), [edf_reader.Annotation(*a) for a in _ANNOTATIONS],
                             startdate=startdate,
                             starttime=starttime)
  name = sleep_edf.parse_name(str(psg))
  return sleep_edf.Recording(record="SC4011E0",
                             subject_id="SC01",
                             subject=1,
                             night=1,
                             study=name.study,
                             psg_path=str(psg),
                             hypnogram_path=str(hypnogram))


def _night(tmp_path, seconds=7200, config=_SMALL):
  recording = _recording(tmp_path, seconds)
  return recording, nights.build_night(recording, config)


def test_examples_are_the_kept_epochs_in_order_with_their_images(tmp_path):
  recording, night = _night(tmp_path)
  # Sleep runs over epochs 40..159; 30 min (60 epochs) are kept on each side: 0..39
  # before, and 160..219 after, of which 160 is Movement time (dropped).
  expected_indices = list(range(0, 160)) + list(range(161, 220))
  decoded = schema.decode_batch(tf.constant([b"".join(e) for e in schema.night_examples(night)]),
                                32,
                                24,
                                with_metadata=True)
  assert decoded[schema.EPOCH_INDEX].numpy().tolist() == expected_indices
  np.testing.assert_allclose(decoded[schema.ONSET].numpy(), np.array(expected_indices) * 30.0)
  assert set(decoded[schema.SUBJECT].numpy().tolist()) == {b"SC01"}
  assert set(decoded[schema.RECORD].numpy().tolist()) == {b"SC4011E0"}
  labels = decoded[schema.LABEL].numpy()
  assert np.bincount(labels, minlength=5).tolist() == [40 + 59, 20, 40, 40, 20]
  # The images are those of the epochs cut from the whole channel (the build reads only
  # the span of the kept epochs: it must not matter).
  whole = edf_reader.read_channel(recording.psg_path)
  epochs = nights.cut_epochs(whole.signal, np.array(expected_indices), 3000)
  np.testing.assert_array_equal(decoded[schema.IMAGE].numpy(),
                                spectrogram.spectrogram_images(epochs, _SMALL.spectrogram))


def test_summary_counts_drops_and_hashes(tmp_path):
  recording, night = _night(tmp_path)
  summary = night.summary
  assert summary["num_examples"] == len(schema.night_examples(night)) == 219
  assert summary["class_counts"] == {"W": 99, "N1": 20, "N2": 40, "N3": 40, "REM": 20}
  assert summary["dropped"] == {"Movement time": 1, "wake trimmed": 20}
  assert summary["duration_s"] == 7200.0
  assert summary["channel"] == {
      "label": "EEG Fpz-Cz",
      "unit": "uV",
      "original_fs": 100.0,
      "fs": 100.0
  }
  for key, path in (("psg", recording.psg_path), ("hypnogram", recording.hypnogram_path)):
    with open(path, "rb") as f:
      assert summary[key]["sha256"] == hashlib.sha256(f.read()).hexdigest()


def test_sha256_of_reads_in_blocks(tmp_path):
  path = tmp_path / "blob"
  data = np.random.default_rng(2).integers(0, 256, 3 * 1024 + 17, dtype=np.uint8).tobytes()
  path.write_bytes(data)
  for block in (1, 1024, 1 << 20):
    assert nights.sha256_of(str(path), chunk_bytes=block) == hashlib.sha256(data).hexdigest()


def test_cut_epochs_refuses_an_epoch_past_the_signal():
  with pytest.raises(ValueError, match="epoch 3 ends after the signal"):
    nights.cut_epochs(np.zeros(9000), np.array([0, 3]), 3000)


def test_a_hypnogram_past_the_psg_is_named(tmp_path):
  with pytest.raises(errors.HypnogramError, match="SC4011EH-Hypnogram.edf"):
    _night(tmp_path, seconds=600)  # the hypnogram runs 7200 s


def test_a_hypnogram_that_does_not_start_with_its_psg_is_named_with_both_starts(tmp_path):
  recording = _recording(tmp_path, hypnogram_start=("24.04.89", "16.14.00"))
  psg_start = edf_reader.start_datetime(edf_reader.read_header(recording.psg_path))
  with pytest.raises(errors.HypnogramError) as raised:
    nights.build_night(recording, _SMALL)
  assert str(raised.value) == (
      f"{recording.hypnogram_path}: starts at 1989-04-24 16:14:00, but its PSG "
      f"SC4011E0-PSG.edf starts at {psg_start:%Y-%m-%d %H:%M:%S} ({recording.psg_path}); "
      "a hypnogram's epochs must start with its PSG")


def test_a_passed_window_gives_the_same_night(tmp_path):
  recording = _recording(tmp_path)
  passed = nights.build_night(recording, _SMALL, window=spectrogram.window(_SMALL.spectrogram))
  computed = nights.build_night(recording, _SMALL)
  assert passed.summary == computed.summary
  assert [b"".join(e) for e in schema.night_examples(passed)
         ] == [b"".join(e) for e in schema.night_examples(computed)]


def test_a_worker_handed_the_window_never_imports_scipy_signal(tmp_path):
  """scipy.signal is slow to import; a Beam worker gets the window from the driver."""
  recording = _recording(tmp_path)
  code = ("import sys; from eegmobile import nights; from eegmobile.sleep_edf import Recording; "
          "from eegmobile.config import BuildConfig, EpochConfig, SpectrogramConfig; "
          f"night = nights.build_night({recording!r}, {_SMALL!r}, "
          f"window={spectrogram.window(_SMALL.spectrogram).tolist()!r}); "
          "print(len(night.images), 'scipy.signal' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "219 False"
