"""Loudness after ITU-R BS.1770-4 / EBU R 128: momentary, short-term, integrated and LRA.

Measurement chain (BS.1770-4 section 2):

1. K-weighting per channel: the standard's two biquads, a high shelf (+4 dB
   above ~1.7 kHz, the head's acoustic effect) and the "RLB" high-pass (~38 Hz).
   The standard tabulates them for 48 kHz only; ``k_weighting`` recomputes them
   for any rate from their analogue prototypes by the bilinear transform with
   prewarping (the parameters that reproduce the 48 kHz table, as in libebur128
   and Brecht De Man's derivation), in float64.
2. Mean square per channel over 100 ms steps (``round(0.1 * sr)`` samples),
   summed over channels with weights G (L, R, C = 1.0; surrounds 1.41; LFE 0).
3. Loudness of a window of k steps: ``-0.691 + 10 log10(sum of its energies / k)``.
   Momentary = the last 4 steps (400 ms), short-term = the last 30 steps (3 s);
   both read as if the time before the first sample were silence, and both are
   updated every 100 ms, when a step completes (EBU Tech 3341 asks for >= 10 Hz).
4. Integrated (BS.1770-4 eq. 7): gating blocks of 400 ms every 100 ms (75%
   overlap); blocks at or below -70 LUFS are dropped (absolute gate), then
   blocks at or below (mean of the rest) - 10 LU (relative gate); the result is
   the loudness of the mean energy of the blocks kept.
5. Loudness range (EBU Tech 3342): short-term values every 100 ms, absolute
   gate -70 LUFS, relative gate -20 LU below their power mean, then the spread
   between the 10th and 95th percentiles (numpy's linear-interpolation rule).

Bounded memory: gating-block and short-term histories are not lists but two
fixed histograms of ``NBINS`` bins of ``BIN_LU`` (0.01 LU) from -70 LUFS up
(louder values land in the top bin), each bin holding a count and the summed
energy of its values, as hardware meters do. The means behind the gates are
exact; only the gate decision for values in the one bin the gate falls in, and
the percentiles, are resolved to a bin, whose values are represented by their
energy mean (error <= 0.01 LU, in practice far less).

Readings are in LUFS (LU for the range). Silence (nothing above the absolute
gate, or a window of zero energy) reads ``-inf`` LUFS, as in pyloudnorm and
libebur128; the range of silence, or of too little signal, reads 0.0 LU.
Fewer than 400 ms of input give no gating block: integrated reads ``-inf``.

Thread: ``push`` runs on the audio thread (``# RT``). The readings are
computed on demand from the state without allocating arrays; take them on the
thread that pushes (the engine posts them on its meter ring), not concurrently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.effect import F32, F64, MAX_CHANNELS, as_block, check_rate_channels
from dsp.fpu import clean, flush_tiny, ftz_begin, ftz_end
from dsp.params import ParamError

OFFSET = -0.691  # BS.1770 eq. 2: makes a 1 kHz sine at -x dBFS in one channel read about -x
ABS_GATE = -70.0  # LUFS
REL_GATE = -10.0  # LU below the absolutely gated mean (integrated)
LRA_REL_GATE = -20.0  # LU below the absolutely gated mean (loudness range)
LRA_LOW, LRA_HIGH = 10.0, 95.0  # percentiles
STEP_S = 0.1  # gating-block hop
MOMENTARY_STEPS = 4  # 400 ms
SHORT_TERM_STEPS = 30  # 3 s
SURROUND_WEIGHT = 1.41
BIN_LU = 0.01
HIST_LO = ABS_GATE
NBINS = 10000  # -70 .. +30 LUFS

# K-weighting analogue prototypes (reproduce the BS.1770-4 48 kHz coefficients).
SHELF_HZ, SHELF_DB, SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
SHELF_VB_EXP = 0.4996667741545416
RLB_HZ, RLB_Q = 38.13547087602444, 0.5003270373238773

# state layout (float64): step length, samples into the step, steps completed, ring position
ST_STEP, ST_POS, ST_STEPS, ST_RING = range(4)
INTEGRATED, RANGE = 0, 1  # histogram index
COUNT, ENERGY = 0, 1


def k_weighting(sr: float) -> F64:
    """The two K-weighting biquads at ``sr``: ``[b0 b1 b2 a1 a2]`` of the shelf, then the RLB."""
    k = math.tan(math.pi * SHELF_HZ / sr)
    vh = 10.0 ** (SHELF_DB / 20.0)
    vb = vh**SHELF_VB_EXP
    a0 = 1.0 + k / SHELF_Q + k * k
    shelf = [
        (vh + vb * k / SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / SHELF_Q + k * k) / a0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * RLB_HZ / sr)
    a0 = 1.0 + k / RLB_Q + k * k
    rlb = [1.0, -2.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / RLB_Q + k * k) / a0]
    return np.array(shelf + rlb, dtype=np.float64)


def k_weighting_ba(sr: float) -> tuple[tuple[F64, F64], tuple[F64, F64]]:
    """((b, a) of the shelf, (b, a) of the RLB high-pass) in scipy.signal conventions."""
    c = k_weighting(sr)
    return ((c[0:3].copy(), np.array([1.0, c[3], c[4]])),
            (c[5:8].copy(), np.array([1.0, c[8], c[9]])))


def channel_weights(channels: int, lfe: int | None = None) -> F64:
    """BS.1770 weights G: channels 0-2 (L, R, C) 1.0, further ones (surrounds) 1.41, LFE 0.

    The order is L, R, C, Ls, Rs (as pyloudnorm); for a 5.1 stream in
    L, R, C, LFE, Ls, Rs order pass ``lfe=3``: that channel is excluded.
    """
    if not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise ParamError(f"channels: {channels!r} is not 1..{MAX_CHANNELS}")
    w = np.array([1.0 if c < 3 else SURROUND_WEIGHT for c in range(channels)])
    if lfe is not None:
        if not isinstance(lfe, int) or not 0 <= lfe < channels:
            raise ParamError(f"lfe: channel {lfe!r} is not 0..{channels - 1}")
        w[lfe] = 0.0
    return w


@njit(cache=True, nogil=True, inline="always")
def _to_lufs(energy: float) -> float:
    return OFFSET + 10.0 * math.log10(energy) if energy > 0.0 else -math.inf


@njit(cache=True, nogil=True, inline="always")
def _add(hist: F64, which: int, energy: float) -> None:  # RT
    """Put one window's mean-square energy into a histogram if it passes the absolute gate."""
    lufs = _to_lufs(energy)
    if lufs > ABS_GATE:
        b = min(int((lufs - HIST_LO) / BIN_LU), NBINS - 1)
        hist[which, COUNT, b] += 1.0
        hist[which, ENERGY, b] += energy


