"""Tests for eegmobile.folds."""

import dataclasses
import json
import random

import pytest

from eegmobile import folds

SUBJECTS = [f"SC{i:02d}" for i in range(20)]
# Sleep-EDF-78's SC subjects: 00..82 without 39, 68, 69, 78 and 79.
SUBJECTS_78 = [f"SC{i:02d}" for i in range(83) if i not in (39, 68, 69, 78, 79)]


def test_twenty_folds_test_one_subject_each_in_order():
  groups = folds.subject_folds(SUBJECTS[::-1], 20)  # input order is irrelevant
  assert groups == [(s,) for s in SUBJECTS]


@pytest.mark.parametrize("subjects, num_folds, num_validation", [(SUBJECTS, 2, 1), (SUBJECTS, 5, 1),
                                                                 (SUBJECTS, 20, 1),
                                                                 (SUBJECTS, 20, 3),
                                                                 (SUBJECTS_78, 10, 2),
                                                                 (SUBJECTS_78, 20, 1),
                                                                 (SUBJECTS, 20, 0)])
def test_every_fold_is_disjoint_and_every_subject_is_tested_once(subjects, num_folds,
                                                                 num_validation):
  tested = []
  for fold in range(num_folds):
    split = folds.split(subjects, fold, num_folds, num_validation_subjects=num_validation)
    train, val, test = set(split.train), set(split.validation), set(split.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(subjects)
    assert len(val) == num_validation and train
    tested += split.test
  assert sorted(tested) == sorted(subjects)


def test_validation_is_the_next_folds_subject():
  assert folds.split(SUBJECTS, 3, 20).validation == ("SC04",)
  assert folds.split(SUBJECTS, 19, 20).validation == ("SC00",)  # wraps around
  assert folds.split(SUBJECTS, 18, 20,
                     num_validation_subjects=3).validation == ("SC00", "SC01", "SC19")


def test_validation_never_depends_on_the_test_subject():
  """Only the fold's position chooses validation: rename the test subject, nothing moves."""
  split = folds.split(SUBJECTS, 7, 20, num_validation_subjects=2)
  renamed = [("SC07x" if s == "SC07" else s) for s in SUBJECTS]
  other = folds.split(renamed, 7, 20, num_validation_subjects=2)
  assert (other.train, other.validation, other.test) == (split.train, split.validation, ("SC07x",))


def test_larger_sets_group_contiguously():
  groups = folds.subject_folds([f"SC{i:02d}" for i in range(78)], 10)
  assert [len(g) for g in groups] == [8] * 8 + [7] * 2
  assert groups[0][0] == "SC00" and groups[-1][-1] == "SC77"
  assert [s for g in groups for s in g] == [f"SC{i:02d}" for i in range(78)]


def test_same_subjects_in_any_order_give_the_same_splits():
  shuffled = SUBJECTS_78[:]
  random.Random(1).shuffle(shuffled)
  for fold in range(10):
    assert folds.split(shuffled, fold, 10) == folds.split(SUBJECTS_78, fold, 10)
  assert folds.split(tuple(SUBJECTS), 4, 20) == folds.split(SUBJECTS, 4, 20)


def test_split_is_frozen():
  split = folds.split(SUBJECTS, 0, 20)
  with pytest.raises(dataclasses.FrozenInstanceError):
    split.test = ("SC01",)
  assert split.fold == 0 and split.num_folds == 20 and split.train == tuple(SUBJECTS[2:])


def test_fold_map_is_stable(tmp_path):
  a, b = tmp_path / "a.json", tmp_path / "b.json"
  folds.write_fold_map(str(a), SUBJECTS, 20)
  folds.write_fold_map(str(b), list(reversed(SUBJECTS)), 20)
  assert a.read_text() == b.read_text()
  content = json.loads(a.read_text())
  assert content["num_folds"] == 20 and content["fold_of_subject"]["SC07"] == 7
  assert content["fold_of_subject"] == folds.fold_map(SUBJECTS, 20)
  folds.write_fold_map(str(a), SUBJECTS, 20)  # the same map again: left as is, nothing else
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_a_different_fold_map_is_refused_not_rewritten(tmp_path):
  path = tmp_path / "folds.json"
  folds.write_fold_map(str(path), SUBJECTS, 20)
  before = path.read_text()
  with pytest.raises(ValueError, match="folds.json: holds another subject -> fold map"):
    folds.write_fold_map(str(path), SUBJECTS, 10)
  with pytest.raises(ValueError, match="never rewritten"):
    folds.write_fold_map(str(path), SUBJECTS[:19], 19)
  assert path.read_text() == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ["folds.json"]


@pytest.mark.parametrize("fold, num_folds, message", [(20, 20, r"fold must be in \[0, 20\)"),
                                                      (-1, 20, "fold must be"),
                                                      (0, 21, "num_folds <= 20"),
                                                      (0, 1, "2 <= num_folds")])
def test_bad_fold_arguments(fold, num_folds, message):
  with pytest.raises(ValueError, match=message):
    folds.split(SUBJECTS, fold, num_folds)


def test_bad_subjects_and_validation_counts():
  with pytest.raises(ValueError, match=r"duplicate subject ids: \['SC01'\]"):
    folds.subject_folds(["SC00", "SC01", "SC01"], 2)
  with pytest.raises(ValueError, match="num_validation_subjects must be >= 0"):
    folds.split(SUBJECTS, 0, 20, num_validation_subjects=-1)
  with pytest.raises(ValueError, match="cannot give 19 validation"):
    folds.split(SUBJECTS, 0, 20, num_validation_subjects=19)
