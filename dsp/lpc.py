"""Linear prediction building blocks: windowed autocorrelation, Levinson-Durbin,
frequency-scaled envelopes, and the lattice filters that whiten and re-colour.

All functions work in place on preallocated float64 arrays at given offsets, so a
kernel can keep everything in its one state array and allocate nothing.

- ``autocorr_step`` keeps a running autocorrelation under a causal two-pole
  (Barnwell) window ``w(n) = (n + 1) a^n``: two one-pole recursions per lag, one
  multiply-add per lag and sample, no frames to buffer.
- ``levinson`` turns lags 0..p into reflection coefficients ``k1..kp``
  (convention ``A(z) = 1 + sum a_j z^-j``, ``k_i = a_i`` of order i). It stops
  early on a non-positive error or ``|k| >= K_MAX``, so the filters it yields are
  always minimum-phase, and interpolating reflection coefficients keeps them so.
- ``scale_lags`` gives the autocorrelation of the same spectrum stretched in
  frequency by ``f``: if ``S'(w) = S(w / f)`` then ``r'(t) = f r(f t)``, so the
  lags are read at ``f k`` (Catmull-Rom interpolation between integer lags; the
  gain ``f`` cancels in the normalised prediction). This is how the pitch
  shifter moves formants: an all-pole fit to ``r'`` is the envelope moved by f.
- ``lattice_whiten`` is the FIR lattice ``A(z)``; ``lattice_colour`` the IIR
  lattice ``1 / A(z)``. With the same coefficient sequence they are exact
  inverses, even while the coefficients change every sample.
"""

from __future__ import annotations

import math

from numba import njit

from dsp.effect import F64

K_MAX = 0.9995  # reflection coefficients are held below this (stability margin)


@njit(cache=True, nogil=True, inline="always")
def autocorr_step(hist: F64, newest: int, alpha: float, s1: F64, s2: F64) -> None:  # RT
    """Add one sample to a two-pole-windowed autocorrelation of ``len(s1)`` lags.

    ``hist[newest - k]`` is the sample k steps back (a contiguous history); ``s2[k]``
    holds lag k afterwards (``s1`` is the first stage). Pass separate views (slices)
    so the compiler sees three arrays and vectorises the loop.
    """
    x0 = hist[newest]
    for k in range(s1.shape[0]):
        v = alpha * s1[k] + x0 * hist[newest - k]
        s1[k] = v
        s2[k] = alpha * s2[k] + v


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def levinson(  # RT
    r: F64, r_at: int, order: int, k_out: F64, k_at: int, a: F64, a_at: int
) -> float:
    """Reflection coefficients of lags ``r[r_at : r_at + order + 1]``; returns E / r0.

    ``a[a_at : a_at + order + 1]`` is scratch. Coefficients past an early stop are 0.
    """
    for i in range(order):
        k_out[k_at + i] = 0.0
    r0: float = r[r_at]
    if not r0 > 1e-30:
        return 1.0
    err = r0
    a[a_at] = 1.0
    for i in range(1, order + 1):
        acc = r[r_at + i]
        for j in range(1, i):
            acc += a[a_at + j] * r[r_at + i - j]
        k = -acc / err
        if not abs(k) < K_MAX:
            break
        # a_j <- a_j + k a_{i-j}, symmetric pairs updated together
        half = i // 2
        for j in range(1, half + 1):
            lo = a[a_at + j]
            hi = a[a_at + i - j]
            a[a_at + j] = lo + k * hi
            if j != i - j:
                a[a_at + i - j] = hi + k * lo
        a[a_at + i] = k
        k_out[k_at + i - 1] = k
        err *= 1.0 - k * k
    return err / r0


@njit(cache=True, nogil=True, inline="always")
def _lag(r: F64, r_at: int, avail: int, lag: int) -> float:  # RT
    lag = abs(lag)
    v: float = r[r_at + lag] if lag < avail else 0.0
    return v


@njit(cache=True, nogil=True)
def scale_lags(  # RT
    r: F64, r_at: int, avail: int, f: float, out: F64, out_at: int, n: int
) -> None:
    """``out[k] = r(f k)`` for k < n by Catmull-Rom interpolation of ``r[0..avail)``.

    Lags are symmetric (``r(-k) = r(k)``); past ``avail`` they are taken as 0.
    """
    for k in range(n):
        pos = f * k
        i = math.floor(pos)
        t = pos - i
        v0 = _lag(r, r_at, avail, i - 1)
        v1 = _lag(r, r_at, avail, i)
        v2 = _lag(r, r_at, avail, i + 1)
        v3 = _lag(r, r_at, avail, i + 2)
        if t == 0.0:
            out[out_at + k] = v1
            continue
        c1 = 0.5 * (v2 - v0)
        c2 = v0 - 2.5 * v1 + 2.0 * v2 - 0.5 * v3
        c3 = 0.5 * (v3 - v0) + 1.5 * (v1 - v2)
        out[out_at + k] = ((c3 * t + c2) * t + c1) * t + v1


@njit(cache=True, nogil=True, inline="always")
def lattice_whiten(x: float, k: F64, k_at: int, b: F64, b_at: int, order: int) -> float:  # RT
    """One sample through the FIR lattice A(z); ``b[b_at : b_at + order + 1]`` is its state."""
    f = x
    prev = b[b_at]
    b[b_at] = x
    for i in range(1, order + 1):
        ki = k[k_at + i - 1]
        nf = f + ki * prev
        nb = prev + ki * f
        prev = b[b_at + i]
        b[b_at + i] = nb
        f = nf
    return f


@njit(cache=True, nogil=True, inline="always")
def lattice_colour(e: float, k: F64, k_at: int, b: F64, b_at: int, order: int) -> float:  # RT
    """One sample through the IIR lattice 1 / A(z), the exact inverse of ``lattice_whiten``."""
    f = e
    for i in range(order, 0, -1):
        ki = k[k_at + i - 1]
        f -= ki * b[b_at + i - 1]
        b[b_at + i] = b[b_at + i - 1] + ki * f
    b[b_at] = f
    return f