@njit(cache=True, nogil=True)
def _complete_step(state: F64, acc: F64, weights: F64, ring: F64, hist: F64) -> None:  # RT
    energy = 0.0
    for c in range(acc.shape[0]):
        energy += weights[c] * acc[c]
        acc[c] = 0.0
    at = int(state[ST_RING])
    ring[at] = energy
    size = ring.shape[0]
    state[ST_RING] = (at + 1) % size
    steps = state[ST_STEPS] + 1.0
    state[ST_STEPS] = steps
    step = state[ST_STEP]
    if steps >= MOMENTARY_STEPS:
        _add(hist, INTEGRATED, _window(ring, state, MOMENTARY_STEPS) / (MOMENTARY_STEPS * step))
    if steps >= SHORT_TERM_STEPS:
        _add(hist, RANGE, _window(ring, state, SHORT_TERM_STEPS) / (SHORT_TERM_STEPS * step))


@njit(cache=True, nogil=True)
def _window(ring: F64, state: F64, steps: int) -> float:  # RT
    """Summed energy of the last ``steps`` completed steps."""
    size = ring.shape[0]
    at = int(state[ST_RING])
    total = 0.0
    for j in range(1, steps + 1):
        total += ring[(at - j) % size]
    return total


@njit(cache=True, nogil=True)
def loudness_push(  # RT
    inp: F32, coefs: F64, weights: F64, state: F64, filt: F64, acc: F64, ring: F64, hist: F64
) -> None:
    """K-weight ``inp`` (frames, channels), accumulate 100 ms steps, and fill the histograms.

    ``filt`` is (channels, 4) biquad memory, ``acc`` the current step's per-channel
    sum of squares, ``ring`` the last 30 step energies, ``hist`` (2, 2, NBINS).
    """
    saved = ftz_begin()
    frames, channels = inp.shape
    b0, b1, b2, a1, a2 = coefs[0], coefs[1], coefs[2], coefs[3], coefs[4]
    c0, c1, c2, d1, d2 = coefs[5], coefs[6], coefs[7], coefs[8], coefs[9]
    step = int(state[ST_STEP])
    pos = int(state[ST_POS])
    i = 0
    while i < frames:
        run = min(step - pos, frames - i)
        for c in range(channels):
            z1, z2, z3, z4 = filt[c, 0], filt[c, 1], filt[c, 2], filt[c, 3]
            total = acc[c]
            for n in range(i, i + run):
                x = clean(inp[n, c])
                y = b0 * x + z1
                z1 = b1 * x - a1 * y + z2
                z2 = b2 * x - a2 * y
                v = c0 * y + z3
                z3 = c1 * y - d1 * v + z4
                z4 = c2 * y - d2 * v
                total += v * v
            filt[c, 0] = flush_tiny(z1)
            filt[c, 1] = flush_tiny(z2)
            filt[c, 2] = flush_tiny(z3)
            filt[c, 3] = flush_tiny(z4)
            acc[c] = total
        i += run
        pos += run
        if pos == step:
            _complete_step(state, acc, weights, ring, hist)
            pos = 0
    state[ST_POS] = pos
    ftz_end(saved)


