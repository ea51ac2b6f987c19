"""Tests for beam_pipelines.options: which arguments are Beam pipeline options."""

import pytest

from beam_pipelines import options


def test_beam_options_are_known_and_typos_of_them_are_not():
  assert options.unknown_arguments(["--direct_num_workers", "2", "--runner", "DirectRunner"]) == []
  assert options.unknown_arguments(["--job_name=x", "--direct_running_mode", "in_memory"]) == []
  assert options.unknown_arguments(["--direct_num_worker", "2"]) == ["--direct_num_worker", "2"]
  assert options.unknown_arguments(["--s3_endpoint_url", "http://127.0.0.1:1"]) == []


def test_dask_options_are_known():
  pytest.importorskip("dask.distributed", reason="needs the dask extra")
  assert options.unknown_arguments(["--dask_client_address", "tcp://127.0.0.1:1"]) == []


def test_unknown_arguments_are_described_with_the_closest_flag_or_option():
  described = options.describe_unknown(["--subest", "x", "--direct_num_worker", "--zzzzzz"],
                                       ["subset", "data_dir"])
  assert described == ("--subest (did you mean --subset?); x (not a flag); "
                       "--direct_num_worker (did you mean --direct_num_workers?); --zzzzzz")
