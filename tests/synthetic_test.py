"""Tests for eegmobile.demo.synthetic: stage rhythms, separability, hypnograms, files, the CLI."""

import datetime
import glob
import os
import subprocess
import sys

import numpy as np
import pyedflib
import pytest
import scipy.signal
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from eegmobile import config
from eegmobile import edf_reader
from eegmobile import edf_writer
from eegmobile import hypnogram
from eegmobile import nights
from eegmobile import sleep_edf
from eegmobile import spectrogram
from eegmobile import stages
from eegmobile.demo import synthetic

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")
REAL_HYPNOGRAMS = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
REPO = os.path.join(os.path.dirname(__file__), "..")


def _band_power(epochs, band):
  f, p = scipy.signal.welch(epochs, fs=100, nperseg=512, axis=-1)
  return p[..., (f >= band[0]) & (f < band[1])].sum(axis=-1).mean()


@pytest.fixture(scope="module")
def per_stage():
  """30 epochs of each stage (and of unscored), in blocks."""
  labels = np.repeat(np.arange(synthetic.UNSCORED, stages.NUM_STAGES), 30)
  return labels, synthetic.synthesize_eeg(labels, seed=3).reshape(len(labels), -1)


def test_textbook_rhythms_dominate_their_stage(per_stage):
  labels, eeg = per_stage
  power = lambda stage, band: _band_power(eeg[labels == stage], band)
  W, N1, N2, N3, REM = range(5)
  assert power(N3, (0.5, 2)) > 4 * max(power(s, (0.5, 2)) for s in (W, N1, N2, REM))
  assert power(W, (8, 12)) > 5 * max(power(s, (8, 12)) for s in (N1, N2, N3, REM))
  assert power(W, (15, 30)) > 3 * max(power(s, (15, 30)) for s in (N1, N2, N3))
  assert power(N1, (4, 7)) > 2 * max(power(s, (4, 7)) for s in (W, REM))
  assert power(N2, (12, 15)) > 3 * max(power(s, (12, 15)) for s in (N1, N3, REM))  # spindles
  assert power(REM, (15, 30)) > 2 * power(N1, (15, 30))
  assert power(synthetic.UNSCORED, (8, 12)) > power(N1, (8, 12))  # wake-like


def test_amplitudes_are_realistic_and_inside_the_physical_range(per_stage):
  labels, eeg = per_stage
  ptp = np.ptp(eeg, axis=1)
  assert ptp[labels == stages.N3].min() > 75  # high-amplitude delta
  assert eeg[labels == stages.REM].std() < eeg[labels == stages.W].std() < 30  # low voltage
  assert eeg[labels == stages.N3].std() > 1.8 * eeg[labels == stages.N2].std()
  assert np.abs(eeg).max() <= 190 and eeg.dtype == np.float32
  # K-complexes: N2 has far more large negative deflections than N1.
  assert (eeg[labels == stages.N2] < -60).sum() > 5 * (eeg[labels == stages.N1] < -60).sum()


def test_deterministic_per_seed(per_stage):
  labels, eeg = per_stage
  np.testing.assert_array_equal(synthetic.synthesize_eeg(labels, seed=3).reshape(eeg.shape), eeg)
  assert not np.array_equal(synthetic.synthesize_eeg(labels, seed=4).reshape(eeg.shape), eeg)


def test_every_subject_and_night_gets_its_own_seed():
  names = [
      sleep_edf.parse_name(f"{study}{4 if study == 'SC' else 7}{s:02d}{n}E0-PSG.edf")
      for study in ("SC", "ST")
      for s in range(83)
      for n in (1, 2)
  ]
  seeds = [synthetic.night_seed(0, name) for name in names]
  assert len(set(seeds)) == len(seeds)
  assert synthetic.night_seed(1, names[0]) != seeds[0]
  assert synthetic.night_seed(0, names[0]) == seeds[0]


