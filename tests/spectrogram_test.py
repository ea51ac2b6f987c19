"""Tests for eegmobile.spectrogram: the fast path against scipy, PIL, matplotlib and the
paper's own render-and-resize method."""

import concurrent.futures
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
import threadpoolctl

from eegmobile import edf_reader
from eegmobile import spectrogram
from eegmobile.config import SpectrogramConfig
from tests import kernels

PAPER = SpectrogramConfig()
EXCERPT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sleep-edf", "excerpt",
                       "SC4001E0-PSG.first300s.edf")
OTHER = dataclasses.replace(PAPER,
                            nperseg=64,
                            noverlap=32,
                            nfft=256,
                            window="hann",
                            image_height=48,
                            image_width=40)


def _eeg_like(n, samples=3000, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(samples) / 100.0
  brown = scipy.signal.detrend(np.cumsum(rng.normal(size=(n, samples)), axis=1), axis=1)
  rhythm = 30 * np.sin(2 * np.pi * rng.uniform(1, 12, size=(n, 1)) * t)
  return 2 * brown + 5 * rng.normal(size=(n, samples)) + rhythm


@pytest.mark.parametrize("config", [PAPER, OTHER], ids=["paper", "other"])
def test_power_matches_scipy(config):
  epochs = _eeg_like(6)
  _, _, expected = scipy.signal.spectrogram(epochs,
                                            fs=config.fs,
                                            window=spectrogram.window(config),
                                            nperseg=config.nperseg,
                                            noverlap=config.noverlap,
                                            nfft=config.nfft)
  power = spectrogram.power_spectrogram(epochs, config)
  assert power.shape == expected.shape
  relative = np.abs(power - expected) / expected.max(axis=(1, 2), keepdims=True)
  assert relative.max() < 1e-5


def test_paper_defaults_give_scipys_default_window():
  np.testing.assert_array_equal(spectrogram.window(PAPER),
                                scipy.signal.get_window(("tukey", 0.25), 30))
  assert spectrogram.num_segments(PAPER, 3000) == 213
  assert spectrogram.num_frequencies(PAPER) == 513


@pytest.mark.parametrize("name, param, spec", [("tukey", 0.5, ("tukey", 0.5)),
                                               ("kaiser", 8.0, ("kaiser", 8.0)),
                                               ("hann", 0.3, "hann")])
def test_window_parameter_is_passed_where_the_window_takes_one(name, param, spec):
  config = dataclasses.replace(PAPER, window=name, window_param=param, nperseg=31, noverlap=0)
  np.testing.assert_array_equal(spectrogram.window(config), scipy.signal.get_window(spec, 31))


def test_a_passed_window_is_the_one_used():
  epochs = _eeg_like(3)
  hann = dataclasses.replace(PAPER, window="hann", image_height=40, image_width=36)
  paper = dataclasses.replace(hann, window="tukey")
  given = spectrogram.spectrogram_images(epochs, paper, window=spectrogram.window(hann))
  np.testing.assert_array_equal(given, spectrogram.spectrogram_images(epochs, hann))
  assert not np.array_equal(given, spectrogram.spectrogram_images(epochs, paper))
  np.testing.assert_array_equal(
      spectrogram.power_spectrogram(epochs, paper, window=spectrogram.window(hann)),
      spectrogram.power_spectrogram(epochs, hann))


def test_a_window_of_the_wrong_length_is_refused():
  with pytest.raises(ValueError, match=r"window must have shape \(30,\)"):
    spectrogram.spectrogram_images(_eeg_like(1), PAPER, window=np.ones(31))


@pytest.mark.parametrize("nperseg", [2, 3, 4, 7, 30, 31, 64, 101, 256, 1000])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.99])
def test_the_tukey_window_is_scipys_bit_for_bit(nperseg, alpha):
  """Computed without scipy.signal (its import costs a staged night ~1 s), so it must be
  exactly scipy's or images would change."""
  config = dataclasses.replace(PAPER, window_param=alpha, nperseg=nperseg, noverlap=0)
  np.testing.assert_array_equal(spectrogram.window(config),
                                scipy.signal.get_window(("tukey", alpha), nperseg))


