"""The spectrogram image as TensorFlow ops: raw epochs -> uint8 colour-map indices.

The same picture as `spectrogram.spectrogram_images` (the build's numpy path), computed
by a graph that can live inside an exported model, so that a device feeds raw EEG:

    epochs float32 [n, samples] (microvolts, at config.fs)
      -> segments [n, n_seg, nperseg]   reshape into hops + slices + concat (no gather)
      -> minus each segment's mean      scipy's detrend="constant", rounded as numpy's
      -> power [n, n_seg, n_freq]       the folded DFT as dense products (folded_dft)
      -> per-image min and max power    the colour scale (log is monotonic), its low end
                                        raised to the floor (dynamic_range_db)
      -> ln(power + power_floor)        natural logs, as the numpy path
      -> frequency resize, row 0 = highest frequency; x 256 / span; time resize;
         - low * 256 / span; clip to 0..255; floor; uint8

in the numpy path's order of operations. Every product is a 2-D matrix product with a
constant matrix (`folded_dft`, `resize_matrix(...).toarray()`), so the graph holds only
ops in TFLite's builtin set (reshape, strided slice, concatenation, fully connected /
matmul, transpose, reductions, log, minimum, maximum, select, floor, cast); no
`tf.signal` and no sparse ops. The number of samples per epoch is fixed by the caller
(static shapes: the resize matrices depend on the number of segments); the number of
epochs may vary.

Floating-point sums run in a different order than numpy's, so an index that sits on a
quantisation boundary can come out one lower or higher; `frontend_test` bounds this
against `spectrogram_images`. Where an epoch's smallest power is at float32 rounding
level (a spectrum with exact zeros: a noiseless tone, a band-limited synthetic signal),
the colour scale itself is rounding noise, in the numpy path as here, and the two
images can differ by more.
"""

import dataclasses
import math
from typing import Optional

import numpy as np
import tensorflow as tf

from eegmobile import spectrogram
from eegmobile.config import SpectrogramConfig


@dataclasses.dataclass(frozen=True)
class FrontendMatrices:
  """The constant matrices of the front end, float32, laid out for right-multiplication.

  Attributes:
    fold_cos: (nperseg, kc) segment -> cosine-group sums.
    cos: (kc, n_freq) -> real part of the scaled spectrum.
    fold_sin: (nperseg, ks); sin: (ks, n_freq) (ks may be 0: then no imaginary part).
    frequency: (n_freq, image_height) antialiased bilinear resize, highest frequency first.
    time: (n_seg, image_width) antialiased bilinear resize.
  """
  fold_cos: np.ndarray
  cos: np.ndarray
  fold_sin: np.ndarray
  sin: np.ndarray
  frequency: np.ndarray
  time: np.ndarray


def frontend_matrices(config: SpectrogramConfig, samples: int) -> FrontendMatrices:
  """The front end's constants for epochs of `samples` samples.

  Raises:
    ValueError: samples is shorter than one STFT segment.
  """
  if samples < config.nperseg:
    raise ValueError(f"epochs of {samples} samples are shorter than one STFT segment "
                     f"(nperseg={config.nperseg})")
  fold_cos, cos, fold_sin, sin = spectrogram.folded_dft(spectrogram.window(config), config.nfft,
                                                        config.fs)
  n_freq = spectrogram.num_frequencies(config)
  n_seg = spectrogram.num_segments(config, samples)
  # Rows reversed, as the numpy path: row 0 of the image is the highest frequency.
  frequency = spectrogram.resize_matrix(n_freq, config.image_height).toarray()[::-1]
  time = spectrogram.resize_matrix(n_seg, config.image_width).toarray()

  def t(m):
    return np.ascontiguousarray(np.asarray(m, np.float32).T)

  return FrontendMatrices(t(fold_cos), t(cos), t(fold_sin), t(sin), t(frequency), t(time))


def _segments(epochs: tf.Tensor, config: SpectrogramConfig, samples: int) -> tf.Tensor:
  """[n, samples] -> [n, n_seg, nperseg]: STFT segment s is samples s*hop .. s*hop+nperseg-1.

  The epoch is cut into hops of `hop` samples (zero-padded to whole hops); segment s is
  hops s, s+1, ... concatenated, the last one cut short. Reshape, slices and a concat:
  no gather and no tf.signal.frame, so TFLite runs it with builtin ops.
  """
  hop = config.nperseg - config.noverlap
  n_seg = spectrogram.num_segments(config, samples)
  pieces = math.ceil(config.nperseg / hop)  # hops that one segment spans
  n_hops = n_seg - 1 + pieces
  pad = n_hops * hop - samples
  if pad > 0:
    epochs = tf.concat([epochs, tf.zeros_like(epochs[:, :pad])], axis=1)
  hops = tf.reshape(epochs[:, :n_hops * hop], [-1, n_hops, hop])
  parts = []
  for p in range(pieces):
    width = min(hop, config.nperseg - p * hop)
    parts.append(hops[:, p:p + n_seg, :width])
  return parts[0] if len(parts) == 1 else tf.concat(parts, axis=2)


