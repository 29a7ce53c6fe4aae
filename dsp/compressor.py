"""Feed-forward compressor: the gain computer and smoothing of Giannoulis, Massberg and Reiss,
"Digital Dynamic Range Compressor Design - A Tutorial and Analysis" (JAES 2012).

Signal flow. A stereo-linked detector reads the key (the input itself, or an external
sidechain): *peak* takes the largest ``|x|`` across channels, *RMS* the mean power across
channels averaged by a one-pole of ``rms_ms``. The level in dB goes through the static
curve (``static_gain_db``: threshold, ratio, quadratic soft knee of width ``knee_db``); the
gain reduction it asks for is smoothed in dB by a smooth branching one-pole (``attack_ms``
while the reduction grows, ``release_ms`` while it shrinks), then makeup gain is added and
``mix`` blends compressed and dry signal.

Levels fed to the law: the peak detector gives the sample peak in dBFS (a sine of
amplitude A reads ``20 log10 A``); the RMS detector gives the RMS in dBFS (the same sine
reads ``20 log10 A - 3.01``).

Cost. The gain law (one log2, one exp2, both polynomial: no libm calls) runs once per hop of
``HOP`` = 16 samples; within a hop the linear output factor is interpolated per sample. The
one-pole is exact at hop boundaries. Three refinements keep the time constants honest:

- a frame louder than the level the current hop was computed from (by 0.086 dB) ends the hop
  at once, so an attack starts on the sample that calls for it, not up to a hop later;
- attacks faster than ``EXACT_ATTACK`` = 64 samples get their gain computed per sample while
  the reduction grows;
- releases shorter than 40 hops shorten the hop (``hop_length``: release/40, 1..16 samples).

The peak detector holds the largest hop peak over the last ``min(10 ms, release/20)``
(``hold_hops``), so a steady sine above ~50 Hz reads its peak without ripple; this delays
the start of the release by release/20. The hops are positions in the stream, not in the
block, so the output does not depend on how the stream is cut into blocks.

Parameters ramp: threshold, slope (``1 - 1/ratio``), knee, makeup and mix move toward their
targets with a 20 ms one-pole stepped on the hop grid.

The arithmetic lives in dsp.gaincomputer (shared with the strip bank); its params layout
(``P_*``) is this effect's kernel params. State (float64, ``STATE_SIZE``): the gain
computer's state (``dsp.gaincomputer.STATE_SIZE``), then two scratch rows of ``CHUNK``
numbers (the detector levels and the output factors of the chunk in flight). Call
``compressor_snap`` once after allocating or clearing a state (the wrapper does it in
``reset``).

Kernels take C-contiguous arrays. ``compressor_kernel(inp, out, state, params)`` keys on the
input; ``compressor_sidechain_kernel(inp, key, out, state, params)`` on an external key.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp import gaincomputer as gc
from dsp.effect import F32, F64, Effect, bind_params
from dsp.fastmath import fast_exp2 as fast_exp2
from dsp.fastmath import fast_log2 as fast_log2
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.gaincomputer import (
    CHUNK,
    HOP,
    P_ATTACK,
    P_DETECTOR,
    P_KNEE,
    P_MAKEUP,
    P_MIX,
    P_RATIO,
    P_RELEASE,
    P_THRESHOLD,
    PARAM_SIZE,
    RATIO_INF,
    RING,
    S_RED,
    compressor_snap,
    detect_peak,
    detect_power,
    gain_factors,
    hold_max,
    peak_bits,
    static_gain_db,
)
from dsp.params import Param, ParamError

__all__ = [
    "CHUNK",
    "DETECTORS",
    "HOP",
    "PARAM_SIZE",
    "P_ATTACK",
    "P_DETECTOR",
    "P_KNEE",
    "P_MAKEUP",
    "P_MIX",
    "P_RATIO",
    "P_RELEASE",
    "P_THRESHOLD",
    "RATIO_INF",
    "RING",
    "STATE_SIZE",
    "Compressor",
    "compressor_kernel",
    "compressor_sidechain_kernel",
    "compressor_snap",
    "fast_exp2",
    "fast_log2",
    "hold_max",
    "peak_bits",
    "static_gain_db",
]

DETECTORS = ("peak", "rms")
S_DET = gc.STATE_SIZE  # scratch: the detector levels of the chunk in flight
S_FACTOR = S_DET + CHUNK  # scratch: their output factors
STATE_SIZE = S_FACTOR + CHUNK


@njit(cache=True, nogil=True, inline="always")
def _compress(inp: F32, key: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Chunk by chunk: detect on ``key``, run the gain computer, scale ``inp`` into ``out``
    (``out = clean(inp) * factor``; may be the same array)."""
    frames, channels = inp.shape
    kch = key.shape[1]
    rms = params[P_DETECTOR] >= 0.5
    det = state[S_DET:S_DET + CHUNK]
    g = state[S_FACTOR:S_FACTOR + CHUNK]
    for start in range(0, frames, CHUNK):
        n = min(CHUNK, frames - start)
        if rms:
            detect_power(key, start, n, det)
        else:
            detect_peak(key, start, n, det)
        gain_factors(det, g, n, state, params, kch)
        for i in range(n):
            f = g[i]
            for c in range(channels):
                out[start + i, c] = clean(inp[start + i, c]) * f