def _images_and_stages(seed):
  annotations = synthetic.synthetic_hypnogram(seed, hours=5)
  stage_per_epoch = synthetic.stages_from_annotations(
      annotations, int(hypnogram.scored_duration(annotations) // 30))
  scored = stage_per_epoch >= 0
  eeg = synthetic.synthesize_eeg(stage_per_epoch, seed=seed).reshape(len(stage_per_epoch), -1)
  images = spectrogram.spectrogram_images(eeg[scored], config.SpectrogramConfig())
  pooled = images.reshape(len(images), 28, 8, 28, 8).mean(axis=(2, 4)).reshape(len(images), -1)
  return pooled / 255.0, stage_per_epoch[scored]


def test_stages_are_separable_from_their_spectrogram_images():
  """A linear classifier on the build's own images, trained on two nights, tested on a
  third, recognises every stage."""
  train = [_images_and_stages(seed) for seed in (1, 2)]
  x_test, y_test = _images_and_stages(3)
  classifier = LogisticRegression(max_iter=1000).fit(np.concatenate([x for x, _ in train]),
                                                     np.concatenate([y for _, y in train]))
  predicted = classifier.predict(x_test)
  assert set(y_test) == set(range(stages.NUM_STAGES))
  assert balanced_accuracy_score(y_test, predicted) > 0.9
  for stage in range(stages.NUM_STAGES):
    assert np.mean(predicted[y_test == stage] == stage) > 0.75, stages.STAGES[stage]


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_hypnogram_is_plausible(seed):
  annotations = synthetic.synthetic_hypnogram(seed=seed, hours=8)
  assert annotations[0].onset == 0 and annotations[0].description == "Sleep stage W"
  for a, b in zip(annotations, annotations[1:]):
    assert b.onset == a.onset + a.duration and a.description != b.description
    assert a.duration % 30 == 0 and a.duration > 0
  assert annotations[-2].description == "Sleep stage W"  # wake at the end
  assert annotations[-1] == edf_reader.Annotation(8 * 3600, 86400 - 8 * 3600, "Sleep stage ?")
  assert hypnogram.scored_duration(annotations) == 8 * 3600
  stage_per_epoch = synthetic.stages_from_annotations(annotations, 960)
  counts = np.bincount(stage_per_epoch[stage_per_epoch >= 0], minlength=5)
  assert all(counts > 0) and counts[stages.N2] == counts.max()
  first, second = stage_per_epoch[:480], stage_per_epoch[480:]
  assert (first == stages.N3).sum() > 2 * (second == stages.N3).sum()  # N3 early
  assert (second == stages.REM).sum() > 1.5 * (first == stages.REM).sum()  # REM late
  sleep = np.flatnonzero(stage_per_epoch > stages.W)
  assert 35 * 2 <= sleep[0] <= 60 * 2 + 20  # 35-60 min of wake before lights-off, then N1
  assert (stage_per_epoch[sleep[0]:sleep[-1]] == stages.W).sum() > 0  # brief awakenings


def test_synthetic_hypnograms_have_movement_time_and_long_recordings_mostly_wake():
  texts = [a.description for seed in range(6) for a in synthetic.synthetic_hypnogram(seed, 8)]
  assert "Movement time" in texts and "Sleep stage 4" in texts
  annotations = synthetic.synthetic_hypnogram(0, hours=22)
  stage_per_epoch = synthetic.stages_from_annotations(annotations, 22 * 120)
  sleep = np.flatnonzero(stage_per_epoch > stages.W)
  assert 7 * 120 <= sleep[-1] - sleep[0] <= 8.5 * 120
  with pytest.raises(ValueError, match="hours"):
    synthetic.synthetic_hypnogram(0, hours=24)


def test_psg_from_annotations_has_the_sleep_edf_layout_and_follows_them(tmp_path):
  annotations = synthetic.synthetic_hypnogram(5, hours=1.5)
  path = str(tmp_path / "SC4051E0-PSG.edf")
  stage_per_epoch = synthetic.synthesize_psg(path, annotations, seed=7, starttime="23.10.00")
  header = edf_reader.read_header(path)
  assert header.signals == edf_writer.SLEEP_EDF_SC_LAYOUT and header.record_duration == 30
  assert header.duration_s == hypnogram.scored_duration(annotations) == 1.5 * 3600
  assert header.starttime == "23.10.00"
  np.testing.assert_array_equal(stage_per_epoch,
                                synthetic.stages_from_annotations(annotations, 180))
  # The pipeline's reader gets the generator's EEG, to within one digital step.
  channel = edf_reader.read_channel(path, "EEG Fpz-Cz")
  step = 384 / 4095
  expected = synthetic.psg_signals(stage_per_epoch, seed=7)[0].data
  np.testing.assert_allclose(channel.signal, expected, atol=step / 2 + 1e-4)
  with pyedflib.EdfReader(path) as reader:  # and so does an independent reader
    for i, signal in enumerate(synthetic.psg_signals(stage_per_epoch, seed=7)):
      step = (signal.header.physical_max -
              signal.header.physical_min) / (signal.header.digital_max - signal.header.digital_min)
      np.testing.assert_allclose(reader.readSignal(i), signal.data, atol=step)


def test_other_channels_are_plausible():
  labels = np.repeat([stages.W, stages.N1, stages.N2, stages.N3, stages.REM], 40)
  signals = {s.header.label: s.data for s in synthetic.psg_signals(labels, seed=2)}
  by_stage = lambda label, rate: signals[label].reshape(len(labels), 30 * rate)
  emg = by_stage("EMG submental", 1)[:, 25:].mean(axis=1)  # after the level settles
  assert emg[labels == stages.REM].mean() < 0.6 * emg[labels == stages.N3].mean()
  assert emg[labels == stages.W].mean() > emg[labels == stages.N2].mean()
  eog = np.abs(np.diff(by_stage("EOG horizontal", 100), axis=1)).max(axis=1)
  assert np.median(eog[labels == stages.REM]) > 3 * np.median(eog[labels == stages.N3])
  temp = signals["Temp rectal"]
  assert 36 < temp.min() < temp.max() < 38 and temp[-1] < temp[0]
  assert not signals["Event marker"].any()
  for s in synthetic.psg_signals(labels, seed=2):
    assert s.header.physical_min <= s.data.min() and s.data.max() <= s.header.physical_max


def test_psg_from_stages_pads_with_unscored_epochs(tmp_path):
  path = str(tmp_path / "a.edf")
  used = synthetic.synthesize_psg(path, np.array([0, 1, 2]), seed=0, duration_s=150)
  assert used.tolist() == [0, 1, 2, -1, -1]
  assert edf_reader.read_header(path).duration_s == 150
  assert synthetic.synthesize_psg(path, [4, 4, 3], seed=0, duration_s=60).tolist() == [4, 4]
  with pytest.raises(ValueError, match="multiple of 30"):
    synthetic.synthesize_psg(path, [0, 1], seed=0, duration_s=45)
  with pytest.raises(ValueError, match="stages must be"):
    synthetic.synthesize_psg(path, [0, 5], seed=0)


def test_a_22_hour_night_is_written_whole(tmp_path):
  # Speed is measured in bench/build_throughput.py, not asserted here.
  annotations = synthetic.synthetic_hypnogram(0, hours=22)
  synthetic.synthesize_psg(str(tmp_path / "long.edf"), annotations, seed=0)
  assert os.path.getsize(tmp_path / "long.edf") == 256 * 8 + 2640 * 2 * (3 * 3000 + 4 * 30)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("demo"))
  written = synthetic.make_demo_dataset(directory)  # the defaults the demo build uses
  return directory, written


def test_demo_set_pairs_like_sleep_edf_and_has_a_small_build(demo_dir):
  directory, written = demo_dir
  recordings, problems = sleep_edf.find_recordings(directory, "sleep-edf-20")
  assert not problems
  assert [r.record for r in recordings] == [f"SC4{s:02d}{n}E0" for s in range(4) for n in (1, 2)]
  assert sorted(written) == sorted(r.psg_path for r in recordings)
  counts = np.zeros(stages.NUM_STAGES, int)
  for r in recordings:
    annotations = edf_reader.read_annotations(r.hypnogram_path)
    psg = edf_reader.read_header(r.psg_path)
    assert psg.duration_s == hypnogram.scored_duration(annotations) == 4 * 3600
    assert edf_reader.start_datetime(psg) == edf_reader.start_datetime(
        edf_reader.read_header(r.hypnogram_path)) == datetime.datetime(1989, 1, 1, 16)
    nights.check_starts(psg, edf_reader.read_header(r.hypnogram_path))  # the build's check
    labelled = hypnogram.label_epochs(annotations, psg_duration_s=psg.duration_s)
    assert labelled.dropped["wake trimmed"] > 0
    counts += np.bincount(labelled.labels, minlength=stages.NUM_STAGES)
  assert 3000 <= counts.sum() <= 5000 and counts.min() >= 100, counts


def test_demo_set_is_reproducible(demo_dir, tmp_path):
  directory, _ = demo_dir
  synthetic.make_demo_dataset(str(tmp_path), subjects=(1,), nights=(2,))
  for name in ("SC4012E0-PSG.edf", "SC4012EC-Hypnogram.edf"):
    assert (open(os.path.join(directory, "sleep-cassette", name),
                 "rb").read() == open(tmp_path / "sleep-cassette" / name, "rb").read())


def test_synthesize_for_hypnograms_matches_each_hypnogram(tmp_path):
  source = tmp_path / "source"
  source.mkdir()
  hypnograms = []
  for name, hours in (("SC4102EC-Hypnogram.edf", 1.0), ("ST7011JP-Hypnogram.edf", 0.5)):
    hypnograms.append(str(source / name))
    edf_writer.write_hypnogram(hypnograms[-1],
                               synthetic.synthetic_hypnogram(1, hours),
                               startdate="18.04.89",
                               starttime="15.56.00")
  out = tmp_path / "out"
  written = synthetic.synthesize_for_hypnograms(hypnograms, str(out), seed=0)
  assert written == [
      str(out / "sleep-cassette" / "SC4102E0-PSG.edf"),
      str(out / "sleep-telemetry" / "ST7011J0-PSG.edf")
  ]
  for psg, hours, source_path in zip(written, (1.0, 0.5), hypnograms):
    header = edf_reader.read_header(psg)
    assert header.duration_s == hours * 3600 and header.starttime == "15.56.00"
    copy = os.path.join(os.path.dirname(psg), os.path.basename(source_path))
    assert edf_reader.start_datetime(header) == edf_reader.start_datetime(
        edf_reader.read_header(copy)) == datetime.datetime(1989, 4, 18, 15, 56)
    nights.check_starts(header, edf_reader.read_header(copy))  # the build's check
    assert open(copy, "rb").read() == open(source_path, "rb").read()
  recordings, problems = sleep_edf.find_recordings(str(out), "all")
  assert len(recordings) == 2 and not problems
  with pytest.raises(ValueError, match="not a Sleep-EDF hypnogram"):
    synthetic.synthesize_for_hypnograms([written[0]], str(out))


def test_find_hypnograms(tmp_path):
  for name in ("SC4001EC-Hypnogram.edf", "SC4001E0-PSG.edf", "SC4002EC-Hypnogram.edf"):
    (tmp_path / name).write_bytes(b"")
  assert synthetic.find_hypnograms(str(tmp_path)) == [
      str(tmp_path / "SC4001EC-Hypnogram.edf"),
      str(tmp_path / "SC4002EC-Hypnogram.edf")
  ]
  listed = f"{tmp_path / 'SC4002EC-Hypnogram.edf'},{tmp_path / 'SC4001EC-Hypnogram.edf'}"
  assert synthetic.find_hypnograms(listed) == synthetic.find_hypnograms(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="nothere.edf: no such hypnogram"):
    synthetic.find_hypnograms(f"{tmp_path / 'SC4001EC-Hypnogram.edf'},nothere.edf")
  with pytest.raises(FileNotFoundError):
    synthetic.find_hypnograms(str(tmp_path / "empty-dir-that-is-not-there"))


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "beam_pipelines.make_synthetic", *args],
                        capture_output=True,
                        text=True,
                        timeout=300,
                        cwd=REPO)


