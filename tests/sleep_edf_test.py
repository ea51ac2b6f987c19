"""Tests for eegmobile.sleep_edf: names, subsets and pairing (real names from ../shared)."""

import os

import pytest

from eegmobile import errors
from eegmobile import sleep_edf

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf")


def test_parse_name():
  name = sleep_edf.parse_name("/x/sleep-cassette/SC4132EC-Hypnogram.edf")
  assert (name.study, name.subject, name.night, name.kind) == ("SC", 13, 2, "Hypnogram")
  assert name.record == "SC4132E0"
  assert name.subject_id == "SC13"
  telemetry = sleep_edf.parse_name("ST7011J0-PSG.edf")
  assert (telemetry.study, telemetry.subject, telemetry.night) == ("ST", 1, 1)
  assert sleep_edf.parse_name("README.md") is None
  assert sleep_edf.parse_name("SC4001E0-PSG.edf.part") is None


@pytest.mark.parametrize("subset, study, subject, expected", [("sleep-edf-20", "SC", 19, True),
                                                              ("sleep-edf-20", "SC", 20, False),
                                                              ("sleep-edf-78", "SC", 82, True),
                                                              ("sleep-edf-78", "ST", 1, False),
                                                              ("sleep-edf-st", "ST", 1, True),
                                                              ("all", "ST", 1, True),
                                                              ("all", "SC", 82, True)])
def test_subsets(subset, study, subject, expected):
  prefix = "SC4" if study == "SC" else "ST7"
  name = sleep_edf.parse_name(f"{prefix}{subject:02d}1E0-PSG.edf")
  assert sleep_edf.in_subset(name, subset) is expected


def test_unknown_subset_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown subset 'sleep-edf-2'"):
    sleep_edf.in_subset(sleep_edf.parse_name("SC4001E0-PSG.edf"), "sleep-edf-2")


def test_pairing_reports_orphans_on_both_sides():
  paths = [
      "d/SC4001E0-PSG.edf", "d/SC4001EC-Hypnogram.edf", "d/SC4002E0-PSG.edf",
      "d/SC4011EH-Hypnogram.edf", "d/SC4201E0-PSG.edf"
  ]
  recordings, problems = sleep_edf.pair_files(paths, "sleep-edf-20")
  assert [r.record for r in recordings] == ["SC4001E0"]
  assert recordings[0].hypnogram_path == "d/SC4001EC-Hypnogram.edf"
  messages = sorted(str(p) for p in problems)
  assert all(isinstance(p, errors.PairingError) for p in problems)
  assert messages == [
      "d/SC4002E0-PSG.edf: PSG without a hypnogram (expected a file named "
      "SC4002E?-Hypnogram.edf)",
      "d/SC4011EH-Hypnogram.edf: hypnogram without a PSG (expected a file "
      "named SC4011E0-PSG.edf beside it)"
  ]


def test_real_sleep_edf_20_names():
  records = os.path.join(SHARED, "RECORDS")
  if not os.path.exists(records):
    pytest.skip("../shared/sleep-edf not present")
  hypnograms = os.listdir(os.path.join(SHARED, "sleep-cassette"))
  psgs = [l.strip() for l in open(records) if l.startswith("sleep-cassette/SC4")]
  recordings, problems = sleep_edf.pair_files(psgs + hypnograms, "sleep-edf-20")
  assert len(recordings) == 39 and not problems
  assert len({r.subject_id for r in recordings}) == 20
  assert "SC4132E0" not in {r.record for r in recordings}
  all_sc, _ = sleep_edf.pair_files(psgs, "sleep-edf-78")
  assert not all_sc  # PSG names alone pair with nothing


def test_find_recordings_missing_dir():
  with pytest.raises(FileNotFoundError, match="does not exist"):
    sleep_edf.find_recordings("/nonexistent/sleep-edf", "sleep-edf-20")
