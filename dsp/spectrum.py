"""Spectrum analyser for displays: windowed FFT frames in dB, optional log bands, smoothing.

Every ``hop`` samples (on a grid of absolute sample positions, so the frames do
not depend on how the stream is cut into blocks) the analyser takes the last
``fft_size`` samples of the analysed signal (the mean of the channels, or one
channel), applies the window (periodic Hann or 4-term Blackman-Harris), runs
dsp/fft.py's real FFT and converts each bin to dB:

- Window gain correction: bins are scaled by ``2 / sum(window)``, so a sine of
  amplitude A at a bin centre reads ``20 log10(A)`` there (a full-scale sine
  reads 0 dBFS); the DC and Nyquist bins by ``1 / sum(window)`` (a constant A
  reads ``20 log10(A)``). A sine between bins reads lower by the window's
  scalloping loss (at most 1.42 dB for Hann, 0.83 dB for Blackman-Harris).
- Nothing reads below ``FLOOR_DB`` (-200 dB); exact silence reads ``FLOOR_DB``.
- Before ``fft_size`` samples have arrived, the missing past counts as silence.

With ``bands=N`` the bins are mapped to N log-spaced bands between 20 Hz and
20 kHz (edges ``20 * 1000 ** (i / N)``, band b covering ``[edge b, edge b+1)``):

- a band reads the largest bin whose centre lies in it; a band too narrow to
  hold a bin centre reads the dB value interpolated at its geometric centre;
  bands above Nyquist read ``FLOOR_DB``;
- a spectral peak (a bin above both neighbours) is located between bins and
  its level estimated (Hann: Grandke's estimator, exact for a lone sine;
  Blackman-Harris: the parabola through the three dB values, within 0.04 dB),
  and the band holding that frequency reads at least that level. So a sine
  reads its level in the band containing its frequency, whatever the bin
  spacing (barring sines within a few hundredths of a bin of a band edge).

Smoothing: per bin or band, in dB, a one-pole toward each new frame with time
constant ``attack_ms`` when rising and ``release_ms`` when falling (0 = none).

``frame()`` returns the preallocated output array, overwritten by later pushes
(copy to keep); ``frames_done`` counts the frames computed so far.

Thread: ``push`` runs on the audio thread (``# RT``); ``frame`` and
``frames_done`` on the same thread (the engine posts frames on its meter ring).
``set_smoothing`` only writes two float64 numbers and may be called from a
control thread.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.effect import F32, F64, as_block, check_rate_channels
from dsp.fft import C128, I64, FFTPlan, is_power_of_two, rfft_into
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.meters import checked_number

FLOOR_DB = -200.0
FLOOR_POWER = 1e-20  # 10 ** (FLOOR_DB / 10)
WINDOWS = ("hann", "blackman-harris")
SCALLOP_DB = {"hann": 1.4236, "blackman-harris": 0.8256}  # worst loss half-way between bins
MIN_SIZE, MAX_SIZE = 512, 16384
BAND_LO_HZ, BAND_HI_HZ = 20.0, 20000.0
MAX_BANDS = 1024

# Kernel arrays (one packed array per type, to keep the per-call argument count low):
# st (float64): ring write position, samples since the last frame, frames computed,
#   hop, attack coefficient, release coefficient, channel (-1 = mean), bands, bin spacing
#   (Hz), the window's scalloping loss (dB), the window (index into WINDOWS)
(ST_POS, ST_COUNT, ST_FRAMES, ST_HOP, ST_ATTACK, ST_RELEASE, ST_CHANNEL, ST_BANDS, ST_DF,
 ST_SCALLOP, ST_WINDOW) = range(11)
ST_SIZE = 11
HANN = 0
# bufs (float64 (3, n)) rows: input ring, scaled window, windowed frame
RING, WIN, FRAME = range(3)
# cplx (complex128): FFT work [m], bins [m + 1], twiddles [m / 2], split twiddles [m + 1]
# ints (int64): bit reversal [m], first bin per band [B], end bin per band [B]
# levels (float64): bins in dB [m + 1], bin magnitudes [m + 1], band interpolation positions
#   [B], raw band values [B], output frame


def make_window(kind: str, n: int) -> F64:
    """The periodic (DFT-even) analysis window of length n."""
    phase = 2.0 * np.pi * np.arange(n, dtype=np.float64) / n
    if kind == "hann":
        return 0.5 - 0.5 * np.cos(phase)
    if kind == "blackman-harris":
        a = (0.35875, 0.48829, 0.14128, 0.01168)
        return a[0] - a[1] * np.cos(phase) + a[2] * np.cos(2 * phase) - a[3] * np.cos(3 * phase)
    raise ValueError(f"window: {kind!r} is not one of {', '.join(WINDOWS)}")


def band_edges(bands: int) -> F64:
    """The N + 1 log-spaced band edges from 20 Hz to 20 kHz."""
    return BAND_LO_HZ * (BAND_HI_HZ / BAND_LO_HZ) ** (np.arange(bands + 1) / bands)


def band_map(bands: int, fft_size: int, sr: float) -> tuple[I64, F64]:
    """Per band: ``[first bin, end bin)`` (int64 (2, N)) and, for bands holding no bin
    centre, the fractional bin to interpolate at (-1 when the band is above Nyquist)."""
    edges = band_edges(bands)
    df = sr / fft_size
    top = fft_size // 2
    idx = np.zeros((2, bands), dtype=np.int64)
    at = np.full(bands, -1.0)
    for b in range(bands):
        lo = min(math.ceil(edges[b] / df), top + 1)
        hi = min(math.ceil(edges[b + 1] / df), top + 1)
        idx[0, b], idx[1, b] = lo, hi
        if lo >= hi:
            centre = math.sqrt(edges[b] * edges[b + 1]) / df
            if centre <= top:
                at[b] = centre
    return idx, at


@njit(cache=True, nogil=True)
def _map_bands(  # RT
    st: F64, bins_db: F64, mags: F64, band_lo: I64, band_hi: I64, band_at: F64, raw: F64
) -> None:
    m = bins_db.shape[0] - 1
    bands = raw.shape[0]
    for j in range(bands):
        lo = band_lo[j]
        hi = band_hi[j]
        if lo < hi:
            v = bins_db[lo]
            for k in range(lo + 1, hi):
                v = max(v, bins_db[k])
        elif band_at[j] >= 0.0:
            k = min(int(band_at[j]), m - 1)
            frac = band_at[j] - k
            v = bins_db[k] + frac * (bins_db[k + 1] - bins_db[k])
        else:
            v = FLOOR_DB
        raw[j] = v
    # Peaks: a local maximum and its neighbours locate a sine between bins and give its
    # level; its band reads at least that level.
    df = st[ST_DF]
    limit = st[ST_SCALLOP]
    hann = int(st[ST_WINDOW]) == HANN
    per_decade = bands / math.log10(BAND_HI_HZ / BAND_LO_HZ)
    for k in range(1, m):
        v = bins_db[k]
        left = bins_db[k - 1]
        right = bins_db[k + 1]
        if v <= FLOOR_DB or v < left or v <= right:
            continue
        if hann:  # Grandke's estimator: exact for one sine under a Hann window
            r = max(mags[k - 1], mags[k + 1]) / mags[k]
            delta = (2.0 * r - 1.0) / (r + 1.0)
            if mags[k - 1] > mags[k + 1]:
                delta = -delta
            x = math.pi * delta
            gain = (1.0 - delta * delta) * x / math.sin(x) if delta != 0.0 else 1.0
            peak = v + 20.0 * math.log10(gain) if gain > 0.0 else v
        else:  # the vertex of the parabola through the three values in dB
            curve = left - 2.0 * v + right
            delta = 0.5 * (left - right) / curve if curve < 0.0 else 0.0
            peak = v - 0.25 * (left - right) * delta
        peak = min(max(peak, v), v + limit)
        freq = (k + delta) * df
        if freq < BAND_LO_HZ:
            continue
        b = int(per_decade * math.log10(freq / BAND_LO_HZ))
        if b < bands and peak > raw[b]:
            raw[b] = peak


@njit(cache=True, nogil=True)
def _smooth(st: F64, new: F64, out: F64) -> None:  # RT
    attack = st[ST_ATTACK]
    release = st[ST_RELEASE]
    for j in range(out.shape[0]):
        v = new[j]
        cur = out[j]
        a = attack if v > cur else release
        out[j] = v + a * (cur - v)


@njit(cache=True, nogil=True)
def _analyse(st: F64, bufs: F64, cplx: C128, ints: I64, levels: F64) -> None:  # RT
    n = bufs.shape[1]
    m = n // 2
    bands = int(st[ST_BANDS])
    bins_db = levels[: m + 1]
    mags = levels[m + 1 : 2 * m + 2]
    band_at = levels[2 * m + 2 : 2 * m + 2 + bands]
    raw = levels[2 * m + 2 + bands : 2 * m + 2 + 2 * bands]
    out = levels[2 * m + 2 + 2 * bands :]
    band_lo = ints[m : m + bands]
    band_hi = ints[m + bands :]
    pos = int(st[ST_POS])
    ring = bufs[RING]
    win = bufs[WIN]
    frame = bufs[FRAME]
    for j in range(n - pos):  # oldest sample first
        frame[j] = ring[pos + j] * win[j]
    for j in range(pos):
        frame[n - pos + j] = ring[j] * win[n - pos + j]
    spec = cplx[m : 2 * m + 1]
    twiddle = cplx[2 * m + 1 : 2 * m + 1 + m // 2]
    rfft_into(frame, spec, cplx[:m], ints[:m], twiddle, cplx[2 * m + 1 + m // 2 :])
    for k in range(m + 1):
        p = spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
        if k == 0 or k == m:
            p *= 0.25
        bins_db[k] = 10.0 * math.log10(p) if p > FLOOR_POWER else FLOOR_DB
        mags[k] = math.sqrt(p)
    if bands:
        _map_bands(st, bins_db, mags, band_lo, band_hi, band_at, raw)
        _smooth(st, raw, out)
    else:
        _smooth(st, bins_db, out)
    st[ST_FRAMES] += 1.0


@njit(cache=True, nogil=True)
def spectrum_push(inp: F32, st: F64, bufs: F64, cplx: C128, ints: I64, levels: F64) -> None:  # RT
    """Feed ``inp`` into the ring; analyse a frame at every multiple of the hop."""
    saved = ftz_begin()
    frames, channels = inp.shape
    n = bufs.shape[1]
    hop = int(st[ST_HOP])
    channel = int(st[ST_CHANNEL])
    scale = 1.0 / channels
    pos = int(st[ST_POS])
    count = int(st[ST_COUNT])
    i = 0
    while i < frames:
        run = min(hop - count, frames - i)
        for t in range(i, i + run):
            if channel >= 0:
                v = clean(inp[t, channel])
            else:
                v = 0.0
                for c in range(channels):
                    v += clean(inp[t, c])
                v *= scale
            bufs[RING, pos] = v
            pos += 1
            if pos == n:
                pos = 0
        i += run
        count += run
        if count == hop:
            count = 0
            st[ST_POS] = pos
            _analyse(st, bufs, cplx, ints, levels)
    st[ST_POS] = pos
    st[ST_COUNT] = count
    ftz_end(saved)


class SpectrumAnalyzer:
    """Windowed-FFT spectrum in dB per bin or per log band, with attack/release smoothing."""

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        fft_size: int = 4096,
        window: str = "hann",
        hop: int | None = None,
        bands: int = 0,
        attack_ms: float = 0.0,
        release_ms: float = 0.0,
        channel: int | None = None,
    ) -> None:
        self.sample_rate = check_rate_channels(sample_rate, channels)
        self.channels = channels
        if not isinstance(fft_size, int) or not is_power_of_two(fft_size) or not (
            MIN_SIZE <= fft_size <= MAX_SIZE
        ):
            raise ValueError(f"fft_size: {fft_size!r} is not a power of two in "
                             f"{MIN_SIZE}..{MAX_SIZE}")
        if window not in WINDOWS:
            raise ValueError(f"window: {window!r} is not one of {', '.join(WINDOWS)}")
        hop = fft_size // 4 if hop is None else hop
        if not isinstance(hop, int) or not 1 <= hop <= self.sample_rate:
            raise ValueError(f"hop: {hop!r} samples is not 1..{self.sample_rate:g}")
        if not isinstance(bands, int) or not 0 <= bands <= MAX_BANDS:
            raise ValueError(f"bands: {bands!r} is not 0..{MAX_BANDS}")
        if channel is not None and (not isinstance(channel, int) or not 0 <= channel < channels):
            raise ValueError(f"channel: {channel!r} is not None or 0..{channels - 1}")
        self.fft_size = fft_size
        self.window = window
        self.hop = hop
        self.bands = bands
        m = fft_size // 2
        plan = FFTPlan(fft_size)
        w = make_window(window, fft_size)
        self.bufs = np.zeros((3, fft_size), dtype=np.float64)
        self.bufs[WIN] = w * (2.0 / np.sum(w))
        self.cplx = np.concatenate(
            [np.zeros(2 * m + 1, dtype=np.complex128), plan.twiddle, plan.post]
        )
        if bands:
            band_idx, band_at = band_map(bands, fft_size, self.sample_rate)
            edges = band_edges(bands)
            self.frequencies: F64 = np.sqrt(edges[:-1] * edges[1:])
        else:
            band_idx = np.zeros((2, 0), dtype=np.int64)
            band_at = np.zeros(0, dtype=np.float64)
            self.frequencies = np.arange(m + 1) * self.sample_rate / fft_size
        self.ints = np.concatenate([plan.bitrev, band_idx[0], band_idx[1]])
        self.levels = np.concatenate([
            np.zeros(2 * m + 2), band_at, np.zeros(bands), np.zeros(bands if bands else m + 1)
        ])
        self.bins_db = self.levels[: m + 1]
        self.out = self.levels[2 * m + 2 + 2 * bands :]
        self.st = np.zeros(ST_SIZE, dtype=np.float64)
        self.st[ST_DF] = self.sample_rate / fft_size
        self.st[ST_SCALLOP] = SCALLOP_DB[window]
        self.st[ST_WINDOW] = WINDOWS.index(window)
        self.st[ST_HOP] = hop
        self.st[ST_CHANNEL] = -1.0 if channel is None else channel
        self.st[ST_BANDS] = bands
        self.set_smoothing(attack_ms, release_ms)
        self.reset()

    def set_smoothing(self, attack_ms: float, release_ms: float) -> None:
        """Attack and release time constants in ms (0 = follow each frame at once)."""
        coefs = []
        for name, ms in (("attack_ms", attack_ms), ("release_ms", release_ms)):
            value = checked_number(name, ms, 0.0, 60000.0)
            coefs.append(math.exp(-self.hop / (value * 1e-3 * self.sample_rate)) if value else 0.0)
        self.st[ST_ATTACK], self.st[ST_RELEASE] = coefs

    def reset(self) -> None:
        """Clear the input history and the frame (which reads ``FLOOR_DB``)."""
        self.st[ST_POS] = self.st[ST_COUNT] = self.st[ST_FRAMES] = 0.0
        self.bufs[RING] = 0.0
        self.bufs[FRAME] = 0.0
        self.out[:] = FLOOR_DB
        self.bins_db[:] = FLOOR_DB

    def push(self, block: npt.ArrayLike) -> None:  # RT when block is float32 (n, channels)
        inp = as_block(block, self.channels)
        if inp.shape[0]:
            spectrum_push(inp, self.st, self.bufs, self.cplx, self.ints, self.levels)

    def frame(self) -> F64:  # RT
        """The latest (smoothed) frame in dB: per bin, or per band with ``bands``."""
        return self.out

    @property
    def frames_done(self) -> int:
        return int(self.st[ST_FRAMES])