@pytest.mark.skipif(not REAL_HYPNOGRAMS, reason="../shared/sleep-edf not present")
def test_cli_writes_matching_length_psgs_for_real_hypnograms(tmp_path):
  chosen = [h for h in REAL_HYPNOGRAMS if "SC4061" in h]  # the shortest night
  run = _cli("--hypnograms", ",".join(chosen), "--output_dir", str(tmp_path))
  assert run.returncode == 0, run.stderr[-2000:]
  psg = tmp_path / "sleep-cassette" / "SC4061E0-PSG.edf"
  annotations = edf_reader.read_annotations(chosen[0])
  real = edf_reader.read_header(chosen[0])
  ours = edf_reader.read_header(str(psg))
  assert ours.duration_s == hypnogram.scored_duration(annotations)
  assert (ours.patient, ours.startdate, ours.starttime) == (real.patient, real.startdate,
                                                            real.starttime)
  nights.check_starts(ours, real)
  assert (tmp_path / "sleep-cassette" / os.path.basename(chosen[0])).exists()
  # The pipeline labels it like the real night (the counts of tests/hypnogram_test.py).
  labelled = hypnogram.label_epochs(annotations, psg_duration_s=ours.duration_s)
  assert len(labelled.labels) > 0


def test_cli_names_missing_hypnograms(tmp_path):
  run = _cli("--hypnograms", str(tmp_path / "none"), "--output_dir", str(tmp_path))
  assert run.returncode == 2 and "none: no such hypnogram file" in run.stderr
  assert _cli("--demo").returncode != 0  # --output_dir is required


