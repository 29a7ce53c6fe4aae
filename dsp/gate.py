"""Noise gate with hysteresis and hold, and an optional external sidechain key.

Detector: the sample peak across channels (stereo-linked) held over a sliding window of
``DETECT_S`` = 10 ms (on the 16-sample hop grid of dsp.compressor, plus the samples of the
current hop), so a steady tone above ~50 Hz reads as a steady level rather than dipping at
every zero crossing. The window adds up to 10 ms to the time the gate takes to notice that
the signal has gone.

State machine, per sample: a closed gate opens when the level reaches ``open_db``; an open
gate stays open while the level is at or above ``close_db`` (clamped to at most
``open_db``); once the level is below it for ``hold_ms`` the gate closes. Between the two
thresholds nothing changes state: that is the hysteresis that keeps a signal hovering
around one threshold from chattering.

Gain: a one-pole in the linear domain toward 1 (open) or ``10**(-range_db/20)`` (closed),
with time constant ``attack_ms`` while rising and ``release_ms`` while falling. The gain
reaches its target exactly (it snaps within 1e-9), so an open gate passes the signal
bit-exactly and a closed one attenuates by exactly ``range_db``. Changing the range moves
the closed gain along the same one-pole: no clicks.

Params layout (float64): ``NoiseGate.PARAMS`` order, then the sample rate (``P_SR``).
State layout (float64): ``S_*`` scalars, then a ``hold_max`` block of ``RING`` hop peaks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.compressor import HOP, RING, _Keyed, hold_max, peak_bits
from dsp.effect import F32, F64, bind_params
from dsp.fastmath import bits_f32
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param

DETECT_S = 0.010

P_OPEN, P_CLOSE, P_ATTACK, P_HOLD, P_RELEASE, P_RANGE, P_SR = range(7)
PARAM_SIZE = 7

(S_OPEN, S_HOLD_LEFT, S_GAIN, S_HOP_PEAK, S_COUNTER, S_TRANSITIONS, S_HELD, S_CACHE) = range(8)
# S_CACHE..: the parameters the derived values below were computed from
S_OPEN_LIN = S_CACHE + 6
S_CLOSE_LIN, S_K_ATTACK, S_K_RELEASE, S_HOLD_N, S_FLOOR, S_WINDOW = range(S_OPEN_LIN + 1,
                                                                          S_OPEN_LIN + 7)
S_PEAKS = S_WINDOW + 1
STATE_SIZE = S_PEAKS + 3 + RING


@njit(cache=True, nogil=True)
def _derive(state: F64, params: F64) -> None:  # RT
    """Recompute linear thresholds and coefficients if a parameter changed."""
    changed = False
    for j in range(6):
        if state[S_CACHE + j] != params[j]:
            state[S_CACHE + j] = params[j]
            changed = True
    if not changed:
        return
    sr = params[P_SR]
    open_db = params[P_OPEN]
    state[S_OPEN_LIN] = 10.0 ** (open_db / 20.0)
    state[S_CLOSE_LIN] = 10.0 ** (min(params[P_CLOSE], open_db) / 20.0)
    state[S_K_ATTACK] = 1.0 - math.exp(-1.0 / (max(params[P_ATTACK], 1e-3) * 1e-3 * sr))
    state[S_K_RELEASE] = 1.0 - math.exp(-1.0 / (max(params[P_RELEASE], 1e-3) * 1e-3 * sr))
    state[S_HOLD_N] = math.floor(max(params[P_HOLD], 0.0) * 1e-3 * sr + 0.5)
    state[S_FLOOR] = 10.0 ** (-max(params[P_RANGE], 0.0) / 20.0)
    state[S_WINDOW] = max(1, min(RING, int(DETECT_S * sr / HOP + 0.5)))


@njit(cache=True, nogil=True)
def gate_snap(state: F64, params: F64) -> None:  # RT
    """Clear ``state``: the gate starts closed, at its closed gain."""
    state[:] = 0.0
    state[S_CACHE:S_CACHE + 6] = math.nan
    _derive(state, params)
    state[S_GAIN] = state[S_FLOOR]


@njit(cache=True, nogil=True, inline="always")
def _gate(inp: F32, key: F32, out: F32, state: F64, params: F64) -> None:  # RT
    frames, channels = inp.shape
    kch = key.shape[1]
    flat_key = key.reshape(-1)
    _derive(state, params)
    open_lin = state[S_OPEN_LIN]
    close_lin = state[S_CLOSE_LIN]
    k_att = state[S_K_ATTACK]
    k_rel = state[S_K_RELEASE]
    hold_n = state[S_HOLD_N]
    floor = state[S_FLOOR]
    window = int(state[S_WINDOW])
    is_open = state[S_OPEN] > 0.5
    hold_left = state[S_HOLD_LEFT]
    g = state[S_GAIN]
    hop_peak = int(state[S_HOP_PEAK])
    counter = int(state[S_COUNTER])
    transitions = state[S_TRANSITIONS]
    held = state[S_HELD]
    for i in range(frames):
        if counter == 0:
            # the window: the last (window - 1) whole hops and the current one
            last = bits_f32(hop_peak)
            held = hold_max(state, S_PEAKS, RING, last, max(window - 1, 1))
            hop_peak = 0
        hop_peak = peak_bits(flat_key, i * kch, (i + 1) * kch, hop_peak)
        now = bits_f32(hop_peak)
        level = held if held > now else now
        if is_open:
            if level >= close_lin:
                hold_left = hold_n
            elif hold_left > 0.0:
                hold_left -= 1.0
            else:
                is_open = False
                transitions += 1.0
        elif level >= open_lin:
            is_open = True
            hold_left = hold_n
            transitions += 1.0
        target = 1.0 if is_open else floor
        diff = target - g
        if diff != 0.0:
            g = target if abs(diff) < 1e-9 else g + diff * (k_att if diff > 0.0 else k_rel)
        for c in range(channels):
            out[i, c] = clean(inp[i, c]) * g
        counter += 1
        if counter == HOP:
            counter = 0
    state[S_OPEN] = 1.0 if is_open else 0.0
    state[S_HOLD_LEFT] = hold_left
    state[S_GAIN] = g
    state[S_HOP_PEAK] = hop_peak
    state[S_COUNTER] = counter
    state[S_TRANSITIONS] = transitions
    state[S_HELD] = held


@njit(cache=True, nogil=True)
def gate_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Gate ``inp`` into ``out`` (may be the same array), keyed on ``inp``."""
    saved = ftz_begin()
    _gate(inp, inp, out, state, params)
    ftz_end(saved)


