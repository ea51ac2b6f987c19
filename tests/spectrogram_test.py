"""Tests for eegmobile.spectrogram: the fast path against scipy, PIL, matplotlib and the
paper's own render-and-resize method."""

import dataclasses

import numpy as np
import pytest
import scipy.signal

from eegmobile import spectrogram
from eegmobile.config import SpectrogramConfig

PAPER = SpectrogramConfig()
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
  np.testing.assert_allclose(spectrogram.window(PAPER), scipy.signal.get_window(("tukey", 0.25),
                                                                                30))
  assert spectrogram.num_segments(PAPER, 3000) == 213
  assert spectrogram.num_frequencies(PAPER) == 513


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


def test_chunking_does_not_change_images():
  epochs = _eeg_like(11)
  together = spectrogram.spectrogram_images(epochs, PAPER)
  one_by_one = np.concatenate([spectrogram.spectrogram_images(e[None], PAPER) for e in epochs])
  np.testing.assert_array_equal(together, one_by_one)


def test_resize_taps_match_pil_bilinear():
  from PIL import Image
  rng = np.random.default_rng(1)
  source = rng.normal(size=(513, 213)).astype(np.float32)
  expected = np.asarray(Image.fromarray(source, mode="F").resize((224, 224), Image.BILINEAR))
  rows = spectrogram.resize_matrix(513, 224) @ source
  ours = rows @ spectrogram.resize_matrix(213, 224).toarray().T
  np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_quantise_matches_matplotlib_colour_lookup():
  import matplotlib
  cmap = matplotlib.colormaps["viridis"]
  values = np.concatenate([np.linspace(0, 1, 1001), [0.0, 1.0, 255 / 256, 1 / 256]])
  ours = spectrogram.colorize(spectrogram.quantise(values), cmap.colors)
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