def test_difficulty_zero_is_the_textbook_signal_and_out_of_range_is_refused(per_stage):
  labels, eeg = per_stage
  np.testing.assert_array_equal(
      synthetic.synthesize_eeg(labels, seed=3, difficulty=0.0).reshape(eeg.shape), eeg)
  harder = synthetic.synthesize_eeg(labels, seed=3, difficulty=0.8).reshape(eeg.shape)
  assert not np.array_equal(harder, eeg) and np.abs(harder).max() <= 190
  with pytest.raises(ValueError, match="difficulty"):
    synthetic.synthesize_eeg(labels, seed=3, difficulty=1.5)


def test_mixing_borrows_a_confusable_stage_with_weights_correlated_between_neighbours():
  own = np.repeat(np.arange(stages.NUM_STAGES), 4000)
  borrowed, weight = synthetic.mixing(own, 0.8, np.random.default_rng(0))
  assert (borrowed != own).all()  # never its own stage
  for stage in range(stages.NUM_STAGES):  # borrowed as often as CONFUSABLE says
    counts = np.bincount(borrowed[own == stage], minlength=stages.NUM_STAGES) / 4000
    np.testing.assert_allclose(counts, synthetic.CONFUSABLE[stage], atol=0.03)
  assert weight.min() >= 0 and weight.max() <= 0.8
  assert abs(weight.mean() - 0.4) < 0.02  # uniform on [0, 0.8]
  lag1 = np.corrcoef(weight[:-1], weight[1:])[0, 1]
  assert 0.3 < lag1 < 0.7  # neighbours alike (AR coefficient 0.5), not identical
  unscored = np.array([synthetic.UNSCORED, stages.W])
  assert synthetic.mixing(unscored, 0.8, np.random.default_rng(0))[0][0] == synthetic.UNSCORED


