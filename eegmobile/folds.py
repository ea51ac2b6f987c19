"""Subject-wise K-fold cross-validation: no subject is ever on two sides of a fold.

Subjects are sorted and split into `num_folds` contiguous groups (`numpy.array_split`),
so with as many folds as subjects (Sleep-EDF-20: 20 folds) fold i tests the i-th subject;
for larger sets (Sleep-EDF-78 with 10 or 20 folds) each fold tests a contiguous block of
subject ids. Validation subjects come from the following folds (wrapping around), never
from the test fold, so the test subject is never used to choose anything.
"""

import dataclasses
import json
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class FoldSplit:
  fold: int
  num_folds: int
  train: tuple[str, ...]
  validation: tuple[str, ...]
  test: tuple[str, ...]


def subject_folds(subject_ids: Sequence[str], num_folds: int) -> list[tuple[str, ...]]:
  """Sorted subjects in num_folds contiguous groups.

  Raises:
    ValueError: fewer subjects than folds, fewer than 2 folds, or duplicate ids.
  """
  subjects = sorted(subject_ids)
  if len(set(subjects)) != len(subjects):
    raise ValueError("duplicate subject ids")
  if not 2 <= num_folds <= len(subjects):
    raise ValueError(f"need 2 <= num_folds <= {len(subjects)} subjects, got {num_folds}")
  return [tuple(group) for group in np.array_split(np.array(subjects, dtype=object), num_folds)]


def split(subject_ids: Sequence[str],
          fold: int,
          num_folds: int,
          *,
          num_validation_subjects: int = 1) -> FoldSplit:
  """Train / validation / test subjects of one fold.

  Raises:
    ValueError: fold out of range, or too few subjects left to train on.
  """
  folds = subject_folds(subject_ids, num_folds)
  if not 0 <= fold < num_folds:
    raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
  rest = [s for group in folds[fold + 1:] + folds[:fold] for s in group]
  if len(rest) <= num_validation_subjects:
    raise ValueError(f"{len(rest)} non-test subjects cannot give {num_validation_subjects} "
                     "validation subject(s) and a training set")
  return FoldSplit(fold=fold,
                   num_folds=num_folds,
                   train=tuple(sorted(rest[num_validation_subjects:])),
                   validation=tuple(sorted(rest[:num_validation_subjects])),
                   test=folds[fold])


def fold_map(subject_ids: Sequence[str], num_folds: int) -> dict[str, int]:
  """{subject: the fold that tests it}."""
  return {s: i for i, group in enumerate(subject_folds(subject_ids, num_folds)) for s in group}


def write_fold_map(path: str, subject_ids: Sequence[str], num_folds: int) -> None:
  """Writes the subject -> fold map as JSON (stable: same subjects, same file)."""
  with open(path, "w") as f:
    json.dump({
        "num_folds": num_folds,
        "fold_of_subject": fold_map(subject_ids, num_folds)
    },
              f,
              indent=1,
              sort_keys=True)
