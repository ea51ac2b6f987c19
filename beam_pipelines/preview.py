r"""Draw a build: example spectrogram images per stage and epochs per stage per subject.

  python -m beam_pipelines.preview --build_dir out/demo [--output out/demo-preview.png]
"""

import sys

from absl import app
from absl import flags

from tfrecords import filesystems

_BUILD_DIR = flags.DEFINE_string("build_dir", "out/demo", "A build directory.")
_OUTPUT = flags.DEFINE_string("output", None, "PNG path. Default: <build_dir>-preview.png.")
_PER_STAGE = flags.DEFINE_integer("per_stage", 4, "Example images per stage.")


def main(argv):
  del argv
  from tfrecords import preview  # pylint: disable=g-import-not-at-top
  output = _OUTPUT.value or _BUILD_DIR.value.rstrip("/") + "-preview.png"
  try:
    preview.plot_preview(_BUILD_DIR.value, output, _PER_STAGE.value)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {output}")
  return 0


if __name__ == "__main__":
  # After reading s3:// (tensorflow-io), leave with our status, not the SDK's abort at exit.
  app.run(filesystems.exits_cleanly(main))
