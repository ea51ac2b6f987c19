r"""Draw a build: example spectrogram images per stage and epochs per stage per subject.

  python -m beam_pipelines.preview --build_dir out/demo [--output out/demo-preview.png]
"""

import sys

from absl import app
from absl import flags

from eegmobile import cli
from eegmobile import storage

_BUILD_DIR = flags.DEFINE_string("build_dir", "out/demo", "A build directory.")
_OUTPUT = flags.DEFINE_string("output", None, "PNG path. Default: <build_dir>-preview.png.")
_PER_STAGE = flags.DEFINE_integer("per_stage", 4, "Example images per stage.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Leave TensorFlow's logs on the terminal.")


def main(argv):
  del argv
  cli.quiet(_VERBOSE.value)
  # Lazy: quiet() must run before TensorFlow is imported, and tfrecords.preview imports it.
  from tfrecords import preview  # pylint: disable=g-import-not-at-top
  output = _OUTPUT.value or _BUILD_DIR.value.rstrip("/") + "-preview.png"
  try:
    preview.plot_preview(_BUILD_DIR.value, output, _PER_STAGE.value)
  except (FileNotFoundError, ValueError, storage.StorageError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {output}")
  return 0


if __name__ == "__main__":
  app.run(main)
