"""Subject-wise K-fold cross-validation: no subject is ever on two sides of a fold.

Subjects are sorted (as strings) and split into `num_folds` contiguous groups, the first
`len % num_folds` groups one subject larger (`numpy.array_split`). With as many folds as
subjects (Sleep-EDF-20: 20 folds) fold i tests the i-th subject; for larger sets
(Sleep-EDF-78 with 10 or 20 folds) each fold tests a contiguous block of subject ids.
Validation subjects are the first subjects of the following folds (wrapping around), never
of the test fold, so the test subject is never used to choose anything. Everything depends
only on the set of subject ids: not on their order, the machine or the run.
"""

import dataclasses
import json
import os
import tempfile
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class FoldSplit:
  """The subjects of one fold, each tuple sorted.

  Attributes:
    fold: fold index, 0-based.
    num_folds: number of folds.
    train: subjects to train on.
    validation: subjects to monitor training on (may be empty).
    test: subjects to score the fold on.
  """
  fold: int
  num_folds: int
  train: tuple[str, ...]
  validation: tuple[str, ...]
  test: tuple[str, ...]


def subject_folds(subject_ids: Sequence[str], num_folds: int) -> list[tuple[str, ...]]:
  """The test subjects of every fold: sorted subjects in num_folds contiguous groups.

  Args:
    subject_ids: every subject of the dataset, in any order.
    num_folds: number of folds (2 .. number of subjects).

  Returns:
    num_folds tuples of subject ids; fold i tests the i-th tuple.

  Raises:
    ValueError: duplicate ids, or num_folds outside 2 .. number of subjects.
  """
  subjects = sorted(subject_ids)
  if len(set(subjects)) != len(subjects):
    repeated = sorted({s for s in subjects if subjects.count(s) > 1})
    raise ValueError(f"duplicate subject ids: {repeated}")
  if not 2 <= num_folds <= len(subjects):
    raise ValueError(f"need 2 <= num_folds <= {len(subjects)} subjects, got {num_folds}")
  return [tuple(group) for group in np.array_split(np.array(subjects, dtype=object), num_folds)]


def split(subject_ids: Sequence[str],
          fold: int,
          num_folds: int,
          *,
          num_validation_subjects: int = 1) -> FoldSplit:
  """Train / validation / test subjects of one fold.

  Args:
    subject_ids: every subject of the dataset, in any order.
    fold: which fold, 0 .. num_folds - 1.
    num_folds: number of folds.
    num_validation_subjects: subjects taken from the following folds for validation
      (0: none).

  Returns:
    The fold's FoldSplit.

  Raises:
    ValueError: bad fold or num_folds (see subject_folds), a negative
      num_validation_subjects, or no subject left to train on.
  """
  folds = subject_folds(subject_ids, num_folds)
  if not 0 <= fold < num_folds:
    raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
  if num_validation_subjects < 0:
    raise ValueError(f"num_validation_subjects must be >= 0, got {num_validation_subjects}")
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
  """Writes the subject -> fold map as JSON once: {"num_folds", "fold_of_subject"}.

  The same subjects give the same bytes. The file is created atomically, and only if it is
  absent: folds started in parallel can all call this while a report reads the file. A map
  already there is never rewritten: the same map is left as it is, a different one refused.

  Args:
    path: destination file (its directory must exist).
    subject_ids: every subject of the dataset, in any order.
    num_folds: number of folds.

  Raises:
    ValueError: `path` holds a different map (another build or number of folds).
  """
  text = json.dumps({
      "num_folds": num_folds,
      "fold_of_subject": fold_map(subject_ids, num_folds)
  },
                    indent=1,
                    sort_keys=True) + "\n"
  if not os.path.exists(path):
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    try:
      with os.fdopen(handle, "w") as f:
        f.write(text)
      os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the map from other users
      os.link(temporary, path)  # fails if another process created it meanwhile: compared below
    except FileExistsError:
      pass
    finally:
      os.remove(temporary)
  with open(path) as f:
    existing = f.read()
  if existing != text:
    raise ValueError(f"{path}: holds another subject -> fold map than this build's "
                     f"({num_folds} folds of {len(subject_ids)} subjects); it is never "
                     "rewritten: use another workdir or start over")
