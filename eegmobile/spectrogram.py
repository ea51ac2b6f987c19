"""Spectrogram images: one 30 s epoch -> one uint8 image of colour-map indices.

The EEGMobile paper computed `scipy.signal.spectrogram(fs=100, nperseg=30, noverlap=16,
nfft=1024)` per epoch, plotted it with a colour map, saved the figure and resized the
saved picture to 224x224. `reference_images` does exactly that (it is slow: a figure per
epoch). `spectrogram_images` computes the same picture directly, for many epochs at once:

1. STFT power as small matrix products: after removing each segment's mean, the
   window, the zero-padded DFT and the density scale are linear in the segment, so they
   fold into a real cosine and a real sine matrix; the window's symmetry halves both
   (`folded_dft`). Frequency-major output makes the next steps contiguous; chunks of a
   few epochs keep the products in cache.
2. Power -> dB, with scipy's density scaling and one-sided doubling.
3. Per-image min/max in dB: what a colour-mapped plot's default normalisation uses.
4. Resize (frequency x time) -> (image_height x image_width) with PIL's antialiased
   triangle (bilinear) filter, as two sparse matrix products (time on the transposed
   chunk, so both run over whole contiguous rows); normalisation is affine, so it
   commutes with the resize and is applied to the smaller arrays after it.
5. Quantise to 256 colour-map indices as matplotlib does (floor(x * 256), 1.0 -> 255),
   low frequency at the bottom (row 0 is the highest frequency).

Storing the index instead of RGB keeps one byte per pixel; the reader applies the colour
map (viridis by default, or grey). `spectrogram_test` pins (1)-(2) against scipy and
`bench/build_throughput.py` measures how closely (5) matches the reference pictures.
"""

import concurrent.futures
import contextlib
import functools
import os
import tempfile
import threading
from typing import Iterator, Optional

import numpy as np
from scipy.linalg import blas
import scipy.sparse
import threadpoolctl

from eegmobile import colormaps
from eegmobile import plots
from eegmobile.config import SpectrogramConfig

# Epochs whose elementwise steps and resizes run together (their products run one by one).
_CHUNK = 4
# Windows whose scipy spec takes one parameter, e.g. ("tukey", 0.25).
_PARAMETRIC_WINDOWS = frozenset({"tukey", "kaiser", "gaussian", "exponential"})


def window(config: SpectrogramConfig) -> np.ndarray:
  """The STFT window as scipy.signal.spectrogram builds it (periodic, length nperseg).

  A Beam build computes it once on the driver and hands the array to its workers
  (`spectrogram_images(..., window=...)`), which then need not import scipy.signal. The
  Tukey window (the default) is computed here with scipy's own formula, equal to its bit
  for bit (`spectrogram_test`), because importing scipy.signal costs a staged night a
  noticeable share of its time (BUILD_NOTES.md "Start-up"); other windows come from
  scipy.signal.
  """
  if config.window == "tukey" and 0 < config.window_param < 1 and config.nperseg > 1:
    return _periodic_tukey(config.nperseg, config.window_param)
  # Lazy: scipy.signal is slow to import (BUILD_NOTES.md "Start-up"), see above.
  import scipy.signal  # pylint: disable=g-import-not-at-top
  spec = (config.window,
          config.window_param) if config.window in _PARAMETRIC_WINDOWS else config.window
  return scipy.signal.get_window(spec, config.nperseg)


def _periodic_tukey(m: int, alpha: float) -> np.ndarray:
  """scipy.signal.windows.tukey(m, alpha, sym=False), same operations in the same order."""
  m += 1  # periodic: the symmetric window one longer, its last sample dropped
  n = np.arange(0, m, dtype=np.float64)
  width = int(np.floor(alpha * (m - 1) / 2.0))
  n1, n2, n3 = n[0:width + 1], n[width + 1:m - width - 1], n[m - width - 1:]
  w1 = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * n1 / alpha / (m - 1))))
  w2 = np.ones(n2.shape)
  w3 = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * n3 / alpha / (m - 1))))
  return np.concatenate((w1, w2, w3))[:-1]


