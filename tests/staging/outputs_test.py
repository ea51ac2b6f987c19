"""Tests for eegmobile.night_outputs: the TSV, EDF+ (read back by pyedflib, our parser,
`hypnogram.label_epochs` and MNE where installed), PNG and JSON of one staged night."""

import csv
import datetime
import glob
import json
import os

import numpy as np
import pyedflib
import pytest
from PIL import Image

from eegmobile import edf_reader
from eegmobile import hypnogram as hypnogram_lib
from eegmobile.staging import outputs
from eegmobile.staging import sleep_stats
from eegmobile import stages
from eegmobile.edf_reader import Annotation

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "sleep-edf")
REAL_HYPNOGRAMS = sorted(glob.glob(os.path.join(SHARED, "sleep-cassette", "*-Hypnogram.edf")))
W, N1, N2, N3, REM = range(5)
START = datetime.datetime(1989, 4, 24, 22, 13, 5)


def _probabilities(stage_indices, confidence=0.8):
  """Each epoch gives its stage `confidence` and shares the rest equally."""
  p = np.full((len(stage_indices), 5), (1 - confidence) / 4)
  p[np.arange(len(stage_indices)), stage_indices] = confidence
  return p


def _night(num_epochs=240, seed=0):
  """A random night of runs of stages, and noisy probabilities whose argmax is that stage."""
  rng = np.random.default_rng(seed)
  runs = rng.integers(0, 5, num_epochs // 8 + 1)
  stage_indices = np.repeat(runs, 8)[:num_epochs]
  p = rng.dirichlet(np.ones(5), num_epochs) * 0.5
  p[np.arange(num_epochs), stage_indices] += 0.5
  return np.arange(num_epochs) * 30.0, p, stage_indices


def _tsv_rows(path):
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  return list(csv.DictReader([l for l in lines if not l.startswith("#")], delimiter="\t")), lines


def test_tsv_has_a_header_and_one_row_per_epoch_and_nothing_else(tmp_path):
  path = str(tmp_path / "night.tsv")
  onsets, p = [0.0, 30.0, 90.0], _probabilities([W, N3, REM], 0.7)
  p[1] = [0.1, 0.2, 0.2, 0.25, 0.25]  # a tie: the first stage of the tie wins
  outputs.write_tsv(path, onsets, p)
  rows, lines = _tsv_rows(path)
  assert lines[0].split("\t") == [
      "onset", "duration", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_REM", "confidence"
  ]
  assert [r["onset"] for r in rows] == ["0", "30", "90"]
  assert [r["duration"] for r in rows] == ["30"] * 3
  assert [r["stage"] for r in rows] == ["W", "N3", "REM"]
  for row, expected in zip(rows, p):
    assert [float(row[f"p_{s}"]) for s in stages.STAGES] == pytest.approx(expected, abs=1e-6)
    assert float(row["confidence"]) == pytest.approx(expected.max(), abs=1e-6)
  assert len(lines) == 4 and not any(l.startswith("#") for l in lines)  # a plain table
  assert not os.path.exists(path + ".part")


def test_annotations_merge_runs_and_mark_unstaged_time():
  # Epochs at 60, 90, 150, 180, 210 s (the grid's 0, 30 and 120 s are not staged).
  onsets = np.array([2, 3, 5, 6, 7]) * 30.0
  annotations = outputs.hypnogram_annotations(onsets, [W, W, N3, REM, REM])
  assert annotations == [
      Annotation(0.0, 60.0, "Sleep stage ?"),
      Annotation(60.0, 60.0, "Sleep stage W"),
      Annotation(120.0, 30.0, "Sleep stage ?"),
      Annotation(150.0, 30.0, "Sleep stage 3"),
      Annotation(180.0, 60.0, "Sleep stage R"),
  ]
  every_stage = outputs.hypnogram_annotations(np.arange(5) * 30.0, [N1, N2, N3, REM, W])
  assert [a.description for a in every_stage
         ] == ["Sleep stage 1", "Sleep stage 2", "Sleep stage 3", "Sleep stage R", "Sleep stage W"]
  # Every name written is one that Sleep-EDF's mapping reads back as the same stage.
  for stage, name in outputs.ANNOTATION_OF_STAGE.items():
    assert stages.STAGE_OF_ANNOTATION[name] == stage


def _check_edf_reads_back(path, expected_annotations, onsets, stage_indices, trailing_seconds):
  for use_pyedflib in (True, False):
    assert edf_reader.read_annotations(path, use_pyedflib=use_pyedflib) == expected_annotations
  epochs = hypnogram_lib.label_epochs(edf_reader.read_annotations(path),
                                      psg_duration_s=onsets[-1] + 30 + trailing_seconds,
                                      wake_edge_minutes=None,
                                      source=path)
  np.testing.assert_array_equal(epochs.labels, stage_indices)
  np.testing.assert_array_equal(epochs.epoch_indices, np.round(onsets / 30).astype(int))


def test_edf_hypnogram_reads_back_with_pyedflib_and_our_parser(tmp_path):
  path = str(tmp_path / "night.hypnogram.edf")
  onsets, p, stage_indices = _night()
  keep = np.r_[2:100, 103:240]  # unstaged epochs at the start and in the middle
  onsets, p, stage_indices = onsets[keep], p[keep], stage_indices[keep]
  outputs.write_hypnogram_edf(path, onsets, p, start=START, record="SC4001 night one")
  expected = outputs.hypnogram_annotations(onsets, stage_indices)
  assert len(expected) < len(onsets)  # runs were merged
  _check_edf_reads_back(path, expected, onsets, stage_indices, 12.5)
  with pyedflib.EdfReader(path) as reader:
    assert reader.getStartdatetime() == START
    onsets_read, durations, texts = reader.readAnnotations()
    assert list(texts) == [a.description for a in expected]
    assert list(durations) == pytest.approx([a.duration for a in expected])
  header = edf_reader.read_header(path)
  assert header.recording == "Startdate 24-APR-1989 X X eegmobile SC4001_night_one"
  assert header.reserved == "EDF+C"


def test_edf_hypnogram_without_start_uses_edf_placeholders(tmp_path):
  path = str(tmp_path / "night.hypnogram.edf")
  onsets, p, stage_indices = _night(40)
  outputs.write_hypnogram_edf(path, onsets, p)
  header = edf_reader.read_header(path)
  assert (header.startdate, header.starttime) == ("01.01.85", "00.00.00")
  assert header.recording == "Startdate X X X eegmobile"
  _check_edf_reads_back(path, outputs.hypnogram_annotations(onsets, stage_indices), onsets,
                        stage_indices, 0.0)


def test_mne_reads_the_edf_hypnogram(tmp_path):
  mne = pytest.importorskip("mne")
  path = str(tmp_path / "night.hypnogram.edf")
  onsets, p, stage_indices = _night(60)
  outputs.write_hypnogram_edf(path, onsets, p, start=START)
  expected = outputs.hypnogram_annotations(onsets, stage_indices)
  read = mne.read_annotations(path)
  assert list(read.description) == [a.description for a in expected]
  assert list(read.onset) == pytest.approx([a.onset for a in expected])
  assert list(read.duration) == pytest.approx([a.duration for a in expected])


@pytest.mark.skipif(not REAL_HYPNOGRAMS, reason="../shared/sleep-edf not present")
def test_real_nights_stages_survive_the_round_trip(tmp_path):
  # Stage each real Sleep-EDF-20 night perfectly, write it, read it back: the same epochs
  # with the same stages (S4 comes back as N3; "?" and "Movement time" stay unstaged).
  path = str(tmp_path / "real.hypnogram.edf")
  for real_path in REAL_HYPNOGRAMS:
    real = edf_reader.read_annotations(real_path)
    duration = hypnogram_lib.scored_duration(real)
    scored = hypnogram_lib.label_epochs(real, psg_duration_s=duration, wake_edge_minutes=None)
    outputs.write_hypnogram_edf(path, scored.epoch_indices * 30.0, _probabilities(scored.labels))
    back = hypnogram_lib.label_epochs(edf_reader.read_annotations(path),
                                      psg_duration_s=duration,
                                      wake_edge_minutes=None)
    np.testing.assert_array_equal(back.labels, scored.labels, err_msg=real_path)
    np.testing.assert_array_equal(back.epoch_indices, scored.epoch_indices, err_msg=real_path)


def _red_pixels(path):
  """Pixels of the REM colour (the hypnogram's highlight and the hypnodensity's REM band)."""
  rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
  red = np.array([int(outputs.STAGE_COLORS[REM][i:i + 2], 16) for i in (1, 3, 5)])
  return np.all(np.abs(rgb - red) < 8, axis=-1)


def test_png_is_written_and_rem_is_highlighted(tmp_path):
  with_rem, without_rem = str(tmp_path / "rem.png"), str(tmp_path / "no_rem.png")
  stage_indices = np.repeat([W, N1, N2, N3, REM, N2, W], 20)
  onsets = np.arange(len(stage_indices)) * 30.0
  outputs.plot_night(with_rem, onsets, _probabilities(stage_indices, 1.0), title="night")
  no_rem = np.where(stage_indices == REM, N2, stage_indices)
  outputs.plot_night(without_rem, onsets, _probabilities(no_rem, 1.0), start=START)
  for path in (with_rem, without_rem):
    assert os.path.getsize(path) > 10_000
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
      assert image.format == "PNG" and image.size == (1100, 550)
    assert not os.path.exists(path + ".part")
  red, red_without = _red_pixels(with_rem), _red_pixels(without_rem)
  half = red.shape[0] // 2  # the hypnogram is the top half, the hypnodensity the bottom
  assert red[:half].sum() > 1000 and red[half:].sum() > 10_000  # highlight and REM band
  # Without REM: no highlight, and only the legend's small REM swatch.
  assert red_without[:half].sum() == 0 and red_without.sum() < 500


def test_statistics_json_is_canonical_and_refuses_nan(tmp_path):
  path = str(tmp_path / "stats.json")
  statistics = sleep_stats.sleep_statistics([W, N1, N2, REM, W])
  outputs.write_statistics(path, statistics)
  with open(path, encoding="utf-8") as f:
    text = f.read()
  assert text == json.dumps(statistics, indent=1, sort_keys=True) + "\n"
  assert json.loads(text) == statistics
  with pytest.raises(ValueError, match="bad.json.*not canonical JSON"):
    outputs.write_statistics(str(tmp_path / "bad.json"), {"sol_min": float("nan")})
  assert not os.path.exists(tmp_path / "bad.json")


def test_write_night_writes_all_four_files(tmp_path):
  onsets, p, stage_indices = _night()
  keep = np.r_[0:50, 52:240]
  out = outputs.write_night(str(tmp_path),
                            "SC4001E0",
                            onsets[keep],
                            p[keep],
                            trailing_seconds=7.0,
                            start=START)
  names = sorted(os.listdir(tmp_path))
  assert names == [
      "SC4001E0.hypnogram.edf", "SC4001E0.hypnogram.png", "SC4001E0.sleep_stats.json",
      "SC4001E0.stages.tsv"
  ]
  hypnogram = stage_indices.copy()
  hypnogram[50:52] = sleep_stats.UNSCORED
  assert out["statistics"] == sleep_stats.sleep_statistics(hypnogram)
  assert out["statistics"]["unscored_min"] == 1.0
  with open(out["json"], encoding="utf-8") as f:
    written = json.load(f)
  assert written.pop("trailing_partial_epoch") == {"onset": 7200.0, "duration": 7.0}
  assert written == out["statistics"]
  rows, lines = _tsv_rows(out["tsv"])
  assert len(rows) == len(keep) and len(lines) == len(keep) + 1  # the table and nothing else


def test_a_context_stage_adds_the_per_epoch_column_group_and_names_itself(tmp_path):
  onsets, p, stage_indices = _night(40)
  per_epoch = np.roll(p, 1, axis=1)  # another model's view of the same epochs
  context = {"kind": "smoother", "lag": None, "mode": "finished night (bidirectional)"}
  os.makedirs(tmp_path / "with")
  out = outputs.write_night(str(tmp_path / "with"),
                            "night",
                            onsets,
                            p,
                            per_epoch_probabilities=per_epoch,
                            context=context)
  rows, lines = _tsv_rows(out["tsv"])
  assert lines[0].split("\t") == list(outputs.TSV_COLUMNS + outputs.PER_EPOCH_COLUMNS)
  assert [r["stage"] for r in rows] == [stages.STAGES[s] for s in stage_indices]  # the context's
  assert [r["per_epoch_stage"] for r in rows] == [stages.STAGES[s] for s in per_epoch.argmax(1)]
  for row, expected in zip(rows, per_epoch):
    assert [float(row[f"per_epoch_p_{s}"]) for s in stages.STAGES] == pytest.approx(expected,
                                                                                    abs=1e-6)
  with open(out["json"], encoding="utf-8") as f:
    assert json.load(f)["context"] == context
  # Without: the same files as before context stages existed.
  os.makedirs(tmp_path / "without")
  plain = outputs.write_night(str(tmp_path / "without"), "night", onsets, p)
  plain_rows, plain_lines = _tsv_rows(plain["tsv"])
  assert plain_lines[0].split("\t") == list(outputs.TSV_COLUMNS)
  assert [l.split("\t")[:9] for l in lines] == [l.split("\t") for l in plain_lines]
  with open(plain["json"], encoding="utf-8") as f:
    assert "context" not in json.load(f)


@pytest.mark.parametrize("onsets,p,message", [
    ([], np.zeros((0, 5)), "non-empty"),
    ([0.0, 30.0], _probabilities([W]), r"shape \(2, 5\)"),
    ([0.0, 30.0], np.ones((2, 4)) / 4, r"shape \(2, 5\)"),
    ([30.0, 0.0], _probabilities([W, N1]), "increasing"),
    ([-30.0, 0.0], _probabilities([W, N1]), "non-negative"),
    ([0.0, 45.0], _probabilities([W, N1]), "multiples of the 30 s"),
    ([0.0, 30.0], [[0.5, 0.5, 0.5, 0, 0], [1, 0, 0, 0, 0]], "epoch 0 .* sum to 1.5"),
    ([0.0, 30.0], [[1, 0, 0, 0, 0], [np.nan, 0, 0, 0, 1]], "finite"),
    ([0.0, 30.0], [[1.5, -0.5, 0, 0, 0], [1, 0, 0, 0, 0]], "non-negative"),
])
def test_bad_nights_are_refused_naming_the_file(tmp_path, onsets, p, message):
  for write, suffix in ((outputs.write_tsv, "tsv"), (outputs.write_hypnogram_edf, "edf"),
                        (outputs.plot_night, "png")):
    path = str(tmp_path / f"night.{suffix}")
    with pytest.raises(ValueError, match=f"night.{suffix}: .*{message}"):
      write(path, onsets, p)
    assert not os.listdir(tmp_path)


def test_a_trailing_part_of_an_epoch_or_more_is_refused(tmp_path):
  with pytest.raises(ValueError, match="night.stages.tsv: .*trailing_seconds"):
    outputs.write_night(str(tmp_path), "night", [0.0], _probabilities([W]), trailing_seconds=30.0)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
  onsets, p, _ = _night(20)

  def fail(*_):
    raise OSError("disk full")

  monkeypatch.setattr(outputs.os, "replace", fail)
  with pytest.raises(OSError, match="disk full"):
    outputs.plot_night(str(tmp_path / "night.png"), onsets, p)
  with pytest.raises(OSError, match="disk full"):
    outputs.write_tsv(str(tmp_path / "night.tsv"), onsets, p)
  assert not os.listdir(tmp_path)
  with pytest.raises(OSError, match="no_such_dir"):
    outputs.write_statistics(str(tmp_path / "no_such_dir" / "s.json"), {})
