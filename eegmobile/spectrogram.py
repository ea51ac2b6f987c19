"""Spectrogram images: one 30 s epoch -> one uint8 image of colour-map indices.

The EEGMobile paper computed `scipy.signal.spectrogram(fs=100, nperseg=30, noverlap=16,
nfft=1024)` per epoch, plotted it with a colour map, saved the figure and resized the
saved picture to 224x224. `reference_images` does exactly that (it is slow: a figure per
epoch). `spectrogram_images` computes the same picture directly, for many epochs at once:

1. STFT power as one small matrix product: after removing each segment's mean, the
   window, the zero-padded DFT and the density scale are linear in the segment, so they
   fold into one (n_freq x nperseg) complex matrix, applied as its stacked real and
   imaginary parts.
   Frequency-major output makes the next steps contiguous; chunks of a few epochs keep
   the products in cache.
2. Power -> dB, with scipy's density scaling and one-sided doubling.
3. Per-image min/max in dB: what a colour-mapped plot's default normalisation uses.
4. Resize (frequency x time) -> (image_height x image_width) with PIL's antialiased
   triangle (bilinear) filter, as sparse taps; normalisation is affine, so it commutes
   with the resize.
5. Quantise to 256 colour-map indices as matplotlib does (floor(x * 256), 1.0 -> 255),
   low frequency at the bottom (row 0 is the highest frequency).

Storing the index instead of RGB keeps one byte per pixel; the reader applies the colour
map (viridis by default, or grey). `spectrogram_test` pins (1)-(2) against scipy and
`bench/build_throughput.py` measures how closely (5) matches the reference pictures.
"""

import functools
import os
from typing import Optional

import numpy as np
import scipy.signal

from eegmobile.config import SpectrogramConfig

# Windows whose scipy spec takes one parameter, e.g. ("tukey", 0.25).
_PARAMETRIC_WINDOWS = frozenset({"tukey", "kaiser", "gaussian", "exponential"})
# Epochs per chunk: small enough that the STFT product stays in cache (measured on the
# 2-core dev machine: 4 epochs 0.21 ms/epoch, 64 epochs 0.83 ms/epoch).
_CHUNK = 4


def window(config: SpectrogramConfig) -> np.ndarray:
  """The STFT window as scipy.signal.spectrogram builds it."""
  spec = (config.window,
          config.window_param) if config.window in _PARAMETRIC_WINDOWS else (config.window)
  return scipy.signal.get_window(spec, config.nperseg)


def num_frequencies(config: SpectrogramConfig) -> int:
  return config.nfft // 2 + 1


def num_segments(config: SpectrogramConfig, samples: int) -> int:
  return (samples - config.noverlap) // (config.nperseg - config.noverlap)


@functools.lru_cache(maxsize=8)
def _stft_matrix(config: SpectrogramConfig) -> np.ndarray:
  """(2 * n_freq, nperseg) float32 [real; imaginary] STFT matrix, density scale folded in."""
  win = window(config)
  n_freq = num_frequencies(config)
  dft = np.exp(-2j * np.pi * np.outer(np.arange(n_freq), np.arange(config.nperseg)) / config.nfft)
  matrix = dft * win[None, :]
  scale = np.full(n_freq, 1.0 / (config.fs * np.sum(win * win)))
  scale[1:-1 if config.nfft % 2 == 0 else None] *= 2  # one-sided: fold negative freqs
  matrix *= np.sqrt(scale)[:, None]  # |sqrt(s) X|^2 = s |X|^2
  return np.ascontiguousarray(np.concatenate([matrix.real, matrix.imag]), np.float32)


