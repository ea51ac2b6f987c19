r"""Prints a digest of everything `make_dataset` yields for a build (tests run it as a process).

  python -m tests.read_build BUILD_DIR_OR_URL

One line of JSON: {"examples": n, "digest": sha256 of every image, label and metadata
in evaluation order}. A plain script, as a project importing our dataset builders would
write it: no exit wrapper, so a test that runs it on an s3:// build checks that such a
program ends with status 0.
"""

import hashlib
import json
import sys

from tfrecords import datasets
from tfrecords import manifest as manifest_lib


def main(build_dir: str) -> None:
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


if __name__ == "__main__":
  main(sys.argv[1])