@njit(cache=True, nogil=True)
def window_loudness(ring: F64, state: F64, steps: int) -> float:  # RT
    """Loudness (LUFS) of the last ``steps`` 100 ms steps; -inf for silence."""
    return _to_lufs(_window(ring, state, steps) / (steps * state[ST_STEP]))


@njit(cache=True, nogil=True, inline="always")
def _bin_lufs(hist: F64, which: int, b: int) -> float:
    return _to_lufs(hist[which, ENERGY, b] / hist[which, COUNT, b])


@njit(cache=True, nogil=True)
def _relative_gate(hist: F64, which: int, gate_lu: float) -> tuple[int, float, float]:  # RT
    """First bin above the relative gate, and the count and energy from there up."""
    count = 0.0
    energy = 0.0
    for b in range(NBINS):
        count += hist[which, COUNT, b]
        energy += hist[which, ENERGY, b]
    if count == 0.0:
        return NBINS, 0.0, 0.0
    gate = _to_lufs(energy / count) + gate_lu
    first = max(math.floor((gate - HIST_LO) / BIN_LU), 0)
    if first < NBINS and hist[which, COUNT, first] > 0.0 and _bin_lufs(hist, which, first) <= gate:
        first += 1  # the bin the gate falls in: kept if its values' mean is above the gate
    kept = 0.0
    kept_energy = 0.0
    for b in range(first, NBINS):
        kept += hist[which, COUNT, b]
        kept_energy += hist[which, ENERGY, b]
    return first, kept, kept_energy


@njit(cache=True, nogil=True)
def gated_loudness(hist: F64) -> float:  # RT
    """Integrated loudness (LUFS) from the gating-block histogram; -inf when nothing passes."""
    _, kept, energy = _relative_gate(hist, INTEGRATED, REL_GATE)
    return _to_lufs(energy / kept) if kept > 0.0 else -math.inf


@njit(cache=True, nogil=True)
def _percentile(hist: F64, first: int, kept: float, pct: float) -> float:  # RT
    """numpy's linear percentile of the values from bin ``first`` up (``kept`` of them)."""
    rank = pct / 100.0 * (kept - 1.0)
    low = math.floor(rank)
    frac = rank - low
    seen = 0.0
    found = False
    value_low = 0.0
    for b in range(first, NBINS):
        n = hist[RANGE, COUNT, b]
        if n == 0.0:
            continue
        if found:  # the next value up lives in this bin
            return value_low + frac * (_bin_lufs(hist, RANGE, b) - value_low)
        if low < seen + n:
            value_low = _bin_lufs(hist, RANGE, b)
            if frac == 0.0 or low + 1.0 < seen + n:
                return value_low
            found = True
        seen += n
    return value_low