@pytest.mark.parametrize("passed, name, imported", [(True, "tukey", "False"),
                                                    (False, "tukey", "False"),
                                                    (False, "hann", "True")])
def test_only_a_window_other_than_tukey_imports_scipy_signal(passed, name, imported):
  """A Beam worker gets the window from the driver; staging computes the default Tukey
  window itself; neither imports scipy.signal (0.6-1.2 s)."""
  import subprocess
  import sys
  win = repr(spectrogram.window(PAPER).tolist()) if passed else "None"
  code = ("import sys, numpy as np; from eegmobile import spectrogram, config; "
          "spectrogram.spectrogram_images(np.random.default_rng(0).normal(size=(2, 3000)), "
          f"config.SpectrogramConfig(window={name!r}), window={win}); "
          "print('scipy.signal' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == imported


@pytest.mark.parametrize("config", [PAPER, OTHER], ids=["paper", "other"])
def test_images_shape_and_dtype(config):
  images = spectrogram.spectrogram_images(_eeg_like(5), config)
  assert images.shape == (5, config.image_height, config.image_width)
  assert images.dtype == np.uint8
  assert int(images.max()) - int(images.min()) > 128  # normalised per image: wide range


@pytest.mark.parametrize("hz, bright_half", [(40.0, "top"), (8.0, "bottom")])
def test_low_frequency_is_at_the_bottom(hz, bright_half):
  t = np.arange(3000) / 100.0
  image = spectrogram.spectrogram_images(100 * np.sin(2 * np.pi * hz * t)[None], PAPER)[0]
  top, bottom = image[:112].mean(), image[112:].mean()
  assert (top > bottom) == (bright_half == "top")
  row = (1 - hz / 50.0) * 223  # where the tone should be, counting rows from the top
  assert abs(int(np.argmax(image.mean(axis=1))) - row) <= 3


def test_constant_epoch_gives_a_finite_black_image():
  images = spectrogram.spectrogram_images(np.full((2, 3000), 7.0), PAPER)
  assert (images == 0).all()


@pytest.mark.parametrize("blas_threads", [1, 2])
def test_an_image_depends_on_its_epoch_alone(blas_threads):
  """Not on the epochs computed with it (chunk), the BLAS threads, or the worker threads.

  This failed on an AVX2 CPU before image version 2 (51 pixels of 11 epochs, and every
  combination of chunk 1, 7, 64 and 1 or 2 BLAS threads gave other bytes).
  """
  epochs = _eeg_like(64)
  reference = np.concatenate([spectrogram.spectrogram_images(e[None], PAPER) for e in epochs])
  with threadpoolctl.threadpool_limits(limits=blas_threads, user_api="blas"):
    for chunk in (1, 7, 64):
      got = np.concatenate([
          spectrogram.spectrogram_images(epochs[i:i + chunk], PAPER)
          for i in range(0, len(epochs), chunk)
      ])
      np.testing.assert_array_equal(got, reference, err_msg=f"chunk {chunk}")
    np.testing.assert_array_equal(spectrogram.spectrogram_images(epochs, PAPER, workers=2),
                                  reference)
    # On a thread other than the one that set the limit (a Beam worker, staging's producer):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      np.testing.assert_array_equal(
          pool.submit(spectrogram.spectrogram_images, epochs, PAPER).result(), reference)


def _blas_threads() -> int:
  return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")


def test_blas_runs_on_one_thread_whichever_thread_computes_the_images(monkeypatch):
  """threadpoolctl applies an OpenBLAS limit only from the first thread that set one (this
  one, here, as a caller's main thread or scikit-learn would), and ignored ours from any
  other thread: images computed there ran on every BLAS thread (with the AVX2 kernels,
  other bytes: staging's producer thread gave a live night other probabilities)."""
  seen = []
  product = spectrogram._product  # pylint: disable=protected-access

  def spy(*args, **kwargs):
    seen.append(_blas_threads())
    return product(*args, **kwargs)

  monkeypatch.setattr(spectrogram, "_product", spy)
  epochs = _eeg_like(2)
  with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):  # this thread controls it
    spectrogram.spectrogram_images(epochs, PAPER)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      list(pool.map(lambda e: spectrogram.spectrogram_images(e[None], PAPER), epochs))
    assert _blas_threads() == 2  # and the caller's setting is back afterwards
  assert len(seen) >= 12 and set(seen) == {1}, seen


