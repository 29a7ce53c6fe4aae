"""Short-time power spectra for analysis: centred Hann frames, numpy's real FFT.

Frame i is centred on sample ``i * hop`` (the signal is zero-padded by half a frame
at both ends), so frame times are ``i * hop / sr`` exactly. Offline code: it
allocates as it goes, which is fine (it never runs on the audio thread); spectra come
in chunks of frames so that callers can reduce them on the way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@functools.cache
def hann(n: int) -> F32:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def frame_count(samples: int, hop: int) -> int:
    return 1 + samples // hop


def power_chunks(y: F32, n_fft: int, hop: int, chunk: int = 512) -> Iterator[tuple[int, F32]]:
    """|STFT|^2 of the mono float32 ``y``, ``chunk`` frames at a time: yields (index of
    the first frame, power (frames, n_fft // 2 + 1) float32). Consumers reduce each chunk
    (to mel bands, to chroma) so a long track never holds its whole spectrogram."""
    half = n_fft // 2
    padded = np.zeros(y.shape[0] + 2 * half, dtype=np.float32)
    padded[half : half + y.shape[0]] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    n = frame_count(y.shape[0], hop)
    window = hann(n_fft)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        spec = np.fft.rfft(frames[start:stop] * window, axis=1)
        yield start, (spec.real**2 + spec.imag**2).astype(np.float32)


def power_spectrogram(y: F32, n_fft: int, hop: int) -> F32:
    """The whole |STFT|^2 of ``y``: shape (frames, n_fft // 2 + 1), float32."""
    out = np.empty((frame_count(y.shape[0], hop), n_fft // 2 + 1), dtype=np.float32)
    for start, power in power_chunks(y, n_fft, hop):
        out[start : start + power.shape[0]] = power
    return out
