"""Tests for eegmobile.context: the hidden Markov smoother against brute force, causality."""

import itertools

import numpy as np
import pytest

from eegmobile import context
from eegmobile import stages

N = stages.NUM_STAGES


def _random_smoother(seed: int) -> context.Smoother:
  rng = np.random.default_rng(seed)
  transitions = rng.random((N, N)) + 3 * np.eye(N)  # sticky, as sleep is
  priors = rng.random(N) + 0.2
  return context.Smoother(transitions / transitions.sum(axis=1, keepdims=True),
                          priors / priors.sum())


def _random_probabilities(seed: int, n: int) -> np.ndarray:
  p = np.random.default_rng(seed).dirichlet(np.ones(N) * 0.7, size=n)
  return p


def _brute_force(smoother, probabilities, epoch_index=None, upto=None):
  """p(s_t | x_1..x_upto) for every t, by summing over every stage sequence."""
  n = len(probabilities)
  upto = n if upto is None else upto
  index = np.arange(n) if epoch_index is None else np.asarray(epoch_index)
  likelihood = np.maximum(probabilities, context.PROBABILITY_FLOOR) / smoother.priors
  marginals = np.zeros((n, N))
  for path in itertools.product(range(N), repeat=n):
    weight = smoother.priors[path[0]]
    for t in range(n):
      if t:
        step = np.linalg.matrix_power(smoother.transitions, index[t] - index[t - 1])
        weight *= step[path[t - 1], path[t]]
      if t < upto:
        weight *= likelihood[t, path[t]]
    marginals[np.arange(n), path] += weight
  return marginals / marginals.sum(axis=1, keepdims=True)


def test_forward_backward_equals_brute_force_enumeration():
  smoother = _random_smoother(0)
  probabilities = _random_probabilities(1, 5)
  np.testing.assert_allclose(smoother.posteriors(probabilities),
                             _brute_force(smoother, probabilities),
                             rtol=1e-10)


def test_a_gap_steps_through_the_missing_epochs_with_the_transitions_alone():
  smoother = _random_smoother(2)
  probabilities = _random_probabilities(3, 5)
  index = [0, 1, 4, 5, 7]  # epochs 2, 3 and 6 missing
  expected = _brute_force(smoother, probabilities, index)
  np.testing.assert_allclose(smoother.posteriors(probabilities, index), expected, rtol=1e-10)
  # The same as giving the missing epochs with flat (uninformative) probabilities.
  full = np.tile(smoother.priors, (8, 1))
  full[index] = probabilities
  np.testing.assert_allclose(smoother.posteriors(full)[index], expected, rtol=1e-10)


@pytest.mark.parametrize("lag", [0, 1, 2])
def test_fixed_lag_smoothing_equals_brute_force_on_the_epochs_it_may_read(lag):
  smoother = _random_smoother(4)
  probabilities = _random_probabilities(5, 5)
  causal = smoother.causal_posteriors(probabilities, lag)
  for t in range(5):
    upto = min(t + lag + 1, 5)
    expected = _brute_force(smoother, probabilities[:upto])[t]
    np.testing.assert_allclose(causal[t], expected, rtol=1e-10)
  np.testing.assert_allclose(causal[-1], smoother.posteriors(probabilities)[-1], rtol=1e-10)


@pytest.mark.parametrize("lag", [0, 3])
def test_causal_smoothing_never_reads_future_epochs(lag):
  smoother = _random_smoother(6)
  probabilities = _random_probabilities(7, 40)
  before = smoother.causal_posteriors(probabilities, lag)
  for t in (0, 10, 25):
    changed = probabilities.copy()
    changed[t + lag + 1:] = _random_probabilities(8 + t, 40 - t - lag - 1)
    after = smoother.causal_posteriors(changed, lag)
    np.testing.assert_array_equal(after[:t + 1], before[:t + 1])
    assert not np.allclose(after[t + 1:], before[t + 1:])  # the change did reach later epochs
  # Forward-backward does read the future.
  changed = probabilities.copy()
  changed[11:] = _random_probabilities(99, 29)
  assert not np.allclose(smoother.posteriors(changed)[10], smoother.posteriors(probabilities)[10])


def test_the_live_smoother_releases_one_epoch_at_a_time_as_the_batch_form_gives():
  smoother = _random_smoother(9)
  probabilities = _random_probabilities(10, 12)
  live = context.CausalSmoother(smoother, lag=2)
  released = [live.update(row) for row in probabilities]
  assert [len(r) for r in released] == [0, 0] + [1] * 10
  tail = live.finish()
  assert tail.shape == (2, N)
  np.testing.assert_allclose(np.concatenate(released + [tail]),
                             smoother.causal_posteriors(probabilities, 2),
                             rtol=1e-12)
  # finish() empties it: the next night starts from the priors again.
  again = [live.update(row) for row in probabilities] + [live.finish()]
  np.testing.assert_allclose(np.concatenate(again), np.concatenate(released + [tail]), rtol=1e-12)
  with pytest.raises(ValueError, match="lag"):
    context.CausalSmoother(smoother, lag=-1)


