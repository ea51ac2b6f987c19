"""Context across epochs: a hidden Markov smoother over the per-epoch model's probabilities.

Pure numpy (no TensorFlow): the trainer fits it per fold, staging applies it.

The per-epoch model gives p(stage | epoch's image), a posterior under the class frequencies
it was trained on. A hidden Markov model over the night's stages needs likelihoods, and
p(x | s) is proportional to p(s | x) / p(s): the *scaled likelihood* (as hybrid HMM-neural
speech recognisers use it). With the stage transition matrix counted from the training
nights' hypnograms:

  forward-backward (`Smoother.posteriors`): p(s_t | every epoch of the night), for a
      finished night;
  forward with a fixed lag k (`CausalSmoother`, `Smoother.causal_posteriors`):
      p(s_t | epochs 1 .. t + k), for a live night: epoch t's smoothed probabilities are
      known k epochs after it (lag 0: filtering, nothing after t is read).

Gaps: an epoch the night does not have (unscored epochs a build dropped, or a missing
stretch of signal) carries no evidence, so the chain steps through it with the transition
matrix alone: from epoch index i to i + g the transition is A^g. A long gap thus forgets
what came before (A^g tends to the stationary distribution), a short one barely does.
Staging has no gaps (every epoch of the recording is scored).

The first epoch's stage distribution is the training class priors (the per-epoch model's
own prior): its own evidence then decides it, as it would without a smoother.

`ContextStage` / `apply` put a fitted smoother (or a learned sequence head, given as a
function from per-epoch features to probabilities) after the per-epoch model, as a
finished-night (bidirectional) or live (causal, lag k) stage.
"""

import dataclasses
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from eegmobile import stages

# Probabilities are floored at this before dividing by the priors: a quantised model can
# give an exact 0, which would make a stage impossible whatever its neighbours say.
PROBABILITY_FLOOR = 1e-6
STAGE_KINDS = ("none", "smoother", "head")  # what a context stage can be


@dataclasses.dataclass(frozen=True)
class Smoother:
  """A fitted hidden Markov smoother.

  Attributes:
    transitions: [5, 5] p(stage at t+1 = j | stage at t = i), rows summing to 1.
    priors: [5] class frequencies of the per-epoch model's training epochs (its softmax's
      prior; also the first epoch's stage distribution).
  """
  transitions: np.ndarray
  priors: np.ndarray

  def __post_init__(self):
    transitions = np.asarray(self.transitions, np.float64)
    priors = np.asarray(self.priors, np.float64)
    n = stages.NUM_STAGES
    if transitions.shape != (n, n) or priors.shape != (n,):
      raise ValueError(f"need transitions [{n}, {n}] and priors [{n}], got "
                       f"{transitions.shape} and {priors.shape}")
    if (transitions < 0).any() or not np.allclose(transitions.sum(axis=1), 1, atol=1e-6):
      raise ValueError("transition rows must be non-negative and sum to 1")
    if (priors <= 0).any() or not np.isclose(priors.sum(), 1, atol=1e-6):
      raise ValueError("priors must be positive and sum to 1")
    object.__setattr__(self, "transitions", transitions)
    object.__setattr__(self, "priors", priors)

  def to_dict(self) -> dict:
    """{"stages", "transitions", "priors"} with plain lists (for JSON)."""
    return {
        "stages": list(stages.STAGES),
        "transitions": self.transitions.tolist(),
        "priors": self.priors.tolist()
    }

  @classmethod
  def from_dict(cls, recorded: dict) -> "Smoother":
    """The smoother `to_dict` recorded.

    Raises:
      KeyError, ValueError: not that form, or stages in another order.
    """
    if list(recorded.get("stages", stages.STAGES)) != list(stages.STAGES):
      raise ValueError(f"smoother recorded for stages {recorded['stages']}, not {stages.STAGES}")
    return cls(np.asarray(recorded["transitions"]), np.asarray(recorded["priors"]))

  def likelihoods(self, probabilities: np.ndarray) -> np.ndarray:
    """Scaled likelihoods p(s | x) / p(s) of [n, 5] per-epoch probabilities."""
    p = np.maximum(np.asarray(probabilities, np.float64), PROBABILITY_FLOOR)
    return p / self.priors

  def _step(self, steps: int) -> np.ndarray:
    return self.transitions if steps == 1 else np.linalg.matrix_power(self.transitions, steps)

  def posteriors(self,
                 probabilities: np.ndarray,
                 epoch_index: Optional[Sequence[int]] = None) -> np.ndarray:
    """Forward-backward: each epoch's stage posterior given the whole night.

    Args:
      probabilities: [n, 5] the per-epoch model's probabilities, in time order.
      epoch_index: the epochs' indices in the night (increasing; gaps allowed, see the
        module docstring); default 0..n-1.

    Returns:
      float64 [n, 5], rows summing to 1.
    """
    likelihood = self.likelihoods(probabilities)
    steps = _steps(len(likelihood), epoch_index)
    n = len(likelihood)
    alpha = np.empty_like(likelihood)
    if not n:
      return alpha
    matrices = {g: self._step(g) for g in set(steps[1:].tolist())}
    alpha[0] = _normalised(self.priors * likelihood[0])
    for t in range(1, n):
      alpha[t] = _normalised((alpha[t - 1] @ matrices[steps[t]]) * likelihood[t])
    beta = np.ones(stages.NUM_STAGES)
    out = np.empty_like(likelihood)
    out[-1] = alpha[-1]
    for t in range(n - 2, -1, -1):
      beta = _normalised(matrices[steps[t + 1]] @ (likelihood[t + 1] * beta))
      out[t] = _normalised(alpha[t] * beta)
    return out

  def causal_posteriors(self,
                        probabilities: np.ndarray,
                        lag: int = 0,
                        epoch_index: Optional[Sequence[int]] = None) -> np.ndarray:
    """Fixed-lag smoothing: epoch t's posterior given epochs up to t + lag only.

    What a live stager feeding `CausalSmoother` one epoch at a time gives; the last `lag`
    epochs of the night, released when it ends, see every epoch there is.

    Args:
      probabilities: [n, 5] per-epoch probabilities, in time order.
      lag: epochs after t that epoch t's posterior may read (0: filtering).
      epoch_index: the epochs' indices in the night (gaps allowed); default 0..n-1.

    Returns:
      float64 [n, 5].
    """
    steps = _steps(len(probabilities), epoch_index)
    live = CausalSmoother(self, lag)
    rows = [live.update(row, steps=int(g)) for row, g in zip(probabilities, steps)]
    rows.append(live.finish())
    return np.concatenate(rows) if rows else np.empty((0, stages.NUM_STAGES))


