"""Time-stretch for DJ beat matching: WSOLA with waveform-similarity search and
transient anchoring, offline (``time_stretch``) and streaming (``StretchPlayer``).

Why WSOLA. Overlap-add of unmodified waveform segments keeps a sound's own phase
relations: no phasiness on tonal music, and a drum hit copied whole stays a drum
hit. A phase vocoder needs phase locking to approach that and smears attacks over
its window. Each output frame (Hann, ``N`` = 40 ms, hop ``N / 2``, so windows sum
to exactly 1) copies the source segment near the playhead that best continues
what the previous frame left: the candidate start within +-12 ms of the nominal
one with the highest normalised cross-correlation against the previous segment's
natural continuation (over the overlap; coarse pass on every 4th sample and every
2nd lag, then every lag around the best, then a parabola for the fraction; a
segment that starts between samples is read through a 16-tap Kaiser-windowed
sinc). Tones continue in phase, so a steady sine keeps its frequency and level.

Transients. Onsets (``detect_onsets``: a 9 dB jump of high-passed energy in 1.3
ms blocks, located to the sample, 1 ms early) are anchored: every frame that
overlaps ``[-5, +10] ms`` around an onset's output time ``tau* = tau + (t - p)
ratio`` (p the playhead at output time tau) takes the segment that puts the onset
exactly at ``tau*``, so all copies of the hit coincide (no flam, no doubled click)
and the hit keeps its time to the sample. Frames that end before it are kept
from reaching it and frames after it from reaching back before it, so it is never
copied twice.

Streaming. ``StretchPlayer`` reads a preallocated source (a deck's loaded track)
at a variable ratio: the playhead advances ``hop / ratio`` source samples per
output hop, the ratio ramps per frame (one-pole, 50 ms), and ``read`` fills a
preallocated buffer with one jitted call (no allocation per block; frames are
computed on an absolute output grid, so the output does not depend on the block
size). ``time_stretch`` runs the same kernel once over the whole output.

Kernel state (float64): ``[k, playhead, prev_start, emit, ratio, next_onset,
anchor_t, anchor_tau, started]``, the interpolation taps, then the overlap-add
accumulator (``N x channels``). Params: ``[ratio target, N, tolerance, ratio
smoothing, length, pad, sr]``, the window (``N``) and the overlap taper (``N / 2``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.effect import F32, F64
from dsp.fpu import ftz_begin, ftz_end

I64 = npt.NDArray[np.int64]

FRAME_S = 0.040
TOLERANCE_S = 0.012
RATIO_RANGE = (0.5, 2.0)
RATIO_SMOOTH_S = 0.05
PRE_S = 0.005  # anchored region around an onset's output time
POST_S = 0.010
ONSET_BLOCK = 64
ONSET_JUMP = 8.0  # 9 dB
ONSET_LEAD_S = 0.001
TAPS = 16  # fractional-start interpolator
KAISER_BETA = 8.0

S_K, S_P, S_PREV, S_EMIT, S_RATIO, S_ONSET, S_ANCHOR_T, S_ANCHOR_TAU, S_STARTED = range(9)
HEADER = 9  # then the interpolation taps (TAPS), then the accumulator
P_RATIO, P_N, P_TOL, P_KRATIO, P_LEN, P_PAD, P_SR = range(7)
P_WINDOW = 7


def frame_size(sr: float) -> int:
    return 2 * round(FRAME_S * sr / 2)


def _params(sr: float, ratio: float, length: int) -> F64:
    n = frame_size(sr)
    hop = n // 2
    kp = np.zeros(P_WINDOW + n + hop, dtype=np.float64)
    kp[P_RATIO] = ratio
    kp[P_N] = n
    kp[P_TOL] = round(TOLERANCE_S * sr)
    kp[P_KRATIO] = 1.0 - math.exp(-hop / (RATIO_SMOOTH_S * sr))
    kp[P_LEN] = length
    kp[P_PAD] = n + round(TOLERANCE_S * sr) + 8
    kp[P_SR] = sr
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic Hann
    kp[P_WINDOW : P_WINDOW + n] = window
    kp[P_WINDOW + n :] = window[:hop] * window[hop:]  # the overlap's taper
    return kp


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _match(  # RT
    mono: F64, ref: int, cand: int, length: int, stride: int, params: F64
) -> float:
    """Tapered cross-correlation of ``mono[ref:]`` and ``mono[cand:]`` over the overlap,
    normalised by the candidate. The taper (the two windows' product) keeps the
    window's edges from biasing the peak, which matters for sub-sample alignment."""
    xy = 0.0
    yy = 0.0
    for u in range(0, length, stride):
        w = params[P_WINDOW + int(params[P_N]) + u]
        y = w * mono[cand + u]
        xy += mono[ref + u] * y
        yy += y * mono[cand + u]
    return xy / math.sqrt(yy + 1e-20)


@njit(cache=True, nogil=True)
def _search(  # RT
    mono: F64, natural: int, lo: int, hi: int, pad: int, params: F64
) -> float:
    """The start in ``[lo, hi]`` whose segment best continues the one at ``natural``,
    to a fraction of a sample (a parabola through the fine scores around the best)."""
    overlap = int(params[P_N]) // 2
    best = -1e300
    best_c = lo
    for c in range(lo, hi + 1, 2):
        s = _match(mono, natural + pad, c + pad, overlap, 4, params)
        if s > best:
            best = s
            best_c = c
    centre = best_c
    best = -1e300
    for c in range(max(lo, centre - 2), min(hi, centre + 2) + 1):
        s = _match(mono, natural + pad, c + pad, overlap, 1, params)
        if s > best:
            best = s
            best_c = c
    left = _match(mono, natural + pad, best_c - 1 + pad, overlap, 1, params)
    right = _match(mono, natural + pad, best_c + 1 + pad, overlap, 1, params)
    curve = left - 2.0 * best + right
    frac = min(max(0.5 * (left - right) / curve, -0.5), 0.5) if curve < 0.0 else 0.0
    return best_c + frac


@njit(cache=True, nogil=True, inline="always")
def _i0(x: float) -> float:  # RT
    """Modified Bessel function I0 (power series; x <= 10 here)."""
    term = 1.0
    total = 1.0
    q = 0.25 * x * x
    for k in range(1, 30):
        term *= q / (k * k)
        total += term
    return total


@njit(cache=True, nogil=True)
def _fraction_taps(frac: float, taps: F64, at: int) -> None:  # RT
    """Kaiser-windowed sinc taps reading ``frac`` (0..1) samples later, unity at DC."""
    total = 0.0
    for j in range(TAPS):
        u = j - (TAPS // 2 - 1) - frac
        r = u / (TAPS / 2)
        w = _i0(KAISER_BETA * math.sqrt(max(1.0 - r * r, 0.0)))
        h = w * (math.sin(math.pi * u) / (math.pi * u) if u != 0.0 else 1.0)
        taps[at + j] = h
        total += h
    for j in range(TAPS):
        taps[at + j] /= total


@njit(cache=True, nogil=True)
def _next_start(  # RT
    mono: F64, onsets: I64, state: F64, params: F64, tau: float, p: float, ratio: float
) -> float:
    """Source start of the frame at output time ``tau`` (anchored, or searched)."""
    n = int(params[P_N])
    half = n // 2
    tol = int(params[P_TOL])
    pad = int(params[P_PAD])
    length = int(params[P_LEN])
    pre = PRE_S * params[P_SR]
    post = POST_S * params[P_SR]
    nominal = round(p + half / ratio - half)
    lo = nominal - tol
    hi = nominal + tol
    # the next onset not yet passed (its anchor is kept once set, for coherent copies)
    j = int(state[S_ONSET])
    while j < onsets.shape[0]:
        t = float(onsets[j])
        t_out = state[S_ANCHOR_TAU] if state[S_ANCHOR_T] == t else tau + (t - p) * ratio
        if t_out + post <= tau:  # the hit lies behind this frame: no frame may reach back
            lo = max(lo, int(t + post))
            hi = max(hi, lo)
            j += 1
            state[S_ONSET] = j
            continue
        if tau + n > t_out - pre:  # this frame overlaps the hit: anchor
            state[S_ANCHOR_T] = t
            state[S_ANCHOR_TAU] = t_out
            start = round(t - (t_out - tau))
            return float(min(max(start, -pad + TAPS), length + pad - n - TAPS))
        hi = min(hi, int(t - pre) - n)  # the hit lies ahead: do not reach it yet
        lo = min(lo, hi)
        break
    lo = min(max(lo, -pad + tol + 2), length + pad - n - tol - 2)
    hi = min(max(hi, lo), length + pad - n - tol - 2)
    if state[S_STARTED] == 0.0:
        return float(min(max(nominal, lo), hi))
    # continue the previous segment where it really ended (it may have started between
    # samples): the best match to its integer part, moved by its fraction
    prev: float = state[S_PREV]
    whole = math.floor(prev)
    found = _search(mono, whole + half, lo, hi, pad, params) + (prev - whole)
    return min(max(found, lo - 1.0), hi + 1.0)


@njit(cache=True, nogil=True)
def stretch_render(  # RT
    src: F32, mono: F64, onsets: I64, out: F32, state: F64, params: F64
) -> None:
    """Fill ``out`` with the next output samples. ``src`` and ``mono`` are zero-padded
    by ``pad`` samples on both sides; ``onsets`` are source positions, ascending."""
    saved = ftz_begin()
    frames, channels = out.shape
    n = int(params[P_N])
    half = n // 2
    pad = int(params[P_PAD])
    taps = HEADER
    acc = HEADER + TAPS
    window = P_WINDOW
    i = 0
    while i < frames:
        emit = int(state[S_EMIT])
        if state[S_STARTED] == 0.0 or emit >= half:
            # next frame: ratio ramp, start, overlap-add; the first frame is only primed
            target = min(max(params[P_RATIO], RATIO_RANGE[0]), RATIO_RANGE[1])
            ratio = state[S_RATIO]
            if ratio != target:
                diff = target - ratio
                ratio = target if abs(diff) < 1e-9 else ratio + params[P_KRATIO] * diff
                state[S_RATIO] = ratio
            k = state[S_K]
            tau = k * half
            p = state[S_P]
            start = _next_start(mono, onsets, state, params, tau, p, ratio)
            if state[S_STARTED] != 0.0:  # shift out the emitted half
                for u in range(n - half):
                    for c in range(channels):
                        state[acc + u * channels + c] = state[acc + (u + half) * channels + c]
                for u in range(n - half, n):
                    for c in range(channels):
                        state[acc + u * channels + c] = 0.0
            whole = math.floor(start)
            frac = start - whole
            if frac == 0.0:  # a whole-sample start (always so for anchored hits): copy
                for u in range(n):
                    w = params[window + u]
                    row = whole + pad + u
                    for c in range(channels):
                        state[acc + u * channels + c] += w * src[row, c]
            else:  # between samples: windowed-sinc interpolation
                _fraction_taps(frac, state, taps)
                first = whole + pad - (TAPS // 2 - 1)
                for u in range(n):
                    w = params[window + u]
                    for c in range(channels):
                        v = 0.0
                        for j in range(TAPS):
                            v += state[taps + j] * src[first + u + j, c]
                        state[acc + u * channels + c] += w * v
            state[S_PREV] = start
            state[S_P] = p + half / ratio
            state[S_K] = k + 1.0
            if state[S_STARTED] == 0.0:  # prime: frame -1 covers the first half-hop
                state[S_STARTED] = 1.0
                state[S_EMIT] = half
                continue
            state[S_EMIT] = 0.0
            emit = 0
        take = min(half - emit, frames - i)
        for u in range(take):
            for c in range(channels):
                out[i + u, c] = state[acc + (emit + u) * channels + c]
        state[S_EMIT] = emit + take
        i += take
    ftz_end(saved)


def detect_onsets(x: npt.ArrayLike, sr: float) -> I64:
    """Sample positions of percussive onsets (ascending, at least one frame apart)."""
    sig = np.asarray(x, dtype=np.float64)
    mono = sig.mean(axis=1) if sig.ndim == 2 else sig
    d = np.diff(mono, prepend=mono[:1])
    blocks = d.shape[0] // ONSET_BLOCK
    if blocks < 2:
        return np.zeros(0, dtype=np.int64)
    energy = (d[: blocks * ONSET_BLOCK] ** 2).reshape(blocks, ONSET_BLOCK).sum(axis=1)
    history = 16
    padded = np.concatenate([np.full(history, energy[0]), energy])
    before = np.lib.stride_tricks.sliding_window_view(padded[:-1], history)[:blocks].mean(axis=1)
    floor = 1e-6 * float(energy.max()) + 1e-20
    hits = np.flatnonzero((energy > ONSET_JUMP * before + floor) & (energy > 1e-4 * energy.max()))
    onsets: list[int] = []
    min_gap = frame_size(sr)
    lead = round(ONSET_LEAD_S * sr)
    for b in hits:
        lo = max(int(b) - 1, 0) * ONSET_BLOCK
        seg = np.abs(d[lo : lo + 3 * ONSET_BLOCK])
        first = lo + int(np.argmax(seg > 0.25 * seg.max()))
        t = max(first - lead, 0)
        if not onsets or t - onsets[-1] >= min_gap:
            onsets.append(t)
    return np.asarray(onsets, dtype=np.int64)


class StretchPlayer:
    """Plays a preallocated source at a variable time-stretch ratio (a DJ deck).

    ``ratio`` is output duration / source duration (0.5..2; 1.1 plays 10 % slower
    with the pitch kept). Build it off the audio thread (it pads the source and
    finds its onsets); then ``read(frames)`` is real-time: it returns a view of a
    preallocated buffer, valid until the next call. ``set_ratio`` and ``seek`` may
    be called from a control thread: they write one float each.
    """

    def __init__(
        self, source: npt.ArrayLike, sr: float, ratio: float = 1.0, *, max_block: int = 8192
    ) -> None:
        src = np.asarray(source, dtype=np.float32)
        if src.ndim == 1:
            src = src.reshape(-1, 1)
        if src.ndim != 2 or src.shape[1] < 1:
            raise ValueError(f"source: expected (frames, channels), got {src.shape}")
        self.sample_rate = float(sr)
        self.length = src.shape[0]
        self.channels = src.shape[1]
        self._kp = _params(self.sample_rate, _ratio(ratio), self.length)
        pad = int(self._kp[P_PAD])
        clean = np.nan_to_num(src, nan=0.0, posinf=0.0, neginf=0.0)
        self._src = np.zeros((self.length + 2 * pad, self.channels), dtype=np.float32)
        self._src[pad : pad + self.length] = np.clip(clean, -64.0, 64.0)
        self._mono = self._src.mean(axis=1, dtype=np.float64)
        self._onsets = detect_onsets(self._src[pad : pad + self.length], self.sample_rate)
        n = int(self._kp[P_N])
        self._state = np.zeros(HEADER + TAPS + n * self.channels, dtype=np.float64)
        self._out = np.zeros((max_block, self.channels), dtype=np.float32)
        self._views: dict[int, F32] = {}
        self.seek(0.0)

    @property
    def onsets(self) -> I64:
        return self._onsets

    @property
    def position(self) -> float:
        """The playhead (source frames) at the start of the next frame to be computed."""
        return float(self._state[S_P])

    def set_ratio(self, ratio: float) -> None:  # control thread
        self._kp[P_RATIO] = _ratio(ratio)

    def seek(self, position: float) -> None:  # control thread, between reads
        """Restart at a source position (frames); the next read starts fresh."""
        self._state[:] = 0.0
        self._state[S_RATIO] = self._kp[P_RATIO]
        self._state[S_ANCHOR_T] = -1.0
        n = self._kp[P_N]
        # frame -1 is primed half a frame early so the output starts at full level
        self._state[S_P] = float(position) - 0.5 * n / self._kp[P_RATIO]
        self._state[S_K] = -1.0
        self._state[S_ONSET] = float(np.searchsorted(self._onsets, position - n))

    def read(self, frames: int) -> F32:  # RT after the first read of a size
        out = self._views.get(frames)
        if out is None:
            if frames > self._out.shape[0]:
                self._out = np.zeros((frames, self.channels), dtype=np.float32)
                self._views.clear()
            out = self._views[frames] = self._out[:frames]
        if frames:
            stretch_render(self._src, self._mono, self._onsets, out, self._state, self._kp)
        return out


def _ratio(ratio: Any) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not math.isfinite(ratio):
        raise ValueError(f"ratio: {ratio!r} is not a finite number")
    return min(max(float(ratio), RATIO_RANGE[0]), RATIO_RANGE[1])


def time_stretch(x: npt.ArrayLike, sr: float, ratio: float) -> F32:
    """``x`` (frames, channels) stretched to ``round(ratio * frames)`` frames, pitch kept."""
    arr = np.asarray(x, dtype=np.float32)
    mono_in = arr.ndim == 1
    player = StretchPlayer(arr, sr, ratio, max_block=1)
    out = np.zeros((round(_ratio(ratio) * player.length), player.channels), dtype=np.float32)
    if out.shape[0]:
        stretch_render(player._src, player._mono, player._onsets, out, player._state,
                       player._kp)
    return out[:, 0].copy() if mono_in else out