def _images_in_a_process(path, environment):
  code = ("import sys, numpy as np; from eegmobile import spectrogram; "
          "from eegmobile.config import SpectrogramConfig; "
          f"np.save({path!r}, spectrogram.spectrogram_images(np.load({path!r}), "
          "SpectrogramConfig(), workers=2))")
  env = {k: v for k, v in os.environ.items() if k not in kernels.AVX2_ENV}
  subprocess.run([sys.executable, "-c", code], env={**env, **environment}, check=True)
  return np.load(path)


def test_the_avx2_and_the_avx512_kernels_keep_the_promise(tmp_path):
  """The promise between CPU families (BUILD_NOTES.md, "Same images on every machine"):
  >= 99.9% of pixels equal and none more than one index apart. numpy's SIMD log gives the
  same float32 results with either instruction set; OpenBLAS's sgemm kernels sum the
  STFT's 15 and 14 products in another order, which moves a pixel only where its value sits
  within that rounding of an integer. (On an AVX2-only CPU both runs take the AVX2 kernels.)
  """
  excerpt = edf_reader.read_channel(EXCERPT).signal.reshape(
      -1, 3000) if os.path.exists(EXCERPT) else np.zeros((0, 3000))
  epochs = np.concatenate([_eeg_like(24, seed=4), 1e4 + _eeg_like(4, seed=5),
                           excerpt]).astype(np.float32)
  np.save(tmp_path / "a.npy", epochs)
  np.save(tmp_path / "b.npy", epochs)
  native = _images_in_a_process(str(tmp_path / "a.npy"), {}).astype(int)
  forced = _images_in_a_process(str(tmp_path / "b.npy"), kernels.AVX2_ENV).astype(int)
  difference = np.abs(native - forced)
  assert difference.max() <= 1 and (difference == 0).mean() >= 0.999


def test_float32_rounding_no_longer_sets_the_colour_scale():
  """An epoch whose spectrum has exact zeros (a noiseless tone): its smallest power is
  float32 rounding, so without a floor its image changes with rounding-level noise; with
  the 100 dB floor it does not (noise far below the floor)."""
  t = np.arange(3000) / 100.0
  tone = 100 * np.sin(2 * np.pi * 40 * t)
  power = spectrogram.power_spectrogram(tone[None], PAPER)[0]
  high = power.max()
  assert power.min() < high * 1e-13  # rounding level: below the floor
  assert spectrogram.scale_floor(high, PAPER) == np.float32(high * np.float32(1e-10))
  noisy = tone + 1e-7 * np.random.default_rng(0).normal(size=3000)  # 170 dB below the tone
  epochs = np.stack([tone, noisy])
  floored = spectrogram.spectrogram_images(epochs, PAPER)
  np.testing.assert_array_equal(floored[0], floored[1])
  unfloored = spectrogram.spectrogram_images(epochs,
                                             dataclasses.replace(PAPER, dynamic_range_db=None))
  assert not np.array_equal(unfloored[0], unfloored[1])
  assert spectrogram.scale_floor(high, dataclasses.replace(PAPER, dynamic_range_db=None)) is None


def test_a_floor_below_an_epochs_smallest_power_changes_nothing():
  epochs = _eeg_like(8)
  wide = dataclasses.replace(PAPER, dynamic_range_db=1000.0)
  np.testing.assert_array_equal(
      spectrogram.spectrogram_images(epochs, wide),
      spectrogram.spectrogram_images(epochs, dataclasses.replace(PAPER, dynamic_range_db=None)))


def test_resize_taps_match_pil_bilinear():
  from PIL import Image
  rng = np.random.default_rng(1)
  source = rng.normal(size=(513, 213)).astype(np.float32)
  expected = np.asarray(Image.fromarray(source, mode="F").resize((224, 224), Image.BILINEAR))
  rows = spectrogram.resize_matrix(513, 224) @ source
  ours = rows @ spectrogram.resize_matrix(213, 224).toarray().T
  np.testing.assert_allclose(ours, expected, atol=1e-4)


