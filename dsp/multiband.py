"""Three-band compressor: LR4 crossovers (dsp.crossover.split3), one compressor per band
(dsp.compressor), bands summed.

With every ratio at 1 and every makeup at 0 the bands pass unchanged, so the output is the
splitter's all-pass sum (``BandSplitter3.process``) to float32 rounding.

Each band's compressor is the full dsp.compressor kernel with its own threshold, ratio,
attack, release and makeup; knee and detector are shared. The bands are computed a chunk of
``CHUNK`` frames at a time in a float32 scratch array ``bands`` of shape
(3, CHUNK, channels), which the caller owns (the kernel allocates nothing).

Params layout (float64): ``[low_hz, high_hz, sample_rate]`` (split3's), then three
compressor params blocks of ``compressor.PARAM_SIZE`` (low, mid, high) at
``SPLIT_PARAMS + b * compressor.PARAM_SIZE``.
State layout (float64): split3's state (``crossover.state_size(channels)``), then three
compressor states of ``compressor.STATE_SIZE``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from dsp import compressor as comp
from dsp import gaincomputer as gc
from dsp.crossover import split3, split3_snap
from dsp.crossover import state_size as split_state_size
from dsp.effect import F32, F64, Effect
from dsp.fpu import ftz_begin, ftz_end
from dsp.params import Param

CHUNK = 128
RMS_MS = 10.0  # RMS detector averaging time of every band
SPLIT_PARAMS = 3
BANDS = ("low", "mid", "high")
CP = comp.PARAM_SIZE
CS = comp.STATE_SIZE

# per band: (threshold_db, ratio, attack_ms, release_ms) defaults
_DEFAULTS = {"low": (-18.0, 3.0, 20.0, 150.0), "mid": (-18.0, 3.0, 10.0, 100.0),
             "high": (-18.0, 3.0, 5.0, 80.0)}


def param_size() -> int:
    return SPLIT_PARAMS + 3 * CP


def state_size(channels: int) -> int:
    return split_state_size(channels) + 3 * CS


@njit(cache=True, nogil=True)
def multiband_snap(state: F64, params: F64) -> None:  # RT
    """Clear ``state``; crossovers and compressors jump to their targets."""
    state[:] = 0.0
    split_at = state.shape[0] - 3 * CS
    split3_snap(state[:split_at], params[:SPLIT_PARAMS])
    for b in range(3):
        p = SPLIT_PARAMS + b * CP
        comp.compressor_snap(state[split_at + b * CS:split_at + (b + 1) * CS], params[p:p + CP])


@njit(cache=True, nogil=True)
def multiband_kernel(inp: F32, out: F32, bands: F32, state: F64, params: F64) -> None:  # RT
    """Split, compress each band, sum: ``inp`` into ``out`` (may be the same array).

    ``bands`` is float32 scratch of shape (3, CHUNK, channels); all arrays C-contiguous.
    """
    saved = ftz_begin()
    frames, channels = inp.shape
    split_at = state.shape[0] - 3 * CS
    split_state = state[:split_at]
    split_params = params[:SPLIT_PARAMS]
    start = 0
    while start < frames:
        n = min(CHUNK, frames - start)
        low = bands[0, :n]
        mid = bands[1, :n]
        high = bands[2, :n]
        split3(inp[start:start + n], low, mid, high, split_state, split_params)
        for b in range(3):
            band = bands[b, :n]
            p = SPLIT_PARAMS + b * CP
            s = split_at + b * CS
            comp.compressor_kernel(band, band, state[s:s + CS], params[p:p + CP])
        for i in range(n):
            for c in range(channels):
                out[start + i, c] = low[i, c] + mid[i, c] + high[i, c]
        start += n
    ftz_end(saved)


def _band_params(band: str) -> tuple[Param, ...]:
    thr, ratio, attack, release = _DEFAULTS[band]
    return (
        Param(f"{band}_threshold_db", "dB", -60.0, 0.0, thr, f"{band} band: threshold"),
        Param(f"{band}_ratio", ":1", 1.0, comp.RATIO_INF, ratio,
              f"{band} band: ratio (100 = limiting)"),
        Param(f"{band}_attack_ms", "ms", 0.1, 500.0, attack, f"{band} band: attack time"),
        Param(f"{band}_release_ms", "ms", 1.0, 5000.0, release, f"{band} band: release time"),
        Param(f"{band}_makeup_db", "dB", -24.0, 24.0, 0.0, f"{band} band: makeup gain"),
    )


BAND_PARAM_COUNT = 5
# where each of a band's parameters goes in its compressor params block
_TO_COMPRESSOR = (gc.P_THRESHOLD, gc.P_RATIO, gc.P_ATTACK, gc.P_RELEASE, gc.P_MAKEUP)


class MultibandCompressor(Effect):
    """Three LR4 bands, each with its own compressor, summed."""

    PARAMS = (
        Param("low_hz", "Hz", 20.0, 2000.0, 200.0, "crossover between low and mid"),
        Param("high_hz", "Hz", 200.0, 20000.0, 2500.0,
              "crossover between mid and high (at least low_hz)"),
        Param("knee_db", "dB", 0.0, 24.0, 6.0, "soft knee width of every band"),
        Param("detector", "", 0, 1, 0, "level detector of every band", comp.DETECTORS),
        *_band_params("low"), *_band_params("mid"), *_band_params("high"),
    )
    EXAMPLE = {
        "low_hz": 150.0, "high_hz": 3000.0, "low_threshold_db": -24.0, "low_ratio": 4.0,
        "mid_threshold_db": -20.0, "mid_ratio": 2.5, "high_threshold_db": -26.0,
        "high_ratio": 3.0, "high_makeup_db": 2.0,
    }
    _FIRST_BAND = 4  # index in PARAMS of low_threshold_db

    def __init__(self, sample_rate: float = 48000.0, channels: int = 2, **kw: Any) -> None:
        self._kp = np.zeros(param_size(), dtype=np.float64)
        super().__init__(sample_rate, channels, **kw)
        self._bands = np.zeros((3, CHUNK, self.channels), dtype=np.float32)

    def make_state(self) -> F64:
        return np.zeros(state_size(self.channels), dtype=np.float64)

    def set(self, **values: Any) -> None:  # control thread; writes numbers only
        super().set(**values)
        kp, params = self._kp, self.params
        kp[0] = params[0]
        kp[1] = max(params[1], params[0])
        kp[2] = self.sample_rate
        for b in range(3):
            p = SPLIT_PARAMS + b * CP
            kp[p + gc.P_KNEE] = params[2]
            kp[p + gc.P_DETECTOR] = params[3]
            kp[p + gc.P_MIX] = 1.0
            kp[p + gc.P_RMS] = RMS_MS
            kp[p + gc.P_SR] = self.sample_rate
            first = self._FIRST_BAND + b * BAND_PARAM_COUNT
            for j, to in enumerate(_TO_COMPRESSOR):
                kp[p + to] = params[first + j]

    def on_reset(self) -> None:
        multiband_snap(self.state, self._kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        multiband_kernel(inp, out, self._bands, self.state, self._kp)

    def gain_reduction_db(self, band: str) -> float:
        """Current gain reduction of one band ("low", "mid", "high") in dB, >= 0."""
        b = BANDS.index(band)
        at = state_size(self.channels) - 3 * CS + b * CS + gc.S_RED
        return float(self.state[at])