def _segments_t(epochs: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
  """(nperseg, n * n_segments) float32: every detrended STFT segment as a column."""
  step = config.nperseg - config.noverlap
  segments = np.lib.stride_tricks.sliding_window_view(np.asarray(epochs, np.float32),
                                                      config.nperseg,
                                                      axis=1)[:, ::step]
  segments = segments.reshape(-1, config.nperseg)
  # detrend="constant", done explicitly rather than folded into the matrix: exact for a
  # flat segment and free of float32 cancellation when the signal has a DC offset.
  return np.ascontiguousarray((segments - segments.mean(axis=1, keepdims=True)).T)


def _power_t(epochs: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
  """(n_freq, n * n_segments) float32 power density, frequency-major."""
  # One stacked [real; imaginary] product: with single-threaded BLAS (one Beam worker per
  # core) two separate 513-row products measured 4x slower than one 1026-row product.
  product = _stft_matrix(config) @ _segments_t(epochs, config)
  np.multiply(product, product, out=product)
  n_freq = product.shape[0] // 2
  return np.add(product[:n_freq], product[n_freq:])


def power_spectrogram(epochs: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
  """STFT power density, as scipy.signal.spectrogram(...)[2] computes it, in float32.

  Args:
    epochs: (n, samples) signal, one row per epoch.
    config: STFT parameters.

  Returns:
    (n, n_freq, n_segments) float32 power spectral density.
  """
  epochs = np.atleast_2d(epochs)
  n_seg = num_segments(config, epochs.shape[1])
  power = _power_t(epochs, config).reshape(-1, len(epochs), n_seg)
  return np.ascontiguousarray(power.transpose(1, 0, 2))


@functools.lru_cache(maxsize=16)
def resize_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
  """PIL's antialiased bilinear resampling as taps: out[j] = sum_k w[j,k] * in[idx[j,k]].

  Returns:
    (idx, w), both (out_size, taps); w rows sum to 1, unused taps have weight 0.
  """
  scale = in_size / out_size
  support = max(scale, 1.0)  # triangle half-width, widened when shrinking (antialias)
  centres = (np.arange(out_size) + 0.5) * scale
  first = np.maximum(np.floor(centres - support).astype(int), 0)
  taps = int(np.ceil(2 * support)) + 2
  idx = first[:, None] + np.arange(taps)[None, :]
  w = np.maximum(0.0, 1.0 - np.abs((idx + 0.5 - centres[:, None]) / support))
  w[idx >= in_size] = 0.0
  idx = np.minimum(idx, in_size - 1)
  return idx, (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def resize_matrix(in_size: int, out_size: int):
  """`resize_taps` as a sparse (out_size, in_size) float32 CSR matrix."""
  import scipy.sparse  # pylint: disable=g-import-not-at-top
  idx, w = resize_taps(in_size, out_size)
  rows = np.repeat(np.arange(out_size), idx.shape[1])
  return scipy.sparse.csr_matrix((w.ravel(), (rows, idx.ravel())),
                                 shape=(out_size, in_size),
                                 dtype=np.float32)


def quantise(normalised: np.ndarray) -> np.ndarray:
  """Values in [0, 1] -> uint8 colour-map indices, as matplotlib's 256-colour maps do."""
  return np.minimum(np.floor(np.asarray(normalised) * 256.0), 255).clip(0).astype(np.uint8)


@functools.lru_cache(maxsize=16)
def _frequency_matrix(n_freq: int, height: int):
  """Frequency resize with the rows reversed: row 0 of the image is the highest frequency."""
  return resize_matrix(n_freq, height)[::-1].tocsr()


def _images_chunk(epochs: np.ndarray, config: SpectrogramConfig, out: np.ndarray) -> None:
  """Fills out (n, height, width) uint8 with the images of a few epochs."""
  n, n_seg = len(epochs), num_segments(config, epochs.shape[1])
  db = _power_t(epochs, config)
  db += np.float32(config.power_floor)
  np.log10(db, out=db)
  db *= 10.0
  # Reduce over frequency first (contiguous rows), then over each epoch's segments.
  low = db.min(axis=0).reshape(n, n_seg).min(axis=1)
  span = db.max(axis=0).reshape(n, n_seg).max(axis=1) - low
  span[span == 0] = 1.0  # a constant picture maps to index 0, as a plot of it would
  rows = _frequency_matrix(db.shape[0], config.image_height) @ db  # (height, n * n_seg)
  # Normalise before the time resize (both are linear): contiguous, n times fewer columns.
  rows = rows.reshape(-1, n, n_seg)
  rows -= low[None, :, None]
  rows *= (256.0 / span)[None, :, None]
  time_t = resize_matrix(n_seg, config.image_width).toarray().T  # (n_seg, width), tiny
  image = (rows.reshape(-1, n_seg) @ time_t).reshape(config.image_height, n, -1)
  np.clip(image, 0, 255, out=image)
  out[...] = image.transpose(1, 0, 2)  # float -> uint8 truncates: floor for values >= 0


def spectrogram_images(epochs: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
  """The fast path: epochs -> uint8 colour-map-index images.

  Args:
    epochs: (n, samples) signal in microvolts, one row per epoch, at config.fs.
    config: STFT and image parameters.

  Returns:
    (n, image_height, image_width) uint8; row 0 is the highest frequency.

  Raises:
    ValueError: epochs is not 2-D or is too short for one STFT segment.
  """
  epochs = np.asarray(epochs)
  if epochs.ndim != 2 or epochs.shape[1] < config.nperseg:
    raise ValueError(f"epochs must be (n, samples>={config.nperseg}), got {epochs.shape}")
  out = np.empty((len(epochs), config.image_height, config.image_width), np.uint8)
  for start in range(0, len(epochs), _CHUNK):
    _images_chunk(epochs[start:start + _CHUNK], config, out[start:start + _CHUNK])
  return out


def reference_images(epochs: np.ndarray,
                     config: SpectrogramConfig,
                     *,
                     colormap: str = "viridis",
                     png_dir: Optional[str] = None,
                     dpi: int = 100) -> np.ndarray:
  """The paper's method: scipy spectrogram, pyplot plot, save PNG, read it back, resize.

  Each epoch is plotted with `pyplot.pcolormesh` in a default-size figure (6.4 x 4.8 in)
  with the axes off, saved as a PNG file without margins, then read back from the file
  and resized to image_height x image_width with PIL's bilinear (antialiased) filter.
  A hundred or more times slower than `spectrogram_images`.

  Args:
    epochs: (n, samples) signal, one row per epoch.
    config: STFT and image parameters.
    colormap: matplotlib colour map name.
    png_dir: where the PNG files go (default: a temporary directory, removed after).
    dpi: dots per inch of the saved pictures.

  Returns:
    (n, image_height, image_width, 3) uint8 RGB.
  """
  # Plotting libraries are needed only for this reference path.
  import tempfile  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory(dir=png_dir) as directory:
    paths = []
    for i, epoch in enumerate(np.asarray(epochs, np.float64)):
      f, t, sxx = scipy.signal.spectrogram(epoch,
                                           fs=config.fs,
                                           window=window(config),
                                           nperseg=config.nperseg,
                                           noverlap=config.noverlap,
                                           nfft=config.nfft)
      plt.figure(dpi=dpi)
      plt.pcolormesh(t,
                     f,
                     10 * np.log10(sxx + config.power_floor),
                     shading="nearest",
                     cmap=colormap)
      plt.axis("off")
      paths.append(os.path.join(directory, f"epoch{i:06d}.png"))
      plt.savefig(paths[-1], bbox_inches="tight", pad_inches=0)
      plt.close()
    out = [
        np.asarray(
            Image.open(p).convert("RGB").resize((config.image_width, config.image_height),
                                                Image.BILINEAR)) for p in paths
    ]
  return np.stack(out)


def colorize(indices: np.ndarray, lut: np.ndarray) -> np.ndarray:
  """uint8 indices -> uint8 RGB through a (256, 3) colour table with values in [0, 1].

  Bytes are truncated, not rounded, as matplotlib's `Colormap(..., bytes=True)` does.
  """
  return (np.asarray(lut)[indices] * 255.0).astype(np.uint8)


def compare_to_reference(fast_rgb: np.ndarray,
                         reference_rgb: np.ndarray,
                         *,
                         tolerance: Optional[int] = 16) -> dict:
  """How closely two RGB image stacks agree: MAE, PSNR and the share of close pixels.

  Returns:
    {"mae": mean absolute difference (0-255 units), "psnr_db": PSNR,
     "within_tolerance": share of pixels whose channels all differ by <= tolerance}.
  """
  diff = fast_rgb.astype(np.float64) - reference_rgb.astype(np.float64)
  mse = float(np.mean(diff * diff))
  return {
      "mae": float(np.mean(np.abs(diff))),
      "psnr_db": float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse),
      "within_tolerance": float(np.mean(np.all(np.abs(diff) <= tolerance, axis=-1)))
  }