def test_smoothing_removes_an_isolated_flip_that_the_transitions_make_unlikely():
  transitions = np.full((N, N), 0.01) + np.eye(N) * 0.95
  smoother = context.Smoother(transitions / transitions.sum(axis=1, keepdims=True),
                              np.full(N, 1 / N))
  probabilities = np.tile([0.05, 0.05, 0.8, 0.05, 0.05], (9, 1))
  probabilities[4] = [0.05, 0.45, 0.4, 0.05, 0.05]  # one epoch leans to N1
  assert np.argmax(probabilities, axis=1)[4] == stages.N1
  assert (np.argmax(smoother.posteriors(probabilities), axis=1) == stages.N2).all()
  np.testing.assert_allclose(smoother.posteriors(probabilities).sum(axis=1), 1)


def test_fit_counts_consecutive_pairs_only_and_the_priors_of_every_epoch():
  nights = [([0, 1, 2, 3], [0, 0, 1, 2]), ([5, 6, 8], [2, 2, 4])]  # 6 -> 8 is a gap
  smoother = context.fit_smoother(nights, pseudocount=0.0 + 1e-9)
  counts = np.zeros((N, N))
  counts[0, 0] = counts[0, 1] = counts[1, 2] = counts[2, 2] = 1
  np.testing.assert_allclose(smoother.transitions[:3],
                             counts[:3] / counts[:3].sum(axis=1, keepdims=True),
                             atol=1e-6)
  np.testing.assert_allclose(smoother.priors, np.array([2, 1, 3, 0, 1]) / 7, atol=1e-6)
  # With the default pseudocount every transition stays possible.
  assert (context.fit_smoother(nights).transitions > 0).all()
  with pytest.raises(ValueError, match="no scored epoch"):
    context.fit_smoother([])
  with pytest.raises(ValueError, match="stage indices"):
    context.fit_smoother([([0, 1], [0, 7])])


def test_the_smoother_round_trips_through_its_dict_and_refuses_bad_parameters():
  smoother = _random_smoother(11)
  again = context.Smoother.from_dict(smoother.to_dict())
  np.testing.assert_array_equal(again.transitions, smoother.transitions)
  np.testing.assert_array_equal(again.priors, smoother.priors)
  with pytest.raises(ValueError, match="sum to 1"):
    context.Smoother(np.ones((N, N)), smoother.priors)
  with pytest.raises(ValueError, match="priors"):
    context.Smoother(smoother.transitions, np.zeros(N))
  with pytest.raises(ValueError, match="stages"):
    context.Smoother.from_dict({**smoother.to_dict(), "stages": ["W", "N1", "N2", "N3", "R"]})


def test_apply_runs_the_stage_asked_for():
  smoother = _random_smoother(12)
  probabilities = _random_probabilities(13, 20).astype(np.float32)
  finished = context.apply(context.ContextStage("smoother", smoother=smoother), probabilities)
  np.testing.assert_allclose(finished, smoother.posteriors(probabilities), rtol=1e-5)
  assert finished.dtype == np.float32
  live = context.apply(context.ContextStage("smoother", lag=1, smoother=smoother), probabilities)
  np.testing.assert_allclose(live, smoother.causal_posteriors(probabilities, 1), rtol=1e-5)
  features = np.random.default_rng(0).random((20, 7)).astype(np.float32)
  head = context.ContextStage("head", head=lambda f: np.tile(f[:, :1], (1, N)))
  np.testing.assert_allclose(context.apply(head, probabilities, features), 1 / N)
  assert head.needs_features and head.describe()["mode"].startswith("finished")
  with pytest.raises(ValueError, match="features"):
    context.apply(head, probabilities)
  with pytest.raises(ValueError, match="trained with lag 0"):
    context.ContextStage("head", lag=2, head=lambda f: f, head_lag=0)
  with pytest.raises(ValueError, match="kind"):
    context.ContextStage("viterbi", smoother=smoother)


def test_a_rows_probabilities_do_not_depend_on_the_rows_beside_it():
  rows = np.random.default_rng(15).random((40, N)) - 0.05  # a few negative: clipped
  whole = context.as_probabilities(rows)
  assert whole.dtype == np.float32 and (whole >= 0).all()
  np.testing.assert_allclose(whole.sum(axis=1), 1, rtol=1e-6)
  one_by_one = np.concatenate([context.as_probabilities(row[None]) for row in rows])
  assert whole.tobytes() == one_by_one.tobytes()  # a live stager's rows are offline's


def _causal_run(window: int):
  """A stand-in causal head: each output is a softmax of the sum of the window's features
  (the epoch and the window - 1 before it)."""

  def run(features):
    padded = np.concatenate([np.zeros((window - 1, features.shape[1])), features])
    sums = np.stack([padded[i:i + window].sum(axis=0) for i in range(len(features))])
    e = np.exp(sums[:, :N] - sums[:, :N].max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

  return run


@pytest.mark.parametrize("length,lag", [(30, 0), (30, 2), (2, 3)])
def test_the_live_head_gives_what_the_head_gives_on_the_whole_night(length, lag):
  window = 5
  run = _causal_run(window)
  features = np.random.default_rng(14).random((length, 7), np.float32)
  whole = run(np.concatenate([features, np.zeros((lag, 7), np.float32)]))[lag:]  # batch form
  live = context.CausalHead(run, window, lag)
  released = [live.update(row) for row in features]
  assert [len(r) for r in released] == [0] * min(lag, length) + [1] * max(0, length - lag)
  tail = live.finish()
  assert len(tail) == min(lag, length)
  np.testing.assert_allclose(np.concatenate(released + [tail]), whole, rtol=1e-12)
  # It reads no epoch past t + lag: epoch t's row is out before epoch t + lag + 1 comes.
  assert live.finish().shape == (0, N)