class CausalSmoother:
  """The smoother for a live night: fed one epoch at a time, it releases epoch t's
  posterior given epochs up to t + lag once epoch t + lag arrives.

    live = CausalSmoother(smoother, lag=2)
    for probabilities_row in night:          # [5] per-epoch probabilities, in order
      released = live.update(probabilities_row)   # [0 or 1, 5]: epoch t - 2's posterior
    tail = live.finish()                     # [<= 2, 5]: the last epochs'

  It holds the filtered distributions and likelihoods of the last `lag` epochs only
  (memory and work per epoch bounded by the lag, whatever the night's length).
  """

  def __init__(self, smoother: Smoother, lag: int = 0):
    if lag < 0:
      raise ValueError(f"lag must be >= 0, got {lag}")
    self.smoother = smoother
    self.lag = lag
    self._filtered = None  # the latest epoch's p(s_t | epochs up to t)
    self._window = []  # (filtered, likelihood, steps from the epoch before) of held epochs
    self.epochs_seen = 0

  def update(self, probabilities: np.ndarray, steps: int = 1) -> np.ndarray:
    """Takes the next epoch's per-epoch probabilities [5].

    Args:
      probabilities: [5] the per-epoch model's probabilities of the new epoch.
      steps: epochs since the previous one given (1: the next epoch; more: a gap).

    Returns:
      [1, 5] the posterior of the epoch `lag` epochs back, or [0, 5] while fewer than
      lag + 1 epochs have come.
    """
    if steps < 1:
      raise ValueError(f"steps must be >= 1, got {steps}")
    likelihood = self.smoother.likelihoods(np.asarray(probabilities)[None])[0]
    if self._filtered is None:
      predicted = self.smoother.priors
    else:
      predicted = self._filtered @ self.smoother._step(steps)  # pylint: disable=protected-access
    self._filtered = _normalised(predicted * likelihood)
    self._window.append((self._filtered, likelihood, steps))
    self.epochs_seen += 1
    if len(self._window) <= self.lag:
      return np.empty((0, stages.NUM_STAGES))
    out = self._smoothed(0)
    self._window.pop(0)
    return out[None]

  def finish(self) -> np.ndarray:
    """The posteriors of the epochs still held (the last `lag`), given every epoch; the
    smoother is then empty and may start a new night."""
    out = np.array([self._smoothed(i) for i in range(len(self._window))
                   ]).reshape(-1, stages.NUM_STAGES)
    self._window, self._filtered, self.epochs_seen = [], None, 0
    return out

  def _smoothed(self, i: int) -> np.ndarray:
    """Held epoch i's posterior given every held epoch after it (a backward pass)."""
    beta = np.ones(stages.NUM_STAGES)
    for _, likelihood, steps in reversed(self._window[i + 1:]):
      beta = _normalised(self.smoother._step(steps) @ (likelihood * beta))  # pylint: disable=protected-access
    return _normalised(self._window[i][0] * beta)