def _add(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  """a + b, as a sum over a new axis of two: Grappler regroups chains of Adds, not this."""
  return tf.reduce_sum(tf.stack([a, b], axis=-1), axis=-1)


def _numpy_order_sum(x: tf.Tensor) -> tf.Tensor:
  """Sum over the last axis with numpy's float32 rounding (its pairwise summation order).

  numpy sums a contiguous float32 row of n <= 128 values in 8 running partial sums, then
  combines them pairwise, then adds the rest one by one (longer rows: halves, recursively).
  Repeating that order makes the segment means bit-identical to the numpy path's. It
  matters: with a DC offset thousands of times the signal, a one-ulp difference in the
  mean leaks into the low-frequency bins by more than the epoch's smallest power, which
  sets the colour scale of the whole image. Each addition is a two-element reduction, so
  that graph optimisation (which turns a chain of Adds into one AddN) cannot regroup it.
  """
  n = int(x.shape[-1])
  if n < 8:
    total = x[..., 0]
    for i in range(1, n):
      total = _add(total, x[..., i])
    return total
  if n <= 128:
    whole = n - n % 8
    partial = x[..., 0:8]
    for i in range(8, whole, 8):
      partial = _add(partial, x[..., i:i + 8])
    pairs = tf.reduce_sum(tf.reshape(partial, tf.concat([tf.shape(partial)[:-1], [4, 2]], 0)), -1)
    quads = tf.reduce_sum(tf.reshape(pairs, tf.concat([tf.shape(pairs)[:-1], [2, 2]], 0)), -1)
    total = tf.reduce_sum(quads, -1)  # ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
    for i in range(whole, n):
      total = _add(total, x[..., i])
    return total
  half = n // 2
  half -= half % 8
  return _add(_numpy_order_sum(x[..., :half]), _numpy_order_sum(x[..., half:]))


def _dot(x: tf.Tensor, matrix: np.ndarray) -> tf.Tensor:
  """[..., k] @ (k, m): as one 2-D product (TFLite: FULLY_CONNECTED)."""
  shape = tf.shape(x)
  flat = tf.matmul(tf.reshape(x, [-1, matrix.shape[0]]), tf.constant(matrix))
  return tf.reshape(flat, tf.concat([shape[:-1], [matrix.shape[1]]], axis=0))


def spectrogram_images(epochs: tf.Tensor,
                       config: SpectrogramConfig,
                       matrices: Optional[FrontendMatrices] = None) -> tf.Tensor:
  """Raw epochs -> the build's uint8 colour-map-index images, as TensorFlow ops.

  Args:
    epochs: float32 [n, samples] in microvolts at config.fs; samples must be static.
    config: STFT and image parameters (a build's manifest `config.spectrogram`).
    matrices: precomputed `frontend_matrices(config, samples)` (computed if None).

  Returns:
    uint8 [n, image_height, image_width]; row 0 is the highest frequency.

  Raises:
    ValueError: epochs is not 2-D with a static number of samples, or is shorter than
      one STFT segment.
  """
  epochs = tf.convert_to_tensor(epochs, tf.float32)
  if epochs.shape.rank != 2 or epochs.shape[1] is None:
    raise ValueError(f"epochs must be [n, samples] with a static number of samples, "
                     f"got shape {epochs.shape}")
  samples = int(epochs.shape[1])
  if matrices is None:
    matrices = frontend_matrices(config, samples)
  segments = _segments(epochs, config, samples)
  # detrend="constant" before the product, as the numpy path (exact for a flat segment),
  # rounded as numpy rounds its mean.
  total = _numpy_order_sum(segments)
  # A divisor as large as the sums: inside a graph, a division by a scalar constant runs
  # as a multiplication by its reciprocal, which rounds differently.
  mean = tf.math.divide(total, tf.fill(tf.shape(total), float(config.nperseg)))
  segments -= mean[:, :, None]
  real = _dot(_dot(segments, matrices.fold_cos), matrices.cos)  # [n, n_seg, n_freq]
  power = real * real
  if matrices.sin.shape[0]:
    imaginary = _dot(_dot(segments, matrices.fold_sin), matrices.sin)
    power += imaginary * imaginary
  low = tf.reduce_min(tf.reduce_min(power, axis=2), axis=1)  # [n]
  high = tf.reduce_max(tf.reduce_max(power, axis=2), axis=1)
  floor = spectrogram.scale_floor(1.0, config)  # the floor's ratio to the highest power
  if floor is not None:  # the colour scale's floor, as the numpy path
    floor = high * tf.constant(floor, tf.float32)
    low = tf.maximum(low, floor)
    power = tf.maximum(power, floor[:, None, None])
  addend = tf.constant(config.power_floor, tf.float32)
  low, high = tf.math.log(low + addend), tf.math.log(high + addend)
  span = high - low
  span = tf.where(tf.equal(span, 0.0), tf.ones_like(span), span)  # constant picture -> 0
  log_power = tf.math.log(power + addend)  # natural logs, as the numpy path
  rows = _dot(log_power, matrices.frequency)  # [n, n_seg, height]
  rows *= (256.0 / span)[:, None, None]
  by_frequency = tf.transpose(rows, [0, 2, 1])  # [n, height, n_seg]
  image = _dot(by_frequency, matrices.time)  # [n, height, width]
  image -= (low * 256.0 / span)[:, None, None]
  image = tf.clip_by_value(image, 0.0, 255.0)
  # Truncation, as the numpy path's float -> uint8: floor for values >= 0.
  return tf.cast(tf.floor(image), tf.uint8)


def images_fn(config: SpectrogramConfig, samples: int):
  """A function epochs [n, samples] float32 -> uint8 images, its constants built once.

  For `tf.data.Dataset.map` and for `tf.function`s with a fixed input signature.
  """
  matrices = frontend_matrices(config, samples)

  def images(epochs):
    return spectrogram_images(epochs, config, matrices)

  return images