@njit(cache=True, nogil=True)
def compressor_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Compress ``inp`` into ``out`` (may be the same array); the detector reads ``inp``.

    Arrays are C-contiguous; call ``compressor_snap(state, params)`` once before the first
    block.
    """
    saved = ftz_begin()
    _compress(inp, inp, out, state, params)
    ftz_end(saved)


@njit(cache=True, nogil=True)
def compressor_sidechain_kernel(  # RT
    inp: F32, key: F32, out: F32, state: F64, params: F64
) -> None:
    """Compress ``inp`` into ``out``, the detector reading ``key`` (an external sidechain with
    the frames of ``inp`` and any number of channels; it may be the same array as ``inp``).
    """
    saved = ftz_begin()
    _compress(inp, key, out, state, params)
    ftz_end(saved)


class _Keyed(Effect):
    """An effect whose detector may listen to an external key (sidechain) signal."""

    def run_keyed(self, inp: F32, key: F32, out: F32) -> None:  # RT
        raise NotImplementedError

    def run(self, inp: F32, out: F32) -> None:  # RT
        self.run_keyed(inp, inp, out)

    def process_sidechain(  # RT when both are float32 (n, c) and n has been seen
        self, block: npt.ArrayLike, key: npt.ArrayLike
    ) -> F32:
        """Process ``block`` with the detector driven by ``key`` instead of the input.

        ``key`` is (frames, channels) with the frames of ``block`` and either this effect's
        channel count or one channel; anything else raises ParamError. Returns a view of
        the output buffer, like ``process``.
        """
        inp = self._as_block(block)
        k = self._as_key(key, inp.shape[0])
        out = self._output(inp.shape[0])
        if inp.shape[0]:
            self.run_keyed(inp, k, out)
        return out

    def _as_key(self, key: npt.ArrayLike, frames: int) -> F32:  # RT for float32 (n, c) input
        if not (
            type(key) is np.ndarray
            and key.dtype == np.float32
            and key.ndim == 2
            and key.flags.c_contiguous
        ):
            arr = np.asarray(key)
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            key = np.ascontiguousarray(arr, dtype=np.float32) if arr.ndim == 2 else arr
        if key.ndim != 2 or key.shape[0] != frames or key.shape[1] not in (1, self.channels):
            raise ParamError(
                f"key: expected shape ({frames}, {self.channels}) or ({frames}, 1), "
                f"got {key.shape}"
            )
        return key


class Compressor(_Keyed):
    """Feed-forward compressor: peak/RMS stereo-linked detector, soft knee, smooth attack and
    release on the gain in dB, makeup, dry/wet mix and an external sidechain
    (``process_sidechain``)."""

    PARAMS = (
        Param("detector", "", 0, 1, 0, "level detector: sample peak or RMS", DETECTORS),
        Param("threshold_db", "dB", -60.0, 0.0, -18.0, "level where compression starts"),
        Param("ratio", ":1", 1.0, RATIO_INF, 4.0,
              "dB in per dB out above the threshold; 100 means infinite (limiting)"),
        Param("knee_db", "dB", 0.0, 24.0, 6.0, "width of the soft knee (0 = hard knee)"),
        Param("attack_ms", "ms", 0.1, 500.0, 10.0,
              "time constant while the gain reduction grows"),
        Param("release_ms", "ms", 1.0, 5000.0, 100.0,
              "time constant while the gain reduction shrinks"),
        Param("makeup_db", "dB", -24.0, 24.0, 0.0, "gain added after compression"),
        Param("mix", "", 0.0, 1.0, 1.0, "share of the compressed signal (0 dry, 1 all wet)"),
        Param("rms_ms", "ms", 1.0, 300.0, 10.0, "averaging time of the RMS detector"),
    )
    EXAMPLE = {
        "threshold_db": -24.0, "ratio": 4.0, "knee_db": 6.0, "attack_ms": 5.0,
        "release_ms": 80.0, "makeup_db": 6.0, "mix": 0.8, "detector": "rms",
    }

    def make_state(self) -> F64:
        self._kp = bind_params(self)  # [params..., sample_rate]: set() writes into it
        return np.zeros(STATE_SIZE, dtype=np.float64)

    def on_reset(self) -> None:
        compressor_snap(self.state, self._kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        compressor_kernel(inp, out, self.state, self._kp)

    def run_keyed(self, inp: F32, key: F32, out: F32) -> None:  # RT
        compressor_sidechain_kernel(inp, key, out, self.state, self._kp)

    @property
    def gain_reduction_db(self) -> float:
        """The current smoothed gain reduction in dB, >= 0 (before makeup and mix): for meters.
        Any thread may read it; it lags the audio by at most one block."""
        return float(self.state[S_RED])