class CausalHead:
  """The causal sequence head for a live night, fed one epoch's features at a time.

    live = CausalHead(run, window=21, lag=2)   # run: features [T, F] -> outputs [T, 5]
    for features_row in night:                 # [F] each epoch's per-epoch features
      released = live.update(features_row)     # [0 or 1, 5]: epoch t - 2's probabilities
    tail = live.finish()                       # [<= 2, 5]: the last epochs'

  `run` is the causal head on a stretch of a night (`eegmobile.sequence_head`, or its
  exported TFLite file: `staging.context_stage.live_head`). Its output at the newest epoch
  reads that epoch and the window - 1 before it, so running it on the last `window`
  epochs gives what it gives on the whole night; it is epoch newest - lag's decision. At
  the end of the night the head is fed `lag` rows of zeros, as in training.
  """

  def __init__(self, run: Callable[[np.ndarray], np.ndarray], window: int, lag: int = 0):
    if window < 1 or lag < 0:
      raise ValueError(f"need window >= 1 and lag >= 0, got {window} and {lag}")
    self._run, self.window, self.lag = run, window, lag
    self._buffer = []  # the last `window` epochs' features
    self._seen = 0

  def update(self, features: np.ndarray) -> np.ndarray:
    """Takes the next epoch's features [F]; returns [1, 5] the probabilities of the epoch
    `lag` back, or [0, 5] while fewer than lag + 1 epochs have come."""
    self._buffer = (self._buffer + [np.asarray(features, np.float32)])[-self.window:]
    self._seen += 1
    if self._seen <= self.lag:
      return np.empty((0, stages.NUM_STAGES))
    return np.asarray(self._run(np.stack(self._buffer)))[-1:]

  def finish(self) -> np.ndarray:
    """The probabilities of the last `lag` epochs (zeros fed after them); the head is then
    empty and may start a new night."""
    out = [np.empty((0, stages.NUM_STAGES))]
    if self._buffer:
      zeros = np.zeros_like(self._buffer[-1])
      # In a night shorter than the lag the first zeros release nothing (update's rule).
      out += [self.update(zeros) for _ in range(self.lag)]
    self._buffer, self._seen = [], 0
    return np.concatenate(out)


def _normalised(v: np.ndarray) -> np.ndarray:
  return v / v.sum()


def _steps(n: int, epoch_index: Optional[Sequence[int]]) -> np.ndarray:
  """Steps from each epoch's predecessor (the first's is 1, unused)."""
  if epoch_index is None:
    return np.ones(n, np.int64)
  index = np.asarray(epoch_index, np.int64)
  if index.shape != (n,):
    raise ValueError(f"need {n} epoch indices, got shape {index.shape}")
  steps = np.diff(index, prepend=index[:1] - 1)
  if (steps < 1).any():
    raise ValueError("epoch indices must increase")
  return steps


