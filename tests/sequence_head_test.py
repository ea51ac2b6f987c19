"""Tests for eegmobile.sequence_head: shape, receptive field, causality, crops, training."""

import keras
import numpy as np
import pytest

from eegmobile import sequence_head
from eegmobile import stages

F = 6  # feature size of these tests


def _head(config, seed=0):
  keras.utils.set_random_seed(seed)
  return sequence_head.build_head(config, np.zeros(F), np.ones(F))


def _outputs(head, x):
  return np.asarray(head(x[None], training=False))[0]


def test_config_checks_the_window_and_counts_the_layers():
  assert sequence_head.HeadConfig().layers == 5  # 21 = 1 + 5 x 4
  assert sequence_head.HeadConfig(window=9, kernel=3).layers == 4
  with pytest.raises(ValueError, match="window"):
    sequence_head.HeadConfig(window=19)
  with pytest.raises(ValueError, match="lag"):
    sequence_head.HeadConfig(lag=2)  # a lag only for a causal head


def test_the_head_takes_nights_of_any_length_and_has_the_parameters_it_should():
  config = sequence_head.HeadConfig(window=9, kernel=5, width=8)
  head = _head(config)
  for length in (1, 7, 300):
    out = _outputs(head, np.random.default_rng(length).random((length, F), np.float32))
    assert out.shape == (length, stages.NUM_STAGES)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
  # project + 2 convs + stages (the normalisation's mean and variance are constants)
  expected = (F * 8 + 8) + 2 * (5 * 8 * 8 + 8) + (8 * 5 + 5)
  assert head.count_params() == expected


@pytest.mark.parametrize("causal,lag", [(False, 0), (True, 0), (True, 2)])
def test_each_output_reads_exactly_its_window(causal, lag):
  config = sequence_head.HeadConfig(window=9, kernel=5, width=8, causal=causal, lag=lag)
  head = _head(config)
  night = np.random.default_rng(1).random((40, F), np.float32)
  before = sequence_head.predict_night(head, config, night)
  t = 20
  first, last = (t - 8 + lag, t + lag) if causal else (t - 4, t + 4)
  for moved in range(40):
    changed = night.copy()
    changed[moved] += 3.0
    after = sequence_head.predict_night(head, config, changed)
    reads = not np.allclose(after[t], before[t], atol=1e-7)
    assert reads == (first <= moved <= last), (moved, first, last)


def test_a_causal_head_never_reads_past_its_lag():
  config = sequence_head.HeadConfig(window=9, kernel=5, width=8, causal=True, lag=1)
  head = _head(config)
  night = np.random.default_rng(2).random((30, F), np.float32)
  before = sequence_head.predict_night(head, config, night)
  changed = night.copy()
  changed[16:] = np.random.default_rng(3).random((14, F))
  after = sequence_head.predict_night(head, config, changed)
  np.testing.assert_array_equal(after[:15], before[:15])  # epoch 14 reads up to 15
  assert not np.allclose(after[15], before[15])


@pytest.mark.parametrize("causal", [False, True])
def test_outputs_kept_by_the_crop_weights_are_the_whole_nights_outputs(causal):
  config = sequence_head.HeadConfig(window=9, kernel=5, width=8, causal=causal)
  head = _head(config)
  night = np.random.default_rng(4).random((50, F), np.float32)
  whole = _outputs(head, night)
  for start, length in ((0, 20), (13, 20), (30, 20), (10, 30)):
    weights = sequence_head.crop_weights(config, start, length, len(night))
    crop = _outputs(head, night[start:start + length])
    kept = weights > 0
    np.testing.assert_allclose(crop[kept], whole[start:start + length][kept], rtol=1e-5, atol=1e-6)
    assert kept.sum() >= length - 8  # at most the reach at each inner edge is dropped
    if 0 < start and start + length < len(night):
      assert not kept[0]


def test_grid_night_puts_missing_epochs_as_zeros_without_labels():
  features = np.arange(3 * F, dtype=np.float32).reshape(3, F) + 1
  grid, labels = sequence_head.grid_night([4, 5, 7], features, [1, 2, 3])
  assert grid.shape == (4, F) and labels.tolist() == [1, 2, sequence_head.NO_LABEL, 3]
  assert (grid[2] == 0).all() and (grid[3] == features[2]).all()
  with pytest.raises(ValueError, match="increase"):
    sequence_head.grid_night([1, 1, 2], features)


def test_night_inputs_shift_the_labels_of_a_causal_head_by_its_lag():
  config = sequence_head.HeadConfig(window=9, kernel=5, causal=True, lag=2)
  x, y = sequence_head.night_inputs(config, np.ones((4, F), np.float32), np.array([0, 1, 2, 3]))
  assert x.shape == (6, F) and (x[4:] == 0).all()
  assert y.tolist() == [-1, -1, 0, 1, 2, 3]
  assert sequence_head.night_probabilities(config, np.arange(6)).tolist() == [2, 3, 4, 5]


def test_a_trained_head_uses_the_neighbours_to_decide_an_ambiguous_epoch():
  """Nights of long stage runs; a third of the epochs' features say nothing. The centred
  head, trained for a few hundred steps, stages those from their neighbours."""
  rng = np.random.default_rng(5)
  nights = []
  for _ in range(6):
    labels = np.repeat(rng.integers(0, stages.NUM_STAGES, size=20), 10)
    features = np.eye(stages.NUM_STAGES, F)[labels] + 0.3 * rng.standard_normal((200, F))
    blank = rng.random(200) < 0.33
    features[blank] = 0.3 * rng.standard_normal((blank.sum(), F))
    nights.append((features.astype(np.float32), labels, blank))
  config = sequence_head.HeadConfig(window=9, kernel=5, width=16)
  head = sequence_head.fit_head(config, [(f, y) for f, y, _ in nights[:5]],
                                steps=300,
                                crop_length=64)
  features, labels, blank = nights[5]
  predicted = np.argmax(sequence_head.predict_night(head, config, features), axis=1)
  assert np.mean(predicted[blank] == labels[blank]) > 0.8