def test_the_harder_variant_is_ambiguous_epoch_by_epoch_but_still_learnable():
  """The linear classifier of the separability test, on difficulty 0.8: far from perfect,
  far above chance (5 classes)."""

  def data(seed):
    annotations = synthetic.synthetic_hypnogram(seed, hours=5)
    stage_per_epoch = synthetic.stages_from_annotations(
        annotations, int(hypnogram.scored_duration(annotations) // 30))
    scored = stage_per_epoch >= 0
    eeg = synthetic.synthesize_eeg(stage_per_epoch, seed=seed,
                                   difficulty=0.8).reshape(len(stage_per_epoch), -1)
    images = spectrogram.spectrogram_images(eeg[scored], config.SpectrogramConfig())
    pooled = images.reshape(len(images), 28, 8, 28, 8).mean(axis=(2, 4)).reshape(len(images), -1)
    return pooled / 255.0, stage_per_epoch[scored]

  train = [data(seed) for seed in (1, 2)]
  x_test, y_test = data(3)
  classifier = LogisticRegression(max_iter=1000).fit(np.concatenate([x for x, _ in train]),
                                                     np.concatenate([y for _, y in train]))
  accuracy = np.mean(classifier.predict(x_test) == y_test)
  assert 0.55 < accuracy < 0.9