def fit_smoother(hypnograms: Iterable[tuple[Sequence[int], Sequence[int]]],
                 *,
                 pseudocount: float = 1.0) -> Smoother:
  """Counts the transition matrix and class priors from scored nights.

  Args:
    hypnograms: (epoch indices, stage indices) per night: the scored epochs of one night
      in time order (gaps where epochs were unscored or dropped).
    pseudocount: added to every transition count (a transition never seen in training
      stays possible).

  Returns:
    The Smoother: transitions counted over pairs of consecutive epochs only (epoch index
    i followed by i + 1; a pair across a gap is not counted), priors from every epoch.

  Raises:
    ValueError: no epoch at all, or stages out of range.
  """
  n = stages.NUM_STAGES
  counts = np.full((n, n), float(pseudocount))
  totals = np.zeros(n)
  for epoch_index, labels in hypnograms:
    labels = np.asarray(labels, np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= n):
      raise ValueError(f"stage indices must be 0..{n - 1}")
    steps = _steps(len(labels), epoch_index)
    consecutive = np.flatnonzero(steps[1:] == 1) + 1
    np.add.at(counts, (labels[consecutive - 1], labels[consecutive]), 1)
    totals += np.bincount(labels, minlength=n)
  if not totals.sum():
    raise ValueError("no scored epoch to count")
  priors = (totals + pseudocount) / (totals + pseudocount).sum()
  return Smoother(counts / counts.sum(axis=1, keepdims=True), priors)


# ------------------------------------------------------------------ a stage after the model


@dataclasses.dataclass(frozen=True)
class ContextStage:
  """What runs after the per-epoch model, and how.

  Attributes:
    kind: "smoother" or "head".
    lag: None: a finished night (bidirectional: forward-backward, or the centred head);
      k >= 0: live (causal), epoch t decided from epochs up to t + k.
    smoother: the fitted smoother (kind "smoother").
    head: kind "head": features [n, F] of a whole night, in time order -> probabilities
      [n, 5] (the exported sequence head; for lag k its causal variant).
    head_lag: the lag the causal head was trained with (kind "head" with a lag).
  """
  kind: str
  lag: Optional[int] = None
  smoother: Optional[Smoother] = None
  head: Optional[Callable[[np.ndarray], np.ndarray]] = None
  head_lag: Optional[int] = None

  def __post_init__(self):
    if self.kind not in STAGE_KINDS[1:]:
      raise ValueError(f"context stage kind must be one of {STAGE_KINDS[1:]}, got {self.kind!r}")
    if self.lag is not None and self.lag < 0:
      raise ValueError(f"lag must be None or >= 0, got {self.lag}")
    if self.kind == "smoother" and self.smoother is None:
      raise ValueError("a smoother stage needs a fitted smoother")
    if self.kind == "head" and self.head is None:
      raise ValueError("a head stage needs the head")
    if self.kind == "head" and self.lag is not None and self.lag != self.head_lag:
      raise ValueError(f"the causal head was trained with lag {self.head_lag}; lag {self.lag} "
                       "was asked for (the smoother takes any lag)")

  @property
  def needs_features(self) -> bool:
    """Whether the stage reads the per-epoch model's features (not only probabilities)."""
    return self.kind == "head"

  def describe(self) -> dict:
    """{"kind", "lag", "mode"} for outputs and logs."""
    return describe(self.kind, self.lag)


def describe(kind: str, lag: Optional[int]) -> dict:
  """{"kind", "lag", "mode"} of a context stage, for outputs and logs (a live stager's too)."""
  mode = "finished night (bidirectional)" if lag is None else f"live (causal, lag {lag})"
  return {"kind": kind, "lag": lag, "mode": mode}


def as_probabilities(rows: np.ndarray) -> np.ndarray:
  """A context stage's outputs [n, 5] as staging writes them: float32, non-negative, each
  row renormalised (row by row: a row's bytes do not depend on the rows beside it)."""
  out = np.maximum(np.asarray(rows, np.float64), 0)
  return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def apply(stage: ContextStage,
          probabilities: np.ndarray,
          features: Optional[np.ndarray] = None) -> np.ndarray:
  """The context stage's probabilities for one night.

  Args:
    stage: what to apply.
    probabilities: [n, 5] the per-epoch model's probabilities, every epoch of the night in
      order.
    features: [n, F] the per-epoch model's features (kind "head").

  Returns:
    float32 [n, 5], rows summing to 1.

  Raises:
    ValueError: a head stage without features, or arrays of other lengths.
  """
  probabilities = np.asarray(probabilities)
  if stage.kind == "smoother":
    if stage.lag is None:
      out = stage.smoother.posteriors(probabilities)
    else:
      out = stage.smoother.causal_posteriors(probabilities, stage.lag)
  else:
    if features is None or len(features) != len(probabilities):
      raise ValueError("the sequence head needs the per-epoch features of every epoch")
    out = np.asarray(stage.head(np.asarray(features, np.float32)), np.float64)
  return as_probabilities(out)
