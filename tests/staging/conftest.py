"""Fixtures shared by the staging tests, made once per test session (per worker under
pytest-xdist): exporting the tiny model takes ~20 s, and five modules stage with it."""

import pytest

from eegmobile import spectrogram
from eegmobile.staging import stage_lib
from tests import export_test
from tests import fakes
from tests.staging.stage_lib_test import CONFIG
from tests.staging.stage_lib_test import SPEC
from tests.staging.stage_lib_test import _night
from trainers import export_lib


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
  build = str(tmp_path_factory.mktemp("build"))
  fakes.make_fake_build(build, subjects=("SC00",), nights=(1,), epochs_per_night=12)
  directory = tmp_path_factory.mktemp("export")
  _night(directory / "night.edf")  # the night the tests stage: the model is softened on it
  signal = stage_lib.read_night(str(directory / "night.edf"), CONFIG).signal
  images = spectrogram.spectrogram_images(signal[:30000].reshape(10, 3000), SPEC)
  path = export_test._save_model(  # pylint: disable=protected-access
      str(directory / "checkpoint.keras"),
      "viridis",
      soften_on=images)
  export_lib.export(path,
                    str(directory / "out"),
                    preprocessing=export_lib.load_preprocessing(build),
                    formats=("float32", "float16", "int8"),
                    calibration_images=export_lib.build_images(build, 12))
  return str(directory / "out")
