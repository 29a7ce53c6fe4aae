"""A small preallocated FFT for nopython code: iterative radix-2 complex FFT and a real FFT.

``numpy.fft`` is not available inside ``@njit`` code, so the spectrum analyser
uses this one. A plan (``FFTPlan``) holds everything that depends only on the
size: the bit-reversal permutation and the twiddle factors, each computed
directly with ``cos``/``sin`` (no recurrences, so the error stays at a few ulp
times log2(n)). The transforms then work in place on preallocated arrays and
allocate nothing:

- ``fft_inplace(a, bitrev, twiddle)``: forward complex DFT of ``a`` (length m,
  a power of two), ``X[k] = sum a[n] exp(-2 pi i k n / m)``, the numpy sign
  convention.
- ``rfft_into(x, out, work, bitrev, twiddle, post)``: the ``n//2 + 1`` bins of
  the DFT of the real ``x`` (length n), as ``numpy.fft.rfft``, computed as one
  complex FFT of size n/2 over the even/odd samples packed as re/im, then split.

``rfft`` and ``fft`` are allocating conveniences for tests and offline code.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]
I64 = npt.NDArray[np.int64]


def is_power_of_two(n: int) -> bool:
    return n >= 2 and n & (n - 1) == 0


def _bitrev(m: int) -> I64:
    bits = m.bit_length() - 1
    idx = np.arange(m, dtype=np.int64)
    rev = np.zeros(m, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def _roots(count: int, period: int) -> C128:
    """``exp(-2 pi i k / period)`` for k < count, each from cos/sin of its own angle."""
    angle = -2.0 * np.pi * np.arange(count, dtype=np.float64) / period
    return np.cos(angle) + 1j * np.sin(angle)


class FFTPlan:
    """Bit-reversal table and twiddles for a real FFT of size ``n`` (complex FFT of n/2)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or not is_power_of_two(n) or n < 4:
            raise ValueError(f"FFT size {n!r} must be a power of two >= 4")
        self.n = n
        m = n // 2
        self.bitrev: I64 = _bitrev(m)
        self.twiddle: C128 = _roots(m // 2, m)  # for the complex FFT of size m
        self.post: C128 = _roots(m + 1, n)  # for the even/odd split of the real FFT
        self.work: C128 = np.zeros(m, dtype=np.complex128)

    def rfft_into(self, x: F64, out: C128) -> None:  # RT
        """``out[:n//2+1] = rfft(x)`` without allocating (x float64 of length n)."""
        rfft_into(x, out, self.work, self.bitrev, self.twiddle, self.post)


@njit(cache=True, nogil=True)
def fft_inplace(a: C128, bitrev: I64, twiddle: C128) -> None:  # RT
    """Forward complex DFT of ``a`` in place (len(a) a power of two, twiddle of len/2)."""
    m = a.shape[0]
    for i in range(m):
        j = bitrev[i]
        if j > i:
            t = a[i]
            a[i] = a[j]
            a[j] = t
    size = 2
    while size <= m:
        half = size // 2
        stride = m // size
        for start in range(0, m, size):
            for k in range(half):
                w = twiddle[k * stride]
                lo = start + k
                hi = lo + half
                t = w * a[hi]
                u = a[lo]
                a[lo] = u + t
                a[hi] = u - t
        size *= 2


@njit(cache=True, nogil=True)
def rfft_into(  # RT
    x: F64, out: C128, work: C128, bitrev: I64, twiddle: C128, post: C128
) -> None:
    """The ``n//2 + 1`` bins of the DFT of real ``x`` (length n) into ``out``."""
    m = work.shape[0]
    for i in range(m):
        work[i] = complex(x[2 * i], x[2 * i + 1])
    fft_inplace(work, bitrev, twiddle)
    for k in range(m + 1):
        zk = work[k % m]
        zc = work[(m - k) % m].conjugate()
        even = 0.5 * (zk + zc)
        odd = -0.5j * (zk - zc)
        out[k] = even + post[k] * odd


def rfft(x: npt.ArrayLike) -> C128:
    """``numpy.fft.rfft`` of a real signal whose length is a power of two (allocates)."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"rfft: expected a 1-D signal, got shape {arr.shape}")
    p = FFTPlan(arr.shape[0])
    out = np.empty(arr.shape[0] // 2 + 1, dtype=np.complex128)
    p.rfft_into(arr, out)
    return out


def fft(x: npt.ArrayLike) -> C128:
    """``numpy.fft.fft`` of a complex signal whose length is a power of two (allocates)."""
    arr = np.array(x, dtype=np.complex128)
    if arr.ndim != 1 or not is_power_of_two(arr.shape[0]):
        raise ValueError(f"fft: length must be a power of two >= 2, got shape {arr.shape}")
    m = arr.shape[0]
    bits = _bitrev(m)
    fft_inplace(arr, bits, _roots(max(m // 2, 1), m))
    return arr