def _dft_power(segments, win, nfft, fs):
  """The textbook one-sided power density, in float64 (no folding, no tricks)."""
  spectrum = np.fft.rfft(segments * win, n=nfft, axis=-1)
  scale = np.full(nfft // 2 + 1, 1.0 / (fs * np.sum(win * win)))
  scale[1:-1 if nfft % 2 == 0 else None] *= 2
  return np.abs(spectrum)**2 * scale


@pytest.mark.parametrize(
    "win",
    [
        scipy.signal.get_window(("tukey", 0.25), 30),
        scipy.signal.get_window("hann", 31),
        scipy.signal.windows.hann(30, sym=True),
        scipy.signal.windows.hamming(31, sym=True),
        np.ones(16),
        np.random.default_rng(4).uniform(0.2, 1.0, 30),  # asymmetric: used unfolded
    ],
    ids=[
        "tukey-periodic", "hann-periodic-odd", "hann-symmetric", "hamming-symmetric-odd", "boxcar",
        "asymmetric"
    ])
def test_folded_dft_gives_the_dft_power(win):
  nfft, fs = 256, 100.0
  rng = np.random.default_rng(5)
  segments = rng.normal(size=(40, len(win)))
  segments -= segments.mean(axis=1, keepdims=True)
  fold_cos, cos, fold_sin, sin = spectrogram.folded_dft(win, nfft, fs)
  y = segments.T.astype(np.float32)
  power = (cos @ (fold_cos @ y))**2 + (sin @ (fold_sin @ y))**2
  expected = _dft_power(segments, win, nfft, fs).T
  assert np.abs(power - expected).max() < 1e-5 * expected.max()
  assert set(np.unique(np.concatenate([fold_cos.ravel(), fold_sin.ravel()]))) <= {-1, 0, 1}


def test_folding_halves_the_papers_stft():
  fold_cos, cos, fold_sin, sin = spectrogram.folded_dft(spectrogram.window(PAPER), 1024, 100)
  # Periodic Tukey(30): sample 0 has weight 0, 14 mirror pairs about sample 15, and 15.
  assert cos.shape == (513, 15) and sin.shape == (513, 14)
  assert fold_cos.shape == (15, 30) and fold_sin.shape == (14, 30)
  asymmetric = spectrogram.folded_dft(np.linspace(0.5, 1.0, 30), 1024, 100)
  assert asymmetric[1].shape == (513, 30) and asymmetric[3].shape[1] >= 29


def _quantise(normalised: np.ndarray) -> np.ndarray:
  """Values in [0, 1] -> uint8 colour-map indices, as the fast path's truncation gives."""
  return np.minimum(np.floor(np.asarray(normalised) * 256.0), 255).clip(0).astype(np.uint8)


def test_quantise_matches_matplotlib_colour_lookup():
  import matplotlib
  cmap = matplotlib.colormaps["viridis"]
  values = np.concatenate([np.linspace(0, 1, 1001), [0.0, 1.0, 255 / 256, 1 / 256]])
  ours = spectrogram.colorize(_quantise(values), cmap.colors)
  np.testing.assert_array_equal(ours, cmap(values, bytes=True)[:, :3])


def test_fast_path_matches_the_papers_render_and_resize_method():
  import matplotlib
  epochs = _eeg_like(3, seed=3)
  fast = spectrogram.colorize(spectrogram.spectrogram_images(epochs, PAPER),
                              matplotlib.colormaps["viridis"].colors)
  reference = spectrogram.reference_images(epochs, PAPER)
  assert reference.shape == fast.shape == (3, 224, 224, 3)
  agreement = spectrogram.compare_to_reference(fast, reference)
  assert agreement["mae"] < 4.0, agreement
  assert agreement["psnr_db"] > 30.0, agreement
  # and it is not trivially close: a different epoch's image is far from the reference
  other = spectrogram.compare_to_reference(fast[::-1], reference)
  assert other["mae"] > 3 * agreement["mae"]


def test_rejects_epochs_shorter_than_a_segment():
  with pytest.raises(ValueError, match="samples>=30"):
    spectrogram.spectrogram_images(np.zeros((2, 10)), PAPER)
