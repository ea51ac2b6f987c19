"""Tests for eegmobile.synthetic: stage rhythms, layout, lengths, the CLI."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

from eegmobile import edf_reader
from eegmobile import hypnogram
from eegmobile import sleep_edf
from eegmobile import stages
from eegmobile import synthetic

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")


def _band_power(signal, band):
  f, p = scipy.signal.welch(signal, fs=100, nperseg=512)
  return p[(f >= band[0]) & (f < band[1])].sum()


@pytest.fixture(scope="module")
def per_stage():
  """20 epochs of each stage, in blocks."""
  labels = np.repeat(np.arange(stages.NUM_STAGES), 20)
  return labels, synthetic.eeg(labels, seed=3).reshape(len(labels), -1)


def test_textbook_rhythms_dominate_their_stage(per_stage):
  labels, eeg = per_stage
  power = lambda stage, band: np.mean([_band_power(e, band) for e in eeg[labels == stage]])
  assert power(stages.N3, (0.5, 2)) > 3 * max(power(s, (0.5, 2)) for s in (0, 1, 4))
  assert power(stages.W, (8, 12)) > 3 * max(power(s, (8, 12)) for s in (1, 3, 4))
  assert power(stages.N1, (4, 7)) > power(stages.W, (4, 7))
  assert power(stages.N2, (12, 14.5)) > 2 * power(stages.N1, (12, 14.5))  # spindles
  assert np.ptp(eeg[labels == stages.N3], axis=1).mean() > 75  # high-amplitude delta
  assert eeg[labels == stages.REM].std() < eeg[labels == stages.N3].std()
  assert np.abs(eeg).max() <= 190


def test_deterministic_per_seed(per_stage):
  labels, eeg = per_stage
  np.testing.assert_array_equal(synthetic.eeg(labels, seed=3).reshape(eeg.shape), eeg)
  assert not np.array_equal(synthetic.eeg(labels, seed=4).reshape(eeg.shape), eeg)


def test_synthetic_hypnogram_is_plausible():
  annotations = synthetic.synthetic_hypnogram(seed=0, hours=8)
  labelled = hypnogram.label_epochs(annotations,
                                    psg_duration_s=hypnogram.scored_duration(annotations))
  counts = np.bincount(labelled.labels, minlength=5)
  assert all(counts > 0) and counts[stages.N2] == counts.max()
  assert annotations[-1].description == "Sleep stage ?"
  assert annotations[-1].onset + annotations[-1].duration == 86400


def test_demo_set_pairs_like_sleep_edf(tmp_path):
  written = synthetic.make_demo_dataset(str(tmp_path), subjects=(0, 1), nights=(1,), hours=1)
  recordings, problems = sleep_edf.find_recordings(str(tmp_path), "sleep-edf-20")
  assert [r.record for r in recordings] == ["SC4001E0", "SC4011E0"] and not problems
  assert sorted(written) == sorted(r.psg_path for r in recordings)
  header = edf_reader.read_header(written[0])
  assert len(header.signals) == 7 and header.record_duration == 30


def test_cli_writes_matching_length_psgs_for_real_hypnograms(tmp_path):
  hypnograms = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
  if not hypnograms:
    pytest.skip("../shared/sleep-edf not present")
  chosen = [h for h in hypnograms if "SC4061" in h]  # the shortest night
  run = subprocess.run([
      sys.executable, "-m", "beam_pipelines.make_synthetic", "--hypnograms", ",".join(chosen),
      "--output_dir",
      str(tmp_path)
  ],
                       capture_output=True,
                       text=True,
                       timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  psg = tmp_path / "sleep-cassette" / "SC4061E0-PSG.edf"
  annotations = edf_reader.read_annotations(chosen[0])
  assert edf_reader.read_header(str(psg)).duration_s == hypnogram.scored_duration(annotations)
  assert (tmp_path / "sleep-cassette" / os.path.basename(chosen[0])).exists()
  empty = subprocess.run([
      sys.executable, "-m", "beam_pipelines.make_synthetic", "--hypnograms",
      str(tmp_path / "none"), "--output_dir",
      str(tmp_path)
  ],
                         capture_output=True,
                         text=True)
  assert empty.returncode == 2 and "none: no such hypnogram file" in empty.stderr
