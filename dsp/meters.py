"""Level meters: sample peak and true peak with hold and fall-back, and sliding-window RMS.

Meters are not effects: they take audio and give readings, never audio.
Each has a streaming ``push(block)`` (RT; float32 (frames, channels); nothing
allocated after the first call) and readings in dBFS per channel, returned as
preallocated float64 arrays (overwritten by the next reading: copy to keep).
Readings never go below ``FLOOR_DB``; silence reads exactly ``FLOOR_DB``.

Peak ballistics (PeakMeter and TruePeakMeter), per channel, per sample:
instant attack (a sample at or above the reading sets the reading and restarts
the hold); the reading then holds for ``hold_ms`` and afterwards falls at
``fall_db_per_s`` dB per second (linear in dB, i.e. an exponential decay in
amplitude) until a sample reaches it again. ``max_db`` is the highest peak
since ``reset`` (the clip-light reading).

RMSMeter: the RMS over a rectangular window of the last ``window_ms`` (the time
before the first sample counts as silence); a full-scale sine reads -3.01 dBFS,
or 0 dBFS with ``aes17=True`` (AES17's +3.01 dB so a sine reads its peak).

Thread: ``push`` and the readings run on one thread (the audio thread); the
engine posts readings on its meter ring.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.effect import F32, F64, as_block, check_rate_channels
from dsp.fpu import SAMPLE_LIMIT, clean, ftz_begin, ftz_end
from dsp.params import ParamError
from dsp.truepeak import COEFS, TAPS, TP_DELAY, measure_true_peak, state_size, tp_step

FLOOR_DB = -200.0
FLOOR = 1e-10  # 10 ** (FLOOR_DB / 20)
AES17_DB = 10.0 * math.log10(2.0)

# Peak state per channel at c * PEAK_STATE: reading (linear), hold samples left, max since reset.
PEAK_STATE = 3
LEVEL, HOLD, MAX = range(3)
# Peak params: hold (samples), per-sample decay factor of the fall-back.
HOLD_SAMPLES, DECAY = range(2)


def checked_number(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParamError(f"{name}: {value!r} is not a finite number")
    if not lo <= value <= hi:
        raise ParamError(f"{name}: {value!r} is outside {lo:g}..{hi:g}")
    return float(value)


@njit(cache=True, nogil=True, inline="always")
def _ballistics(v: float, state: F64, at: int, hold: float, decay: float) -> None:  # RT
    r = state[at + LEVEL]
    if v >= r:
        r = v
        state[at + HOLD] = hold
    elif state[at + HOLD] > 0.0:
        state[at + HOLD] -= 1.0
    else:
        r *= decay
        if r < FLOOR:
            r = 0.0
    state[at + LEVEL] = r
    if v > state[at + MAX]:
        state[at + MAX] = v


@njit(cache=True, nogil=True)
def peak_push(inp: F32, state: F64, params: F64) -> None:  # RT
    """Sample-peak ballistics over ``inp``; state ``PEAK_STATE`` floats per channel."""
    saved = ftz_begin()
    frames, channels = inp.shape
    hold = params[HOLD_SAMPLES]
    decay = params[DECAY]
    for c in range(channels):
        at = c * PEAK_STATE
        for i in range(frames):
            _ballistics(abs(clean(inp[i, c])), state, at, hold, decay)
    ftz_end(saved)


@njit(cache=True, nogil=True)
def true_peak_push(  # RT
    inp: F32, state: F64, params: F64, tp_state: F64, coefs: F64
) -> None:
    """True-peak (4x interpolated, dsp.truepeak) ballistics over ``inp``."""
    saved = ftz_begin()
    frames, channels = inp.shape
    hold = params[HOLD_SAMPLES]
    decay = params[DECAY]
    for c in range(channels):
        at = c * PEAK_STATE
        tp_at = c * (TAPS + 1)
        for i in range(frames):
            v = tp_step(clean(inp[i, c]), tp_state, tp_at, coefs)
            _ballistics(v, state, at, hold, decay)
    ftz_end(saved)


@njit(cache=True, nogil=True)
def amplitude_db(values: F64, out: F64, stride: int, at: int, power: bool) -> None:  # RT
    """``out[c] = dB of values[c * stride + at]`` (amplitude, or power if ``power``), floored."""
    for c in range(out.shape[0]):
        v = values[c * stride + at]
        if power:
            out[c] = 10.0 * math.log10(v) if v > FLOOR * FLOOR else FLOOR_DB
        else:
            out[c] = 20.0 * math.log10(v) if v > FLOOR else FLOOR_DB


class PeakMeter:
    """Sample-peak meter with hold and fall-back ballistics; readings in dBFS per channel."""

    latency_samples = 0

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        hold_ms: float = 1000.0,
        fall_db_per_s: float = 20.0,
    ) -> None:
        self.sample_rate = check_rate_channels(sample_rate, channels)
        self.channels = channels
        self.hold_ms = checked_number("hold_ms", hold_ms, 0.0, 60000.0)
        self.fall_db_per_s = checked_number("fall_db_per_s", fall_db_per_s, 0.0, 1e6)
        self.params = np.array([
            round(self.hold_ms * 1e-3 * self.sample_rate),
            10.0 ** (-self.fall_db_per_s / (20.0 * self.sample_rate)),
        ])
        self.state = np.zeros(channels * PEAK_STATE, dtype=np.float64)
        self._level = np.zeros(channels, dtype=np.float64)
        self._max = np.zeros(channels, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self.state[:] = 0.0

    def push(self, block: npt.ArrayLike) -> None:  # RT when block is float32 (n, channels)
        inp = as_block(block, self.channels)
        if inp.shape[0]:
            self._run(inp)

    def _run(self, inp: F32) -> None:  # RT
        peak_push(inp, self.state, self.params)

    @property
    def level_db(self) -> F64:  # RT
        """The ballistic reading per channel (dBFS)."""
        amplitude_db(self.state, self._level, PEAK_STATE, LEVEL, False)
        return self._level

    @property
    def max_db(self) -> F64:  # RT
        """The highest peak per channel since construction or ``reset`` (dBFS)."""
        amplitude_db(self.state, self._max, PEAK_STATE, MAX, False)
        return self._max


class TruePeakMeter(PeakMeter):
    """True-peak meter (dBTP): BS.1770-4 Annex 2 4x interpolation, with the same ballistics.

    Readings lag the input by ``latency_samples`` (the interpolator's delay).
    """

    latency_samples = TP_DELAY

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        hold_ms: float = 1000.0,
        fall_db_per_s: float = 20.0,
    ) -> None:
        self.tp_state = np.zeros(state_size(channels), dtype=np.float64)
        super().__init__(sample_rate, channels, hold_ms=hold_ms, fall_db_per_s=fall_db_per_s)

    def reset(self) -> None:
        self.state[:] = 0.0
        self.tp_state[:] = 0.0

    def _run(self, inp: F32) -> None:  # RT
        true_peak_push(inp, self.state, self.params, self.tp_state, COEFS)


@njit(cache=True, nogil=True)
def rms_push(inp: F32, ring: F64, sums: F64, state: F64) -> None:  # RT
    """Sliding sums of squares over ``ring`` (window, channels); state = [write position].

    The running sums are recomputed exactly each time the ring wraps, so rounding
    cannot accumulate (amortised one extra add per sample).
    """
    saved = ftz_begin()
    frames, channels = inp.shape
    window = ring.shape[0]
    pos = int(state[0])
    i = 0
    while i < frames:
        run = min(window - pos, frames - i)
        for c in range(channels):
            total = sums[c]
            for n in range(run):
                x = clean(inp[i + n, c])
                sq = x * x
                total += sq - ring[pos + n, c]
                ring[pos + n, c] = sq
            sums[c] = total
        i += run
        pos += run
        if pos == window:
            pos = 0
            for c in range(channels):
                total = 0.0
                for n in range(window):
                    total += ring[n, c]
                sums[c] = total
    state[0] = pos
    ftz_end(saved)


@njit(cache=True, nogil=True)
def _rms_db(sums: F64, window: int, offset_db: float, out: F64) -> None:  # RT
    for c in range(out.shape[0]):
        ms = sums[c] / window
        out[c] = 10.0 * math.log10(ms) + offset_db if ms > FLOOR * FLOOR else FLOOR_DB


class RMSMeter:
    """RMS over a sliding rectangular window of ``window_ms``; readings in dBFS per channel."""

    latency_samples = 0

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        window_ms: float = 300.0,
        aes17: bool = False,
    ) -> None:
        self.sample_rate = check_rate_channels(sample_rate, channels)
        self.channels = channels
        self.window_ms = checked_number("window_ms", window_ms, 1.0, 10000.0)
        self.window = max(round(self.window_ms * 1e-3 * self.sample_rate), 1)
        self.offset_db = AES17_DB if aes17 else 0.0
        self.ring = np.zeros((self.window, channels), dtype=np.float64)
        self.sums = np.zeros(channels, dtype=np.float64)
        self.state = np.zeros(1, dtype=np.float64)
        self._level = np.zeros(channels, dtype=np.float64)

    def reset(self) -> None:
        self.ring[:] = 0.0
        self.sums[:] = 0.0
        self.state[:] = 0.0

    def push(self, block: npt.ArrayLike) -> None:  # RT when block is float32 (n, channels)
        inp = as_block(block, self.channels)
        if inp.shape[0]:
            rms_push(inp, self.ring, self.sums, self.state)

    @property
    def level_db(self) -> F64:  # RT
        """RMS of the last ``window_ms`` per channel (dBFS; AES17-referenced if asked)."""
        _rms_db(self.sums, self.window, self.offset_db, self._level)
        return self._level


# -- offline conveniences (allocate) -------------------------------------------------------


def _signal(x: npt.ArrayLike) -> F32:
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ParamError(f"x: expected shape (frames, channels), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _cleaned(x: npt.ArrayLike) -> F64:
    """As ``dsp.fpu.clean`` sample by sample: NaN to 0, clamped to +-64."""
    arr = np.nan_to_num(_signal(x).astype(np.float64), nan=0.0)
    return np.clip(arr, -SAMPLE_LIMIT, SAMPLE_LIMIT)


def _db(values: F64, ref: float) -> F64:
    with np.errstate(divide="ignore"):
        return np.maximum(ref * np.log10(np.maximum(values, 0.0)), FLOOR_DB)


def peak_db(x: npt.ArrayLike) -> F64:
    """Sample peak per channel of a whole signal (dBFS)."""
    arr = _cleaned(x)
    return _db(np.max(np.abs(arr), axis=0) if arr.shape[0] else np.zeros(arr.shape[1]), 20.0)


def rms_db(x: npt.ArrayLike) -> F64:
    """RMS per channel of a whole signal (dBFS; a full-scale sine reads -3.01)."""
    arr = _cleaned(x)
    return _db(np.mean(arr * arr, axis=0) if arr.shape[0] else np.zeros(arr.shape[1]), 10.0)


def true_peak_db(x: npt.ArrayLike) -> F64:
    """True peak per channel of a whole signal (dBTP), by dsp.truepeak's interpolator."""
    return _db(measure_true_peak(_signal(x)), 20.0)
