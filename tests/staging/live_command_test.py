"""End-to-end tests of `python -m eegmobile.stage --stream ... | --board ...`: an LSL stream on
loopback (mne-lsl's player replaying an EDF, and a faster-than-real-time outlet for the
kill-then-restart case) and BrainFlow's synthetic and playback boards, each through the
command, its outputs compared with offline staging of the same samples.

The player and the boards run in real time, so those tests are slow (CI runs them: `.ci/run`).
Every stream and process a test starts is stopped whatever its outcome.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from eegmobile import context
from eegmobile import edf_reader
from eegmobile.staging import context_stage
from eegmobile.staging import outputs
from eegmobile.staging import runtimes
from eegmobile.staging import stage_lib
from tests import edf_files
from tests import lsl_outlet
from tests.staging.live_test import smoother_export  # pylint: disable=unused-import
from tests.staging.sources_test import write_playback
from tests.staging.stream_test import _signal

pytest.importorskip("mne_lsl", reason="the stream extra (pip install 'eegmobile[stream]')")
pytest.importorskip("brainflow", reason="the stream extra (pip install 'eegmobile[stream]')")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(export_dir, out, *args):  # pylint: disable=redefined-outer-name
  return [
      sys.executable, "-m", "eegmobile.stage", "--model", export_dir, "--runtime", "litert",
      "--threads", "1", "--batch_size", "4", "--output_dir",
      str(out), *args
  ]


def _env():
  lsl_outlet.quiet_liblsl()
  return {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}


def _start(command):
  return subprocess.Popen(command,
                          cwd=ROOT,
                          env=_env(),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True)


def _finish(process, timeout=120):
  try:
    out, _ = process.communicate(timeout=timeout)
  finally:
    if process.poll() is None:
      process.kill()
      process.communicate()
  return process.returncode, out


def _state(out, record):
  path = out / f"{record}.stream.json"
  return json.loads(path.read_text()) if path.exists() else None


def _wait_for_epochs(out, record, count, process, timeout=120):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    state = _state(out, record)
    if state and len(state["epochs"]) >= count:
      return state
    assert process.poll() is None, process.communicate()[0]
    time.sleep(0.05)
  raise AssertionError(f"{count} epochs not staged within {timeout} s")


def _offline_tsv(path, model, samples, rate, scale):
  """Offline staging (stage_lib.score_night) of the same samples, as a TSV at path."""
  microvolts = np.asarray(samples, np.float64) * scale
  signal = (edf_reader.resample(microvolts, rate, 100.0)
            if rate != 100 else microvolts.astype(np.float32))
  n = len(signal) // 3000
  config = stage_lib.StageConfig(batch_size=4)
  night = stage_lib.Night(path="same samples",
                          signal=signal,
                          fs=100.0,
                          label="x",
                          original_fs=rate,
                          num_epochs=n,
                          trailing_seconds=0.0,
                          start=None)
  spec = stage_lib.check_preprocessing(model, config)
  probabilities = stage_lib.score_night(night, model, spec, config)
  outputs.write_tsv(str(path), np.arange(n) * 30.0, probabilities)
  return probabilities


@pytest.fixture(scope="module", name="model")
def _model(export_dir):  # pylint: disable=redefined-outer-name
  return runtimes.load(export_dir, runtime="litert", threads=1)


def test_arguments_that_do_not_make_a_live_night_are_refused(export_dir, tmp_path):  # pylint: disable=redefined-outer-name
  for args, message in ((["--stream", "lsl:a", "--board",
                          "synthetic"], "not both"), (["--stream", "a"], "expected lsl:NAME"),
                        (["--stream", "lsl:a", "night.edf"],
                         "not files"), (["--board_param", "serial_port=x", "--stream",
                                         "lsl:a"], "--board_param goes with --board"),
                        (["--board", "muse_z"], "no BrainFlow board 'muse_z'"),
                        (["--board", "synthetic", "--context", "smoother"],
                         "context smoother asked for, but the export holds no context stage")):
    code, out = _finish(_start(_command(export_dir, tmp_path, *args)))
    assert code == 2 and message in out, (args, out)


def test_without_the_stream_extra_the_command_says_how_to_install_it(export_dir, tmp_path):  # pylint: disable=redefined-outer-name
  shadow = tmp_path / "shadow" / "mne_lsl"
  shadow.mkdir(parents=True)
  (shadow / "__init__.py").write_text("raise ImportError('No module named mne_lsl')\n")
  env = {**_env(), "PYTHONPATH": f"{tmp_path / 'shadow'}{os.pathsep}{ROOT}"}
  result = subprocess.run(_command(export_dir, tmp_path / "out", "--stream", "lsl:night"),
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=120,
                          check=False)
  assert result.returncode == 2
  assert "needs mne-lsl: pip install 'eegmobile[stream]'" in result.stderr


@pytest.mark.slow
def test_a_killed_night_continues_when_started_again_and_ctrl_c_finishes_it(export_dir, tmp_path):  # pylint: disable=redefined-outer-name
  name = lsl_outlet.unique_name()
  samples = _signal(100, 900)
  out = tmp_path / "staged"
  command = _command(export_dir, out, "--stream", f"lsl:{name}", "--record", "night",
                     "--stall_seconds", "30")
  with lsl_outlet.FastOutlet(name, samples, 100, ["EEG Fpz-Cz"], speed=10):
    first = _start(command)
    try:
      _wait_for_epochs(out, "night", 3, first)
    finally:
      first.kill()  # SIGKILL: no chance to finish anything
      first.communicate()
    # What a kill leaves is a consistent night up to some epoch: every file whole.
    killed = _state(out, "night")
    scored = [e for e in killed["epochs"] if e["p"] is not None]
    tsv = (out / "night.stages.tsv").read_text().splitlines()
    assert len(tsv) - 1 >= len(scored) >= 3 and not killed["finished"]
    json.loads((out / "night.sleep_stats.json").read_text())
    edf_reader.read_annotations(str(out / "night.hypnogram.edf"))
    time.sleep(2)  # the recording goes on meanwhile
    second = _start(command)
    try:
      _wait_for_epochs(out, "night", len(killed["epochs"]) + 4, second)
      second.send_signal(signal.SIGINT)  # Ctrl-C
      code, text = _finish(second)
    finally:
      if second.poll() is None:
        second.kill()
  assert code == 0, text
  assert f"continuing the night from epoch {len(killed['epochs'])}" in text
  assert "ended: stopped (Ctrl-C or SIGTERM)" in text
  final = _state(out, "night")
  assert final["finished"]
  kept = len(killed["epochs"])
  assert final["epochs"][:kept] == killed["epochs"]  # the night before the kill is kept
  reasons = [e["reason"] for e in final["epochs"][kept:]]
  assert reasons[0] == "gap"  # the time the stager was down
  assert any(r is None for r in reasons)  # then staged again
  stats = json.loads((out / "night.sleep_stats.json").read_text())
  assert stats["live"]["finished"] and any(
      e["reason"] == "gap" for e in stats["live"]["unscored_epochs"])
  assert (out / "night.hypnogram.png").stat().st_size > 10_000
  assert sorted(os.listdir(out)) == sorted(
      f"night.{s}" for s in ("stages.tsv", "hypnogram.edf", "hypnogram.png", "sleep_stats.json",
                             "stream.json"))


@pytest.mark.slow
def test_a_live_night_applies_the_exports_context_stage_causally(smoother_export, tmp_path):  # pylint: disable=redefined-outer-name
  name = lsl_outlet.unique_name()
  samples = _signal(100, 185, seed=4)
  out = tmp_path / "staged"
  with lsl_outlet.FastOutlet(name, samples, 100, ["EEG Fpz-Cz"], speed=20):
    code, text = _finish(
        _start(
            _command(smoother_export, out, "--stream", f"lsl:{name}", "--record", "night",
                     "--context_lag", "1", "--stall_seconds", "3")))
  assert code == 0, text
  assert "context: smoother, live (causal, lag 1)" in text
  assert sum(line.startswith("context ") for line in text.splitlines()) == 6
  # Every sample is received (the outlet pushes once the stager is connected): the TSV is
  # offline staging's of the same samples with the smoother at lag 1, both column groups.
  model = runtimes.load(smoother_export, runtime="litert", threads=1)
  per_epoch = _offline_tsv(tmp_path / "offline.tsv", model, samples, 100, 1.0)
  smoothed = context.apply(context_stage.load(smoother_export, "smoother", 1), per_epoch)
  outputs.write_tsv(str(tmp_path / "offline.tsv"),
                    np.arange(6) * 30.0,
                    smoothed,
                    per_epoch_probabilities=per_epoch)
  assert (out / "night.stages.tsv").read_bytes() == (tmp_path / "offline.tsv").read_bytes()
  stats = json.loads((out / "night.sleep_stats.json").read_text())
  assert stats["context"] == {"kind": "smoother", "lag": 1, "mode": "live (causal, lag 1)"}


@pytest.mark.slow
def test_an_lsl_replay_of_an_edf_stages_as_offline_staging_of_the_same_samples(
    export_dir, model, tmp_path):  # pylint: disable=redefined-outer-name
  import mne  # pylint: disable=g-import-not-at-top  # comes with mne-lsl
  from mne_lsl.player import PlayerLSL  # pylint: disable=g-import-not-at-top
  rate, seconds = 128, 66
  path = tmp_path / "night.edf"
  edf_files.write_psg(path, seconds=seconds, fs=rate, signal=_signal(rate, seconds))
  raw = mne.io.read_raw_edf(str(path), preload=True, verbose=False)
  sent = raw.get_data(picks=["EEG Fpz-Cz"])[0]  # volts, float64: what the player sends
  name = lsl_outlet.unique_name()
  out = tmp_path / "live"
  lsl_outlet.quiet_liblsl()
  player = PlayerLSL(raw, chunk_size=16, n_repeat=1, name=name)
  process = None
  try:
    process = _start(
        _command(export_dir, out, "--stream", f"lsl:{name}", "--record", "night",
                 "--reconnect_tries", "1"))
    time.sleep(0.5)
    player.start()
    code, text = _finish(process, timeout=180)
  finally:
    if process is not None and process.poll() is None:
      process.kill()
    try:
      player.stop()
    except RuntimeError:  # it stops itself at the end of the file
      pass
  assert code == 0, text
  # The stager receives from the moment its inlet connects: the player's first chunks may
  # be gone by then (LSL keeps no history for a new inlet). The night starts at its first
  # received sample, so it must equal offline staging of the samples from some chunk on.
  live = (out / "night.stages.tsv").read_bytes()
  chunk, matched = 16, None
  for start in range(0, len(sent) - 2 * 30 * rate + 1, chunk):
    expected = _offline_tsv(tmp_path / "offline.tsv", model, sent[start:], rate, 1e6)
    assert len(expected) == 2
    if live == (tmp_path / "offline.tsv").read_bytes():
      matched = start
      break
  assert matched is not None, live.decode()
  # And as the EDF itself stages (its own float32 microvolts: equal to rounding).
  if matched == 0:
    offline = stage_lib.stage_night(str(path), model, str(tmp_path / "edf"),
                                    stage_lib.StageConfig(batch_size=4))
    assert offline["epochs"] == 2
    edf_rows = (tmp_path / "edf" / "night.stages.tsv").read_text().splitlines()[1:]
    live_rows = live.decode().splitlines()[1:]
    assert [r.split("\t")[2] for r in edf_rows] == [r.split("\t")[2] for r in live_rows]
  # The player's stream goes away at the end of the file: looked for once, then the end.
  assert "reconnect 1/1 failed" in text
  assert f"ended: LSL stream '{name}' on " in text and "lost (1 reconnects failed)" in text


@pytest.mark.slow
def test_the_synthetic_board_stages_through_the_command(export_dir, tmp_path):  # pylint: disable=redefined-outer-name
  code, text = _finish(
      _start(
          _command(export_dir, tmp_path, "--board", "synthetic", "--channel", "Cz", "--duration",
                   "31")))
  assert code == 0, text
  assert "BrainFlow board synthetic: Cz at 250 Hz" in text
  assert "note: the model was trained on EEG Fpz-Cz (Sleep-EDF); its accuracy on Cz" in text
  assert [line.split()[:2] for line in text.splitlines() if line.startswith("epoch")
         ] == [["epoch", "0"]]
  assert "ended: --duration 31 s staged" in text
  stats = json.loads((tmp_path / "synthetic.sleep_stats.json").read_text())
  assert stats["montage"]["channel"] == "Cz" and stats["live"]["finished"]
  assert len((tmp_path / "synthetic.stages.tsv").read_text().splitlines()) == 2


@pytest.mark.slow
def test_a_brainflow_playback_stages_as_offline_staging_of_its_samples(export_dir, model, tmp_path):  # pylint: disable=redefined-outer-name
  eeg = write_playback(tmp_path / "night.csv", _signal(250, 33))
  out = tmp_path / "live"
  code, text = _finish(
      _start(
          _command(export_dir, out, "--board", f"playback:{tmp_path / 'night.csv'}", "--channel",
                   "Cz", "--stall_seconds", "3", "--record", "night")))
  assert code == 0, text
  expected = _offline_tsv(tmp_path / "offline.tsv", model, eeg, 250, 1.0)
  assert len(expected) == 1
  assert (out / "night.stages.tsv").read_bytes() == (tmp_path / "offline.tsv").read_bytes()
  assert "ended: no samples for 3 s (--on_stall end)" in text
