r"""Images and stages across CPU families: this CPU's kernels against the AVX2 kernels.

  PYTHONPATH=. python bench/cross_cpu.py --export_dir /tmp/demo_model/export \
      [--edf /tmp/stage_bench/night22h.edf] [--epochs 1000]

Computes the numpy path's images of the same epochs twice, each in a fresh process: once
with this CPU's kernels, once with the AVX2 kernels an AVX2-only CPU takes (OpenBLAS
Haswell, numpy without its AVX-512 loops: `kernels.AVX2_ENV`), and prints the share of
equal pixels, the largest difference and the epochs that differ; then, with --export_dir,
the model's stages and probabilities on both (LiteRT float32, one runtime for both sides, so
only the images differ): top-class agreement and the largest probability difference. The
epochs: the first --epochs of --edf (default: the real Sleep-EDF excerpt in ../shared,
and synthetic EEG of every stage), and the test epochs of tests/spectrogram_test.py.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# pylint: disable=wrong-import-position
from eegmobile import edf_reader
from eegmobile import stages
from eegmobile.demo import synthetic
from tests import kernels
from tests import spectrogram_test
# pylint: enable=wrong-import-position

EXCERPT = os.path.join(ROOT, "..", "shared", "sleep-edf", "excerpt", "SC4001E0-PSG.first300s.edf")


def _epochs(args) -> np.ndarray:
  parts = [spectrogram_test._eeg_like(64).astype(np.float32)]  # pylint: disable=protected-access
  if args.edf:
    signal = edf_reader.read_channel(args.edf).signal
    parts.append(signal[:len(signal) // 3000 * 3000].reshape(-1, 3000)[:args.epochs])
  else:
    if os.path.exists(EXCERPT):
      parts.append(edf_reader.read_channel(EXCERPT).signal.reshape(-1, 3000))
    labels = np.arange(args.epochs) % stages.NUM_STAGES
    parts.append(synthetic.synthesize_eeg(labels, seed=3).reshape(args.epochs, -1))
  return np.concatenate([p.astype(np.float32) for p in parts])


def _images(epochs_path: str, out_path: str, env: dict) -> np.ndarray:
  code = ("import numpy as np; from eegmobile import spectrogram; "
          "from eegmobile.config import SpectrogramConfig; "
          f"np.save({out_path!r}, spectrogram.spectrogram_images(np.load({epochs_path!r}), "
          "SpectrogramConfig(), workers=2))")
  clean = {k: v for k, v in os.environ.items() if k not in kernels.AVX2_ENV}
  subprocess.run([sys.executable, "-c", code], env={**clean, "PYTHONPATH": ROOT, **env}, check=True)
  return np.load(out_path)


def _probabilities(export_dir: str, images: np.ndarray) -> np.ndarray:
  from eegmobile.staging import runtimes  # pylint: disable=g-import-not-at-top
  model = runtimes.load(os.path.join(export_dir, "images_float16.tflite"), runtime="litert")
  return np.concatenate([model.predict(images[i:i + 64]) for i in range(0, len(images), 64)])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--export_dir", default=None)
  parser.add_argument("--edf", default=None)
  parser.add_argument("--epochs", type=int, default=500)
  args = parser.parse_args()
  epochs = _epochs(args)
  with tempfile.TemporaryDirectory() as directory:
    np.save(os.path.join(directory, "epochs.npy"), epochs)
    native = _images(os.path.join(directory, "epochs.npy"), os.path.join(directory, "a.npy"), {})
    forced = _images(os.path.join(directory, "epochs.npy"), os.path.join(directory, "b.npy"),
                     kernels.AVX2_ENV)
  difference = np.abs(native.astype(int) - forced.astype(int))
  moved = np.flatnonzero(difference.reshape(len(epochs), -1).max(axis=1))
  print(f"{len(epochs)} epochs: {np.mean(difference == 0):.6f} of pixels equal "
        f"({int((difference > 0).sum())} of {difference.size} differ), largest difference "
        f"{difference.max()}, {len(moved)} epochs with a changed pixel")
  if args.export_dir:
    a, b = _probabilities(args.export_dir, native), _probabilities(args.export_dir, forced)
    agree = np.mean(a.argmax(axis=1) == b.argmax(axis=1))
    print(f"model (LiteRT float32 on both): top class agrees on {agree:.2%} of epochs, largest "
          f"probability difference {np.abs(a - b).max():.2g}")


if __name__ == "__main__":
  main()
