"""End-to-end tests of the Beam build (beam_pipelines.pipeline) on tiny synthetic nights."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from beam_pipelines import pipeline
from beam_pipelines import transforms
from eegmobile import config as config_lib
from eegmobile import edf_reader
from eegmobile import edf_writer
from eegmobile import errors
from eegmobile import storage
from eegmobile.demo import synthetic
from tfrecords import manifest as manifest_lib
from tfrecords import schema
from tests import edf_files
from tests import servers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = config_lib.BuildConfig()
IN_PROCESS = ["--direct_num_workers", "1"]  # one in-memory worker: fast to start


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("recordings"))
  synthetic.make_demo_dataset(directory, subjects=(0, 1), nights=(1, 2), hours=1.5)
  return directory


def _digests(directory):
  """sha256 of the build's shards and manifest (its log is not part of the build's bytes)."""
  return {
      name: hashlib.sha256(open(os.path.join(directory, name), "rb").read()).hexdigest()
      for name in sorted(os.listdir(directory))
      if name != pipeline.LOG_FILE
  }


def _read_build(output_dir, manifest):
  """Every example of every shard, decoded, grouped by shard file name."""
  size = (manifest["image"]["height"], manifest["image"]["width"])
  out = {}
  for subject in manifest["subjects"].values():
    for shard in subject["shards"]:
      data = tf.data.TFRecordDataset(os.path.join(output_dir, shard),
                                     compression_type=manifest["compression"])
      out[shard] = [schema.decode_example(s, *size, with_metadata=True) for s in data]
  return out


def test_build_writes_exact_shards_and_every_example_reads_back(demo_dir, tmp_path):
  output = str(tmp_path / "build")
  result = pipeline.run(demo_dir, output, CONFIG)  # default: one worker per core
  assert result.ok and result.manifest["complete"]
  assert sorted(os.listdir(output)) == [
      pipeline.LOG_FILE, "manifest.json", "sleep-edf-20-SC00.tfrecord-00000-of-00002",
      "sleep-edf-20-SC00.tfrecord-00001-of-00002", "sleep-edf-20-SC01.tfrecord-00000-of-00002",
      "sleep-edf-20-SC01.tfrecord-00001-of-00002"
  ]
  manifest = manifest_lib.load_manifest(output)
  examples = _read_build(output, manifest)
  for night in manifest["recordings"]:
    decoded = examples[night["shard"]]
    assert len(decoded) == night["num_examples"] > 0
    assert {e["record"].numpy().decode() for e in decoded} == {night["record"]}
    indices = [int(e["epoch_index"]) for e in decoded]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(float(e["onset_seconds"]) == 30.0 * int(e["epoch_index"]) for e in decoded)
    labels = np.bincount([int(e["label"]) for e in decoded], minlength=5)
    assert dict(zip(manifest["stages"], labels.tolist())) == night["class_counts"]
    assert night["psg"]["sha256"] == hashlib.sha256(
        open(os.path.join(demo_dir, "sleep-cassette", night["psg"]["file"]),
             "rb").read()).hexdigest()
  assert manifest["totals"]["num_examples"] == sum(len(v) for v in examples.values())
  assert result.metrics["epochs_written"] == manifest["totals"]["num_examples"]
  assert result.metrics["recordings_built"] == 4
  assert result.log_path == os.path.join(output, pipeline.LOG_FILE) and not result.unexpected_errors
  assert not [d for d in os.listdir(tmp_path) if "incomplete" in d]


def test_rebuild_is_byte_identical(demo_dir, tmp_path):
  config = config_lib.BuildConfig(compression="GZIP")
  first, second = str(tmp_path / "a"), str(tmp_path / "b")
  pipeline.run(demo_dir, first, config, beam_args=IN_PROCESS)
  pipeline.run(demo_dir, second, config, beam_args=IN_PROCESS)
  assert _digests(first) == _digests(second)
  pipeline.run(demo_dir, first, config, beam_args=IN_PROCESS)  # same build again: replaced
  assert _digests(first) == _digests(second)


def test_wake_edge_none_keeps_every_scored_epoch(demo_dir, tmp_path):
  every = pipeline.run(
      demo_dir,
      str(tmp_path / "all"),
      config_lib.BuildConfig(epochs=config_lib.EpochConfig(wake_edge_minutes=None)),
      beam_args=IN_PROCESS).manifest
  trimmed = pipeline.run(demo_dir, str(tmp_path / "trim"), CONFIG, beam_args=IN_PROCESS).manifest
  assert "wake trimmed" not in every["totals"]["dropped"]
  assert (every["totals"]["num_examples"] - trimmed["totals"]["num_examples"] ==
          trimmed["totals"]["dropped"]["wake trimmed"] > 0)


@pytest.fixture()
def broken_dir(demo_dir, tmp_path):
  """The demo nights of subject 0, plus one recording broken in each way we handle."""
  directory = tmp_path / "broken"
  shutil.copytree(os.path.join(demo_dir, "sleep-cassette"), directory)
  for name in os.listdir(directory):
    if name.startswith("SC401"):
      os.remove(directory / name)
  hyp = edf_reader.read_annotations(str(directory / "SC4001EC-Hypnogram.edf"))
  seconds = int(hyp[-1].onset)

  def pair(key, *, psg=True, hypnogram=True, annotations=hyp, **psg_kwargs):
    if hypnogram:
      edf_writer.write_hypnogram(str(directory / f"{key}C-Hypnogram.edf"), annotations)
    if psg:
      edf_files.write_psg(directory / f"{key}0-PSG.edf", seconds=seconds, **psg_kwargs)

  pair("SC4031E")
  os.truncate(directory / "SC4031E0-PSG.edf", 100_000)  # truncated PSG
  pair("SC4041E", channels=("EEG Pz-Oz",))  # no Fpz-Cz
  pair("SC4051E", hypnogram=False)  # PSG without hypnogram
  pair("SC4061E", psg=False)  # hypnogram without PSG
  pair("SC4071E", annotations=hyp[:-1] +
       [edf_reader.Annotation(hyp[-1].onset, 30, "Lights on")])  # unknown label
  pair("SC4081E", signal=np.zeros(seconds * 100))  # flat signal
  return str(directory)


def test_bad_recordings_are_reported_and_the_others_still_build(broken_dir, tmp_path):
  output = str(tmp_path / "build")
  result = pipeline.run(broken_dir, output, CONFIG, beam_args=IN_PROCESS)
  assert not result.ok
  manifest = result.manifest
  assert [r["record"] for r in manifest["recordings"]] == ["SC4001E0", "SC4002E0"]
  problems = {f["record"]: (f["file"], f["kind"], f["error"]) for f in manifest["failures"]}
  assert set(problems) == {"SC4031E0", "SC4041E0", "SC4051E0", "SC4061E0", "SC4071E0", "SC4081E0"}
  assert problems["SC4031E0"][:2] == ("SC4031E0-PSG.edf", "EdfFormatError")
  assert "truncated" in problems["SC4031E0"][2]
  assert problems["SC4041E0"][:2] == ("SC4041E0-PSG.edf", "ChannelError")
  assert "no channel 'EEG Fpz-Cz'" in problems["SC4041E0"][2]
  assert problems["SC4051E0"][1:] == ("PairingError", "PSG without a hypnogram (expected a "
                                      "file named SC4051E?-Hypnogram.edf)")
  assert problems["SC4061E0"][1] == "PairingError"
  assert problems["SC4071E0"][:2] == ("SC4071EC-Hypnogram.edf", "HypnogramError")
  assert "'Lights on'" in problems["SC4071E0"][2]
  assert problems["SC4081E0"][1] == "ChannelError" and "flat" in problems["SC4081E0"][2]
  assert result.metrics["recordings_failed"] == 4  # the two pairing problems never ran
  with pytest.raises(ValueError, match="incomplete build, 6 recording"):
    manifest_lib.load_manifest(output)
  assert manifest_lib.load_manifest(output, allow_incomplete=True)["failures"]


def test_output_dir_holding_another_build_is_refused_before_any_work(demo_dir, tmp_path):
  output = str(tmp_path / "build")
  pipeline.run(demo_dir, output, CONFIG, beam_args=IN_PROCESS)
  before = _digests(output)
  other = config_lib.BuildConfig(epochs=config_lib.EpochConfig(wake_edge_minutes=10.0))
  with pytest.raises(errors.OutputDirError,
                     match=r"holds a different build \(config.epochs.wake_edge_minutes: 30.0 "
                     r"there, 10.0 now\)"):
    pipeline.run(demo_dir, output, other, beam_args=IN_PROCESS)
  assert _digests(output) == before
  assert not [d for d in os.listdir(tmp_path) if "incomplete" in d]


def test_output_dir_with_other_files_is_refused(demo_dir, tmp_path):
  (tmp_path / "thesis.tex").write_text("precious")
  with pytest.raises(errors.OutputDirError, match="holds no build"):
    pipeline.run(demo_dir, str(tmp_path), CONFIG, beam_args=IN_PROCESS)
  assert os.listdir(tmp_path) == ["thesis.tex"]


def test_an_interrupted_build_leaves_nothing_that_looks_finished(demo_dir, tmp_path, monkeypatch):

  def interrupted(recordings, transform, options):  # Ctrl-C while nights are being built
    del recordings, options
    with open(transforms.staged_shard(transform._staging_dir, "SC4001E0"), "wb") as f:  # pylint: disable=protected-access
      f.write(b"half a shard")
    raise KeyboardInterrupt

  monkeypatch.setattr(pipeline, "_run_beam", interrupted)
  with pytest.raises(KeyboardInterrupt):
    pipeline.run(demo_dir, str(tmp_path / "build"), CONFIG, beam_args=IN_PROCESS)
  assert os.listdir(tmp_path) == []


def test_direct_runner_never_tries_prism(demo_dir, tmp_path, monkeypatch):
  from apache_beam.runners.portability import prism_runner

  def no_prism(*args, **kwargs):
    raise AssertionError("the DirectRunner tried to start Prism")

  monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", no_prism)
  options = pipeline.pipeline_options(["--runner", "DirectRunner"])
  assert type(pipeline.make_runner(options)).__name__ == "FnApiRunner"
  assert pipeline.run(demo_dir, str(tmp_path / "b"), CONFIG, beam_args=IN_PROCESS).ok


def _cli(*args, cwd):
  return subprocess.run([
      sys.executable, "-m", "beam_pipelines.build", "--runner", "DirectRunner",
      "--direct_num_workers", "1", *args
  ],
                        cwd=cwd,
                        capture_output=True,
                        text=True,
                        timeout=300)


def test_cli_exit_status_and_summary(broken_dir, tmp_path):
  bad = _cli("--data_dir", broken_dir, "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
  assert bad.returncode == 1, bad.stderr[-2000:]
  assert "FAILED: 6 recording(s)" in bad.stdout
  assert "SC4041E0-PSG.edf: no channel 'EEG Fpz-Cz'" in bad.stdout
  missing = _cli("--data_dir", str(tmp_path / "nowhere"), cwd=tmp_path)
  assert missing.returncode == 2 and "does not exist" in missing.stderr
  manifest = json.load(open(tmp_path / "out" / "manifest.json"))
  assert manifest["complete"] is False


@pytest.fixture(scope="module")
def s3():
  pytest.importorskip("boto3", reason="needs the aws extra")
  pytest.importorskip("moto", reason="needs moto[server] (test extra)")
  with servers.s3_server() as server, servers.aws_env_restored():
    yield server


def _read_back(build, env=None):
  """What make_dataset yields for a build, read by a separate process (its exit status too)."""
  run = subprocess.run([sys.executable, "-m", "tests.read_build", build],
                       cwd=ROOT,
                       env={
                           **os.environ, "PYTHONPATH": ROOT,
                           **(env or {})
                       },
                       capture_output=True,
                       text=True,
                       timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]  # 0, not tensorflow-io's abort at exit (134)
  return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_build_written_to_s3_is_the_local_build_and_reads_back_the_same(demo_dir, tmp_path, s3):
  local = str(tmp_path / "local")
  pipeline.run(demo_dir, local, CONFIG, beam_args=IN_PROCESS)
  url = s3.url("builds", "demo")
  result = pipeline.run(demo_dir, url, CONFIG, beam_args=IN_PROCESS + s3.beam_args)
  assert result.ok and result.output_dir == url
  objects = servers.s3_objects(s3, "builds/demo")
  assert {
      k: hashlib.sha256(v).hexdigest() for k, v in objects.items() if k != pipeline.LOG_FILE
  } == _digests(local)
  assert not servers.s3_objects(s3, "builds/demo" + pipeline.STAGING_SUFFIX)  # staging gone
  assert _read_back(url, s3.env) == _read_back(local)
  # The same build again is refused nowhere and stays identical; another build is refused.
  pipeline.run(demo_dir, url, CONFIG, beam_args=IN_PROCESS + s3.beam_args)
  assert {
      k: v for k, v in servers.s3_objects(s3, "builds/demo").items() if k != pipeline.LOG_FILE
  } == {
      k: v for k, v in objects.items() if k != pipeline.LOG_FILE
  }
  with pytest.raises(errors.OutputDirError, match="holds a different build"):
    pipeline.run(demo_dir,
                 url,
                 config_lib.BuildConfig(compression="GZIP"),
                 beam_args=IN_PROCESS + s3.beam_args)


def test_a_reader_never_takes_an_s3_prefix_without_a_manifest_for_a_build(s3, monkeypatch):
  for name, value in s3.env.items():
    monkeypatch.setenv(name, value)
  storage.write_bytes(s3.url("half", "sleep-edf-20-SC00.tfrecord-00000-of-00001"), b"x")
  run = subprocess.run([sys.executable, "-m", "tests.read_build",
                        s3.url("half")],
                       cwd=ROOT,
                       env={
                           **os.environ, "PYTHONPATH": ROOT,
                           **s3.env
                       },
                       capture_output=True,
                       text=True,
                       timeout=300)
  assert run.returncode == 1 and "no manifest" in run.stderr
  assert s3.url("half", "manifest.json") in run.stderr


def test_a_killed_build_leaves_staging_that_the_next_run_removes(demo_dir, tmp_path):
  output = str(tmp_path / "out")
  staging = output + pipeline.STAGING_SUFFIX
  os.makedirs(os.path.join(staging, "nights"))
  open(os.path.join(staging, "nights", "SC4001E0.tfrecord"), "wb").write(b"half a shard")
  assert pipeline.run(demo_dir, output, CONFIG, beam_args=IN_PROCESS).ok
  assert not os.path.exists(staging)


def test_output_stopped_while_moving_shards_into_place_is_replaced(demo_dir, tmp_path):
  output = tmp_path / "out"
  output.mkdir()
  (output / "sleep-edf-20-SC00.tfrecord-00000-of-00002").write_bytes(b"old")  # no manifest
  result = pipeline.run(demo_dir, str(output), CONFIG, beam_args=IN_PROCESS)
  assert result.ok and manifest_lib.load_manifest(str(output))


def test_dask_cluster_builds_byte_identical_to_the_direct_runner(demo_dir, tmp_path):
  pytest.importorskip("dask.distributed", reason="needs the dask extra")
  direct = str(tmp_path / "direct")
  pipeline.run(demo_dir, direct, CONFIG, beam_args=IN_PROCESS)
  with servers.dask_cluster(workers=2) as address:
    on_dask = str(tmp_path / "dask")
    result = pipeline.run(os.path.relpath(demo_dir),
                          os.path.relpath(on_dask),
                          CONFIG,
                          beam_args=["--runner", "DaskRunner", "--dask_client_address", address])
  assert result.ok and result.metrics == {}  # the DaskRunner collects no metrics
  assert result.manifest["totals"]["num_examples"] > 0
  assert _digests(on_dask) == _digests(direct)


def test_a_dask_address_nobody_answers_on_is_a_clear_error(demo_dir, tmp_path):
  pytest.importorskip("dask.distributed", reason="needs the dask extra")
  address = f"tcp://127.0.0.1:{servers.free_port()}"
  with pytest.raises(pipeline.ClusterError, match=f"{address}: no Dask scheduler answers"):
    pipeline.run(demo_dir,
                 str(tmp_path / "out"),
                 CONFIG,
                 beam_args=[
                     "--runner", "DaskRunner", "--dask_client_address", address,
                     "--dask_connection_timeout", "2"
                 ])
  assert not os.path.exists(tmp_path / "out")


def test_an_unexpected_error_keeps_its_traceback_in_the_log_not_the_manifest(
    demo_dir, tmp_path, monkeypatch):
  from eegmobile import nights
  real = nights.build_night

  def bug_in_one_night(recording, config, **kwargs):
    if recording.record == "SC4001E0":
      raise ZeroDivisionError("deliberate bug")
    return real(recording, config, **kwargs)

  monkeypatch.setattr(nights, "build_night", bug_in_one_night)
  output = str(tmp_path / "out")
  result = pipeline.run(demo_dir, output, CONFIG, beam_args=IN_PROCESS)
  assert not result.ok and result.unexpected_errors == 1
  [failure] = result.manifest["failures"]
  assert failure["kind"] == "UnexpectedError" and "traceback" not in failure
  assert "ZeroDivisionError: deliberate bug" in failure["error"]
  log = open(result.log_path).read()
  assert "unexpected error building SC4001E0" in log and "Traceback" in log
  assert "bug_in_one_night" in log  # where it happened, not only what
  assert result.manifest["totals"]["num_examples"] > 0  # the other nights still built