def _checked_window(config: SpectrogramConfig, win: Optional[np.ndarray]) -> np.ndarray:
  """The given window as float64 (checked against nperseg), or `window(config)` if None."""
  if win is None:
    return window(config)
  win = np.asarray(win, np.float64)
  if win.shape != (config.nperseg,):
    raise ValueError(f"window must have shape ({config.nperseg},) (nperseg), got {win.shape}")
  return win


def num_frequencies(config: SpectrogramConfig) -> int:
  return config.nfft // 2 + 1


def num_segments(config: SpectrogramConfig, samples: int) -> int:
  return (samples - config.noverlap) // (config.nperseg - config.noverlap)


def folded_dft(win: np.ndarray, nfft: int, fs: float) -> tuple[np.ndarray, ...]:
  """The one-sided STFT power density of a segment as two small real products.

  For a detrended segment y (length L = len(win)) the power density in bin k is
  s_k |sum_n win[n] y[n] exp(-2 pi i k n / nfft)|^2 (s_k: scipy's density scale, doubled
  for the folded negative frequencies). Measuring the phase from the window's centre of
  symmetry c leaves |.|^2 unchanged and makes the two mirror samples n and 2c - n of a
  symmetric window share one cosine (their sum) and one sine (their difference). So

      power = (cos @ (fold_cos @ y))**2 + (sin @ (fold_sin @ y))**2

  with about L/2 columns in `cos` and in `sin` where the plain DFT needs L in each: half
  the multiply-adds of the STFT, the build's largest cost. Windows are symmetric about
  L/2 (scipy's periodic windows, its default for spectral analysis, sample 0 unpaired)
  or about (L - 1)/2 (symmetric windows); any other window is used unfolded, still exact.
  Samples whose weight is 0 are left out.

  Args:
    win: the window, length L.
    nfft: DFT length (>= L).
    fs: sampling rate, Hz.

  Returns:
    (fold_cos (kc, L), cos (n_freq, kc), fold_sin (ks, L), sin (n_freq, ks)), float32;
    the fold matrices hold only 0, 1 and -1.
  """
  win = np.asarray(win, np.float64)
  length = len(win)
  n_freq = nfft // 2 + 1
  symmetric = False
  centre2 = length  # twice the phase centre; any centre is exact, a symmetric one folds
  for candidate in (length, length - 1):
    mirror = candidate - np.arange(length)
    inside = (mirror >= 0) & (mirror < length)
    if np.allclose(win[inside], win[mirror[inside]], rtol=1e-12, atol=0):
      symmetric, centre2 = True, candidate
      break
  cos_groups, sin_groups = [], []  # (representative n, {sample: sign})
  for n in range(length):
    if win[n] == 0:
      continue
    partner = centre2 - n
    if symmetric and 0 <= partner < length and partner != n:
      if n < partner:  # the pair, once: cosine of the sum, sine of the difference
        cos_groups.append((partner, {n: 1.0, partner: 1.0}))
        sin_groups.append((partner, {n: -1.0, partner: 1.0}))
      continue
    cos_groups.append((n, {n: 1.0}))
    if 2 * n != centre2:  # the centre sample has no sine term
      sin_groups.append((n, {n: 1.0}))
  scale = np.full(n_freq, 1.0 / (fs * np.sum(win * win)))
  scale[1:-1 if nfft % 2 == 0 else None] *= 2  # one-sided: fold negative frequencies
  k = np.arange(n_freq)[:, None]

  def matrices(groups, trig):
    fold = np.zeros((len(groups), length))
    for row, (_, members) in enumerate(groups):
      for sample, sign in members.items():
        fold[row, sample] = sign
    reps = np.array([r for r, _ in groups], np.float64)
    phase = 2 * np.pi * k * (reps[None, :] - centre2 / 2) / nfft
    coefficients = np.sqrt(scale)[:, None] * win[reps.astype(int)][None, :] * trig(phase)
    return fold.astype(np.float32), np.ascontiguousarray(coefficients, np.float32)

  fold_cos, cos = matrices(cos_groups, np.cos)
  fold_sin, sin = matrices(sin_groups, lambda x: -np.sin(x))
  return fold_cos, cos, fold_sin, sin