@njit(cache=True, nogil=True)
def gate_sidechain_kernel(inp: F32, key: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Gate ``inp`` into ``out``, the detector reading ``key`` (same frames, any channels)."""
    saved = ftz_begin()
    _gate(inp, key, out, state, params)
    ftz_end(saved)


class NoiseGate(_Keyed):
    """Noise gate: open/close thresholds (hysteresis), attack, hold, release, range, and an
    external sidechain (``process_sidechain``)."""

    PARAMS = (
        Param("open_db", "dB", -90.0, 0.0, -40.0, "peak level at which the gate opens"),
        Param("close_db", "dB", -90.0, 0.0, -50.0,
              "peak level below which an open gate starts to close (at most open_db)"),
        Param("attack_ms", "ms", 0.05, 200.0, 0.5, "time constant of opening"),
        Param("hold_ms", "ms", 0.0, 2000.0, 20.0,
              "time the level must stay below close_db before the gate closes"),
        Param("release_ms", "ms", 1.0, 5000.0, 100.0, "time constant of closing"),
        Param("range_db", "dB", 0.0, 120.0, 80.0, "attenuation when closed (0 = no effect)"),
    )
    EXAMPLE = {
        "open_db": -30.0, "close_db": -42.0, "attack_ms": 1.0, "hold_ms": 30.0,
        "release_ms": 150.0, "range_db": 40.0,
    }

    def make_state(self) -> F64:
        self._kp = bind_params(self)  # [params..., sample_rate]: set() writes into it
        return np.zeros(STATE_SIZE, dtype=np.float64)

    def on_reset(self) -> None:
        gate_snap(self.state, self._kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        gate_kernel(inp, out, self.state, self._kp)

    def run_keyed(self, inp: F32, key: F32, out: F32) -> None:  # RT
        gate_sidechain_kernel(inp, key, out, self.state, self._kp)

    @property
    def is_open(self) -> bool:
        """Whether the gate is open after the last block (any thread; for meters)."""
        return bool(self.state[S_OPEN] > 0.5)

    @property
    def transitions(self) -> int:
        """Opens plus closes since the last reset (any thread; for meters and tests)."""
        return int(self.state[S_TRANSITIONS])

    @property
    def gain_db(self) -> float:
        """The gate's current gain in dB (0 open, -range_db closed)."""
        return 20.0 * math.log10(max(float(self.state[S_GAIN]), 1e-12))
