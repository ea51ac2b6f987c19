"""Local servers for tests, on 127.0.0.1 only, started by the tests and always stopped.

`s3_server()`: a moto S3-compatible server (the `aws` and `test` extras) with one bucket.
`dask_cluster()`: a 2-worker `distributed.LocalCluster` (the `dask` extra).
Each is a context manager; the pytest fixtures in the tests wrap them, so the servers stop
when the tests end, pass or fail.
"""

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

BUCKET = "eegmobile-test"
KEY_ID, SECRET, REGION = "testing", "testing", "us-east-1"


@dataclasses.dataclass(frozen=True)
class S3Server:
  """Where a running test S3 server listens, and how to reach it."""
  endpoint: str
  bucket: str

  @property
  def beam_args(self) -> list[str]:
    """Beam pipeline options for Beam's S3 file system."""
    return [
        "--s3_endpoint_url", self.endpoint, "--s3_access_key_id", KEY_ID, "--s3_secret_access_key",
        SECRET, "--s3_region_name", REGION
    ]

  @property
  def settings(self) -> dict[str, str]:
    """`eegmobile.storage.configure_s3` keywords for this server."""
    return {
        "endpoint_url": self.endpoint,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "region_name": REGION
    }

  @property
  def env(self) -> dict[str, str]:
    """The standard AWS variables for this server (what every eegmobile command reads)."""
    return {
        "AWS_ENDPOINT_URL": self.endpoint,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": REGION,
    }

  def url(self, *parts: str) -> str:
    return "s3://" + "/".join([self.bucket, *parts])


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, seconds: float = 30.0) -> None:
  deadline = time.monotonic() + seconds
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f"the test server exited with status {process.returncode}")
    try:
      socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
      return
    except OSError:
      time.sleep(0.1)
  raise RuntimeError(f"the test server did not listen on 127.0.0.1:{port} in {seconds} s")


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
  """A moto S3 server on a free loopback port, with the bucket BUCKET created."""
  import boto3  # pylint: disable=g-import-not-at-top
  port = free_port()
  process = subprocess.Popen(
      [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
       str(port)],
      stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  try:
    _wait_for(port, process)
    server = S3Server(endpoint=f"http://127.0.0.1:{port}", bucket=BUCKET)
    boto3.client("s3",
                 endpoint_url=server.endpoint,
                 aws_access_key_id=KEY_ID,
                 aws_secret_access_key=SECRET,
                 region_name=REGION).create_bucket(Bucket=BUCKET)
    yield server
  finally:
    process.terminate()
    try:
      process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


@contextlib.contextmanager
def dask_cluster(workers: int = 2) -> Iterator[str]:
  """A local Dask cluster of single-threaded worker processes; yields its address."""
  from dask import distributed  # pylint: disable=g-import-not-at-top
  with distributed.LocalCluster(n_workers=workers,
                                threads_per_worker=1,
                                processes=True,
                                host="127.0.0.1",
                                dashboard_address=None,
                                env={"OPENBLAS_NUM_THREADS": "1"}) as cluster:
    yield cluster.scheduler_address


def s3_objects(server: S3Server, prefix: str) -> dict[str, bytes]:
  """{key below prefix: bytes} of every object under a prefix of the test bucket."""
  import boto3  # pylint: disable=g-import-not-at-top
  client = boto3.client("s3",
                        endpoint_url=server.endpoint,
                        aws_access_key_id=KEY_ID,
                        aws_secret_access_key=SECRET,
                        region_name=REGION)
  out = {}
  for page in client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket,
                                                               Prefix=prefix.rstrip("/") + "/"):
    for item in page.get("Contents", []):
      key = item["Key"][len(prefix.rstrip("/")) + 1:]
      out[key] = client.get_object(Bucket=server.bucket, Key=item["Key"])["Body"].read()
  return out


@contextlib.contextmanager
def aws_env_restored() -> Iterator[None]:
  """Puts the AWS variables back as they were (code under test may set them: the build maps
  its --s3_* flags onto them for its workers)."""
  saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k == "S3_ENDPOINT"}
  try:
    yield
  finally:
    for name in [k for k in os.environ if k.startswith("AWS_") or k == "S3_ENDPOINT"]:
      del os.environ[name]
    os.environ.update(saved)


def env_without_proxies() -> dict[str, str]:
  return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