@njit(cache=True, nogil=True)
def range_from_histogram(hist: F64) -> float:  # RT
    """Loudness range (LU) from the short-term histogram; 0.0 when nothing passes the gates."""
    first, kept, _ = _relative_gate(hist, RANGE, LRA_REL_GATE)
    if kept == 0.0:
        return 0.0
    return _percentile(hist, first, kept, LRA_HIGH) - _percentile(hist, first, kept, LRA_LOW)


class LoudnessMeter:
    """Streaming BS.1770-4 / EBU R 128 meter: ``push`` blocks, read M, S, I and LRA.

    ``meter = LoudnessMeter(48000, 2); meter.push(block); meter.momentary`` ...
    Memory is fixed at construction (about 320 kB of histograms) however long it runs.
    """

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        lfe: int | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.sample_rate = check_rate_channels(sample_rate, channels)
        self.weights = channel_weights(channels, lfe)
        if weights is not None:
            w = np.array(weights, dtype=np.float64)
            if w.shape != (channels,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ParamError(f"weights: need {channels} finite numbers >= 0, got {weights!r}")
            self.weights = w
        self.channels = channels
        self.coefs = k_weighting(self.sample_rate)
        self.step = max(round(STEP_S * self.sample_rate), 1)
        self.state = np.zeros(4, dtype=np.float64)
        self.filt = np.zeros((channels, 4), dtype=np.float64)
        self.acc = np.zeros(channels, dtype=np.float64)
        self.ring = np.zeros(SHORT_TERM_STEPS, dtype=np.float64)
        self.hist = np.zeros((2, 2, NBINS), dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget everything: filters, windows and the integrated and range histories."""
        self.state[:] = 0.0
        self.state[ST_STEP] = self.step
        self.filt[:] = 0.0
        self.acc[:] = 0.0
        self.ring[:] = 0.0
        self.hist[:] = 0.0

    def push(self, block: npt.ArrayLike) -> None:  # RT when block is float32 (n, channels)
        inp = as_block(block, self.channels)
        if inp.shape[0]:
            loudness_push(inp, self.coefs, self.weights, self.state, self.filt, self.acc,
                          self.ring, self.hist)

    @property
    def momentary(self) -> float:  # RT
        """Loudness of the last 400 ms (LUFS), updated every 100 ms."""
        return float(window_loudness(self.ring, self.state, MOMENTARY_STEPS))

    @property
    def short_term(self) -> float:  # RT
        """Loudness of the last 3 s (LUFS), updated every 100 ms."""
        return float(window_loudness(self.ring, self.state, SHORT_TERM_STEPS))

    @property
    def integrated(self) -> float:  # RT
        """Gated loudness of everything since construction or ``reset`` (LUFS)."""
        return float(gated_loudness(self.hist))

    @property
    def lra(self) -> float:  # RT
        """Loudness range (LU) of everything since construction or ``reset``."""
        return float(range_from_histogram(self.hist))

    @property
    def seconds(self) -> float:
        """Duration measured so far (whole 100 ms steps)."""
        return float(self.state[ST_STEPS]) * self.step / self.sample_rate


def _measure(x: npt.ArrayLike, sr: float, lfe: int | None) -> LoudnessMeter:
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ParamError(f"x: expected shape (frames, channels), got {arr.shape}")
    meter = LoudnessMeter(sr, arr.shape[1], lfe=lfe)
    meter.push(np.ascontiguousarray(arr, dtype=np.float32))
    return meter


def integrated_loudness(x: npt.ArrayLike, sr: float, *, lfe: int | None = None) -> float:
    """Integrated loudness (LUFS) of a whole signal, float32 (frames, channels) or mono 1-D.

    ``-inf`` for silence or signals shorter than 400 ms. Channel order L, R, C, Ls, Rs;
    ``lfe`` names a channel to exclude.
    """
    return _measure(x, sr, lfe).integrated


def loudness_range(x: npt.ArrayLike, sr: float, *, lfe: int | None = None) -> float:
    """Loudness range (LU, EBU Tech 3342) of a whole signal; 0.0 when it cannot be measured."""
    return _measure(x, sr, lfe).lra
