r"""Prints a digest of everything `make_dataset` yields for a build (tests run it as a process).

  python -m tests.read_build BUILD_DIR_OR_URL

One line of JSON: {"examples": n, "digest": sha256 of every image, label and metadata
in evaluation order}. It leaves through `filesystems.exits_cleanly`, so a process that read
s3:// ends with status 0 (tensorflow-io's exit abort is what that avoids).
"""

import hashlib
import json

from absl import app


def main(argv):
  from tfrecords import datasets  # pylint: disable=g-import-not-at-top
  from tfrecords import filesystems  # pylint: disable=g-import-not-at-top
  from tfrecords import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  del filesystems  # imported for exits_cleanly below; datasets registers it
  build_dir = argv[1]
  manifest = manifest_lib.load_manifest(build_dir)
  digest, count = hashlib.sha256(), 0
  for images, labels, meta in datasets.make_dataset(build_dir,
                                                    manifest_lib.subjects(manifest),
                                                    training=False,
                                                    color=None,
                                                    cache=None,
                                                    batch_size=64,
                                                    with_metadata=True):
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    digest.update(b"|".join(meta["record"].numpy().tolist()))
    digest.update(meta["epoch_index"].numpy().tobytes())
    count += len(labels)
  print(json.dumps({"examples": count, "digest": digest.hexdigest()}))
  return 0


if __name__ == "__main__":
  from tfrecords import filesystems as _filesystems  # pylint: disable=g-import-not-at-top
  app.run(_filesystems.exits_cleanly(main))