@functools.lru_cache(maxsize=8)
def _cached_folded_dft(win_bytes: bytes, nfft: int, fs: float) -> tuple[np.ndarray, ...]:
  return folded_dft(np.frombuffer(win_bytes, np.float64), nfft, fs)


def _stft_matrices(config: SpectrogramConfig, win: np.ndarray) -> tuple[np.ndarray, ...]:
  """`folded_dft` of a float64 window, computed once per window and STFT length."""
  return _cached_folded_dft(win.tobytes(), config.nfft, config.fs)


def _segments(epochs: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
  """(n, n_segments, nperseg) float32: every detrended STFT segment of each epoch."""
  step = config.nperseg - config.noverlap
  view = np.lib.stride_tricks.sliding_window_view(np.asarray(epochs, np.float32),
                                                  config.nperseg,
                                                  axis=1)[:, ::step]
  # One contiguous row per segment: numpy sums each row pairwise whatever the number of
  # epochs (a reduction over a 3-D view may be ordered otherwise, and round otherwise).
  segments = np.ascontiguousarray(view).reshape(-1, config.nperseg)
  # detrend="constant", done explicitly rather than folded into the matrix: exact for a
  # flat segment and free of float32 cancellation when the signal has a DC offset.
  return (segments - segments.mean(axis=1, keepdims=True)).reshape(view.shape)


def _product(left: np.ndarray, right: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
  """left @ right, float32, C order (into `out` if given), by scipy's sgemm: its OpenBLAS
  knows newer CPUs than numpy 1.26's, which runs its generic SSE3 kernels on some
  (BUILD_NOTES.md, "Spectrogram images")."""
  # C-order operands as transposed Fortran ones; out.T is Fortran-ordered, written in place.
  if out is None:
    return blas.sgemm(1.0, right.T, left.T).T
  blas.sgemm(1.0, right.T, left.T, c=out.T, overwrite_c=True)
  return out


def _powers(epochs: np.ndarray, config: SpectrogramConfig, win: np.ndarray) -> np.ndarray:
  """(n, n_freq, n_segments) float32 power density, each epoch frequency-major.

  Each epoch's products run alone, with the same shapes for every epoch, on one BLAS
  thread (`_one_thread`); everything else is elementwise or a per-row sparse sum, whose
  results do not depend on which epochs share the array. So an epoch's bytes depend on
  the epoch alone, not on the epochs computed with it.
  """
  fold_cos, cos, fold_sin, sin = _stft_matrices(config, win)
  segments = _segments(epochs, config)
  power = np.empty((len(segments), cos.shape[0], segments.shape[1]), np.float32)
  imaginary = np.empty_like(power) if sin.shape[1] else None
  for k, epoch in enumerate(segments):
    columns = epoch.T  # (nperseg, n_segments)
    _product(cos, _product(fold_cos, columns), out=power[k])
    if imaginary is not None:
      _product(sin, _product(fold_sin, columns), out=imaginary[k])
  np.multiply(power, power, out=power)
  if imaginary is not None:
    np.multiply(imaginary, imaginary, out=imaginary)
    power += imaginary
  return power


_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved: list[int] = []


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
  """threadpoolctl's controllers of the BLAS libraries loaded here (numpy's, scipy's)."""
  return tuple(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)


def _set_blas_threads(controller, threads: int) -> None:
  """Sets a BLAS library's thread count for the whole process, from any thread.

  threadpoolctl (>= 3.6) applies an OpenBLAS limit only from the first thread that set one,
  while that thread lives, and silently ignores the others: once a caller's main thread
  (or scikit-learn) had limited OpenBLAS, images computed on another thread (a Beam
  worker, staging's producer) ran on every BLAS thread, and with OpenBLAS's Haswell
  kernels their bytes changed. OpenBLAS's count is process-wide whichever thread sets it,
  so it is set directly (`_real_set_num_threads`, threadpoolctl's own setter behind that
  check), and the refcount in `_one_thread` restores it once no image is being computed.
  """
  setter = getattr(controller, "_real_set_num_threads", None) or controller.set_num_threads
  setter(threads)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
  """BLAS on one thread while images are computed (re-entrant, thread-safe).

  OpenBLAS splits a product between its threads differently for different thread counts,
  and the split changes how the edge columns are summed: the bytes of an image would depend
  on how many BLAS threads ran. Pinned to one, they do not (images are computed in
  parallel over epochs instead, `spectrogram_images(workers=...)`), whichever thread
  computes them (`_set_blas_threads`).
  """
  global _blas_users, _blas_saved
  with _blas_lock:
    if _blas_users == 0:
      libraries = _blas_libraries()
      _blas_saved = [c.num_threads for c in libraries]
      for controller in libraries:
        _set_blas_threads(controller, 1)
    _blas_users += 1
  try:
    yield
  finally:
    with _blas_lock:
      _blas_users -= 1
      if _blas_users == 0:
        for controller, threads in zip(_blas_libraries(), _blas_saved):
          _set_blas_threads(controller, threads)


def power_spectrogram(epochs: np.ndarray,
                      config: SpectrogramConfig,
                      *,
                      window: Optional[np.ndarray] = None) -> np.ndarray:
  """STFT power density, as scipy.signal.spectrogram(...)[2] computes it, in float32.

  Args:
    epochs: (n, samples) signal, one row per epoch.
    config: STFT parameters.
    window: the STFT window (`window(config)`); computed with scipy if None.

  Returns:
    (n, n_freq, n_segments) float32 power spectral density.

  Raises:
    ValueError: a window whose length is not config.nperseg.
  """
  win = _checked_window(config, window)
  with _one_thread():
    return _powers(np.atleast_2d(epochs), config, win)


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
  idx, w = resize_taps(in_size, out_size)
  rows = np.repeat(np.arange(out_size), idx.shape[1])
  return scipy.sparse.csr_matrix((w.ravel(), (rows, idx.ravel())),
                                 shape=(out_size, in_size),
                                 dtype=np.float32)


@functools.lru_cache(maxsize=16)
def _frequency_matrix(n_freq: int, height: int):
  """Frequency resize with the rows reversed: row 0 of the image is the highest frequency."""
  return resize_matrix(n_freq, height)[::-1].tocsr()


@functools.lru_cache(maxsize=16)
def _block_diagonal(matrix_of: str, in_size: int, out_size: int, n: int):
  """n copies of a resize matrix on the diagonal, (n * out_size, n * in_size) CSR: one sparse
  product resizes n stacked epochs, each row summed alone (so in the same order for any n)."""
  block = _frequency_matrix(in_size, out_size) if matrix_of == "frequency" else resize_matrix(
      in_size, out_size)
  return scipy.sparse.block_diag([block] * n, format="csr")


def scale_floor(high: np.float32, config: SpectrogramConfig) -> Optional[np.float32]:
  """The lowest power an image's colour scale shows: `dynamic_range_db` below its highest.

  None (no floor) for a config without one (image version 1). A floor keeps the scale
  off float32 rounding noise: an epoch whose smallest power is at rounding level (a
  noiseless tone) would otherwise get a scale that rounding sets.
  """
  if config.dynamic_range_db is None:
    return None
  return np.float32(high * np.float32(10.0**(-config.dynamic_range_db / 10.0)))


def _images_chunk(epochs: np.ndarray, config: SpectrogramConfig, win: np.ndarray,
                  out: np.ndarray) -> None:
  """Fills out (n, height, width) uint8 with the images of a few epochs."""
  power = _powers(epochs, config, win)  # (n, n_freq, n_seg)
  n, n_freq, n_seg = power.shape
  # Each image's colour scale: its lowest and highest power (log is monotonic), the lowest
  # raised to the floor, under which every power counts as the floor.
  flat = power.reshape(n, -1)
  low, high = flat.min(axis=1), flat.max(axis=1)
  floor = scale_floor(high, config)
  if floor is not None and (low < floor).any():
    np.maximum(power, floor[:, None, None], out=power)  # changes no power of the others
    low = np.maximum(low, floor)
  addend = np.float32(config.power_floor)
  tiny = low + addend != low  # else adding it changes no float32 value of that epoch
  if tiny.any():
    power[tiny] += addend
  low, high = np.log(low + addend), np.log(high + addend)
  span = high - low
  span[span == 0] = 1.0  # a constant picture maps to index 0, as a plot of it would
  # Natural logs (numpy computes them with SIMD on AVX2 as on AVX-512; log10 only with
  # AVX-512): (dB - low dB) * 256 / span dB is (ln - ln low) * 256 / span ln.
  np.log(power, out=power)
  # Both resizes average (their weights sum to 1), so they commute with the affine map
  # (ln - low) * 256 / span, which is therefore applied to the smaller arrays after them.
  rows = _block_diagonal("frequency", n_freq, config.image_height, n) @ power.reshape(-1, n_seg)
  rows = rows.reshape(n, config.image_height, n_seg)
  rows *= (np.float32(256.0) / span)[:, None, None]
  # Time-major rows, so that the time resize is a sparse product over whole rows.
  by_time = np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(-1, config.image_height)
  image = _block_diagonal("time", n_seg, config.image_width, n) @ by_time
  image = image.reshape(n, config.image_width, config.image_height)
  image -= (low * np.float32(256.0) / span)[:, None, None]
  np.clip(image, 0, 255, out=image)
  # Float -> uint8 truncates: floor for values >= 0, as matplotlib's quantisation.
  out[...] = image.transpose(0, 2, 1)


def spectrogram_images(epochs: np.ndarray,
                       config: SpectrogramConfig,
                       *,
                       window: Optional[np.ndarray] = None,
                       workers: int = 1) -> np.ndarray:
  """The fast path: epochs -> uint8 colour-map-index images.

  Args:
    epochs: (n, samples) signal in microvolts, one row per epoch, at config.fs.
    config: STFT and image parameters.
    window: the STFT window (`window(config)`, e.g. computed once by a Beam driver);
      computed with scipy if None.
    workers: threads computing images (an image's bytes depend on its epoch alone, not on
      the number of workers or epochs per call: `_powers`).

  Returns:
    (n, image_height, image_width) uint8; row 0 is the highest frequency.

  Raises:
    ValueError: epochs is not 2-D or is too short for one STFT segment, or a window
      whose length is not config.nperseg.
  """
  win = _checked_window(config, window)
  epochs = np.asarray(epochs)
  if epochs.ndim != 2 or epochs.shape[1] < config.nperseg:
    raise ValueError(f"epochs must be (n, samples>={config.nperseg}), got {epochs.shape}")
  out = np.empty((len(epochs), config.image_height, config.image_width), np.uint8)
  chunks = [slice(i, i + _CHUNK) for i in range(0, len(epochs), _CHUNK)]
  with _one_thread():
    if workers <= 1 or len(chunks) < 2:
      for chunk in chunks:
        _images_chunk(epochs[chunk], config, win, out[chunk])
    else:  # numpy, BLAS and scipy.sparse release the GIL: threads share the chunks
      with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda c: _images_chunk(epochs[c], config, win, out[c]), chunks))
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
  plt = plots.pyplot()
  # Lazy: only this reference path needs PIL and scipy.signal (see `window`).
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import scipy.signal  # pylint: disable=g-import-not-at-top

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


def colorize(indices: np.ndarray, lut: str | np.ndarray) -> np.ndarray:
  """uint8 indices -> uint8 RGB [..., 3] through a colour map (`eegmobile.colormaps.rgb_table`).

  Args:
    indices: uint8 colour-map indices, any shape.
    lut: a colour map name ("viridis", "grey") or a (256, 3) table with values in [0, 1].

  Returns:
    RGB bytes, truncated, not rounded, as matplotlib's `Colormap(..., bytes=True)`.

  Raises:
    ValueError: an unknown name or a table that is not (256, 3) in [0, 1].
  """
  return colormaps.rgb_table(lut, np.uint8)[indices]


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
