"""Tests for eegmobile.folds."""

import json

import pytest

from eegmobile import folds

SUBJECTS = [f"SC{i:02d}" for i in range(20)]


def test_twenty_folds_test_one_subject_each_in_order():
  groups = folds.subject_folds(SUBJECTS[::-1], 20)  # input order is irrelevant
  assert groups == [(s,) for s in SUBJECTS]


@pytest.mark.parametrize("num_folds", [2, 5, 20])
def test_every_fold_is_disjoint_and_every_subject_is_tested_once(num_folds):
  tested = []
  for fold in range(num_folds):
    split = folds.split(SUBJECTS, fold, num_folds)
    train, val, test = set(split.train), set(split.validation), set(split.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(SUBJECTS)
    assert len(val) == 1
    tested += split.test
  assert sorted(tested) == SUBJECTS


def test_validation_is_the_next_folds_subject():
  assert folds.split(SUBJECTS, 3, 20).validation == ("SC04",)
  assert folds.split(SUBJECTS, 19, 20).validation == ("SC00",)


def test_larger_sets_group_contiguously():
  groups = folds.subject_folds([f"SC{i:02d}" for i in range(78)], 10)
  assert [len(g) for g in groups] == [8] * 8 + [7] * 2
  assert groups[0][0] == "SC00" and groups[-1][-1] == "SC77"


def test_fold_map_is_stable(tmp_path):
  a, b = tmp_path / "a.json", tmp_path / "b.json"
  folds.write_fold_map(str(a), SUBJECTS, 20)
  folds.write_fold_map(str(b), list(reversed(SUBJECTS)), 20)
  assert a.read_text() == b.read_text()
  assert json.loads(a.read_text())["fold_of_subject"]["SC07"] == 7


@pytest.mark.parametrize("fold, num_folds, message", [(20, 20, r"fold must be in \[0, 20\)"),
                                                      (-1, 20, "fold must be"),
                                                      (0, 21, "num_folds <= 20"),
                                                      (0, 1, "2 <= num_folds")])
def test_bad_arguments(fold, num_folds, message):
  with pytest.raises(ValueError, match=message):
    folds.split(SUBJECTS, fold, num_folds)
