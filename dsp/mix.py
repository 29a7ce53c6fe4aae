"""Crossfader curves, a two-input Crossfader, and summing tracks into a bus.

Curves (``position`` 0 = all A .. 1 = all B; gains ``(a, b)``):

* ``linear``: ``(1 - p, p)``; the amplitudes sum to 1 (right for correlated,
  e.g. identical, material).
* ``constant_power``: ``(cos(p pi/2), sin(p pi/2))``; ``a^2 + b^2 = 1``
  everywhere, -3.01 dB each at the centre (right for unrelated tracks).
* ``cut`` (DJ scratch curve): ``(min(1, (1 - p) / w), min(1, p / w))`` with the cut
  width ``w = 0.5 * 0.02 ** slope``: both decks stay at full level over the
  middle of the travel and each is cut linearly within ``w`` of its far end.
  ``slope`` 0 gives ``w`` = 0.5 (a gentle fade: both at 1 only at the centre),
  ``slope`` 1 gives ``w`` = 0.01 (a cut in the last 1% of the travel).

``crossfade`` is the plain-Python entry (curve by name); ``crossfade_gains`` the
njit one (curve by index) for kernels.

The ``Crossfader`` effect takes two inputs (``process2(a, b)``; ``process(x)``
feeds the same block to both decks). Its position follows a one-pole
(``XF_SMOOTH_S``, 1 ms: fast enough for scratching) stepped on an absolute
16-sample grid, with the gains computed at each grid point and interpolated
linearly in between. State ``[pos, ga0, gb0, ga1, gb1, curve, slope, counter]``;
params ``[position, curve, slope, sr]``.

``sum_kernel(tracks, out, state, params)`` sums ``tracks`` (tracks, frames,
channels) into ``out`` (frames, channels) and applies the headroom gain
(``params = [headroom_db, sr]``, a per-sample one-pole of ``SUM_SMOOTH_S``;
state ``[gain]``). ``Summer`` is a small wrapper around it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.effect import F32, F64, MAX_CHANNELS, Effect, bind_params
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param, ParamError

CURVES = ("linear", "constant_power", "cut")
LINEAR, CONSTANT_POWER, CUT = range(3)
CUT_WIDEST = 0.5
CUT_NARROWEST = 0.01
HOP = 16
XF_SMOOTH_S = 0.001
SUM_SMOOTH_S = 0.01


@njit(cache=True, nogil=True, inline="always")
def cut_width(slope: float) -> float:  # RT
    """Travel over which the cut curve fades a deck: 0.5 at slope 0 down to 0.01 at slope 1."""
    s = 0.0 if slope != slope else min(max(slope, 0.0), 1.0)
    return float(CUT_WIDEST * (CUT_NARROWEST / CUT_WIDEST) ** s)


@njit(cache=True, nogil=True)
def crossfade_gains(position: float, curve: int, slope: float) -> tuple[float, float]:  # RT
    """(gain_a, gain_b) for a fader position 0..1 (NaN counts as 0)."""
    p = 0.0 if position != position else min(max(position, 0.0), 1.0)
    if curve == CONSTANT_POWER:
        if p >= 1.0:
            return 0.0, 1.0
        t = p * math.pi / 2.0
        return math.cos(t), math.sin(t)
    if curve == CUT:
        w = cut_width(slope)
        return min(1.0, (1.0 - p) / w), min(1.0, p / w)
    return 1.0 - p, p


def crossfade(
    position: float, curve: str = "constant_power", slope: float = 0.5
) -> tuple[float, float]:
    """(gain_a, gain_b) for ``position`` 0..1 under a curve named in ``CURVES``."""
    if curve not in CURVES:
        raise ParamError(f"curve: {curve!r} is not one of {', '.join(CURVES)}")
    a, b = crossfade_gains(float(position), CURVES.index(curve), float(slope))
    return float(a), float(b)


# -- the Crossfader effect ---------------------------------------------------------

X_POS, X_GA0, X_GB0, X_GA1, X_GB1, X_CURVE, X_SLOPE, X_COUNTER = range(8)
X_STATE = 8


@njit(cache=True, nogil=True)
def crossfade_reset(state: F64, params: F64) -> None:  # RT
    state[X_POS] = params[0]
    state[X_CURVE] = params[1]
    state[X_SLOPE] = params[2]
    ga, gb = crossfade_gains(params[0], int(params[1]), params[2])
    state[X_GA0] = state[X_GA1] = ga
    state[X_GB0] = state[X_GB1] = gb
    state[X_COUNTER] = 0.0


@njit(cache=True, nogil=True)
def _xf_grid(state: F64, params: F64, k: float) -> None:  # RT
    target = params[0]
    pos = state[X_POS]
    pos = target if abs(target - pos) < 1e-6 else pos + k * (target - pos)
    state[X_POS] = pos
    state[X_CURVE] = params[1]
    state[X_SLOPE] = params[2]
    state[X_GA0] = state[X_GA1]
    state[X_GB0] = state[X_GB1]
    ga, gb = crossfade_gains(pos, int(params[1]), params[2])
    state[X_GA1] = ga
    state[X_GB1] = gb


@njit(cache=True, nogil=True)
def crossfade_kernel(a: F32, b: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """``out = gain_a * a + gain_b * b`` with ramped gains; ``out`` may be ``a`` or ``b``."""
    saved = ftz_begin()
    frames, channels = a.shape
    counter = int(state[X_COUNTER])
    ga1 = state[X_GA1]
    gb1 = state[X_GB1]
    steady = (
        state[X_POS] == params[0] and state[X_CURVE] == params[1]
        and state[X_SLOPE] == params[2] and state[X_GA0] == ga1 and state[X_GB0] == gb1
    )
    if steady:
        for c in range(channels):
            for i in range(frames):
                out[i, c] = ga1 * clean(a[i, c]) + gb1 * clean(b[i, c])
        state[X_COUNTER] = (counter + frames) % HOP
        ftz_end(saved)
        return
    k = 1.0 - math.exp(-HOP / (XF_SMOOTH_S * params[3]))
    start = 0
    while start < frames:
        if counter == 0:
            _xf_grid(state, params, k)
        run = min(HOP - counter, frames - start)
        ga0 = state[X_GA0]
        gb0 = state[X_GB0]
        da = (state[X_GA1] - ga0) / HOP
        db = (state[X_GB1] - gb0) / HOP
        for j in range(run):
            i = start + j
            step = counter + j + 1.0
            ga = ga0 + da * step
            gb = gb0 + db * step
            for c in range(channels):
                out[i, c] = ga * clean(a[i, c]) + gb * clean(b[i, c])
        start += run
        counter = (counter + run) % HOP
    state[X_COUNTER] = counter
    ftz_end(saved)


class Crossfader(Effect):
    """Two-input crossfader (``process2(a, b)``) with linear, constant-power and cut curves.

    ``process(x)`` feeds ``x`` to both decks, which makes the curve a gain
    (1 for linear, up to sqrt 2 for constant power, up to 2 for cut).
    """

    PARAMS = (
        Param("position", "", 0.0, 1.0, 0.5, "0 deck A only .. 1 deck B only"),
        Param("curve", "", 0, len(CURVES) - 1, CONSTANT_POWER,
              "linear, constant_power (sin/cos) or cut (DJ scratch curve)", CURVES),
        Param("slope", "", 0.0, 1.0, 0.5, "cut curve: 0 gentle (fades over half the "
              "travel) .. 1 cut within the last 1%"),
    )
    EXAMPLE = {"position": 0.3, "curve": "cut", "slope": 0.7}

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        return np.zeros(X_STATE, dtype=np.float64)

    def on_reset(self) -> None:
        crossfade_reset(self.state, self.kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        crossfade_kernel(inp, inp, out, self.state, self.kp)

    def process2(self, a: npt.ArrayLike, b: npt.ArrayLike) -> F32:  # RT for float32 blocks
        """Crossfade deck ``a`` into deck ``b`` (same shape); a view of the output buffer.

        Thread: the audio thread (like ``process``).
        """
        block_a = self._as_block(a)
        block_b = self._as_block(b)
        if block_a.shape != block_b.shape:
            raise ParamError(f"block: decks differ in shape, {block_a.shape} and {block_b.shape}")
        n = block_a.shape[0]
        out = self._views.get(n)
        if out is None:  # first block of this size: not RT
            if n > self._out.shape[0]:
                self._out = np.zeros((n, self.channels), dtype=np.float32)
                self._views.clear()
            out = self._views[n] = self._out[:n]
        if n:
            crossfade_kernel(block_a, block_b, out, self.state, self.kp)
        return out


# -- summing -----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def sum_kernel(tracks: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """``out = gain * sum(tracks)``; ``tracks`` is float32 (tracks, frames, channels).

    Both arrays must be C-contiguous (the loops run over flat views, which
    vectorise: 3-5x faster than 2-D indexing); other layouts fail to compile.
    """
    saved = ftz_begin()
    count, frames, channels = tracks.shape
    n = frames * channels
    flat = out.reshape(n)
    for j in range(n):
        flat[j] = 0.0
    for t in range(count):
        track = tracks[t].reshape(n)
        for j in range(n):
            flat[j] += clean(track[j])
    target = 10.0 ** (params[0] / 20.0)
    g = state[0]
    i = 0
    if g != target:  # ramp per frame until the gain snaps to its target
        k = 1.0 - math.exp(-1.0 / (SUM_SMOOTH_S * params[1]))
        while i < frames and g != target:
            g = target if abs(target - g) < 1e-9 else g + k * (target - g)
            for c in range(channels):
                flat[i * channels + c] *= g
            i += 1
    for j in range(i * channels, n):
        flat[j] *= g
    state[0] = g
    ftz_end(saved)


class Summer:
    """Sums tracks into a bus with a (ramped) headroom gain: ``sum(tracks) -> block``.

    Not an Effect (it has N inputs); ``params``/``state`` follow the same
    conventions and ``sum`` returns a view of a preallocated buffer.
    """

    PARAMS = (Param("headroom_db", "dB", -48.0, 12.0, -6.0, "gain applied to the sum"),)

    def __init__(
        self, sample_rate: float = 48000.0, channels: int = 2, *, max_block: int = 8192,
        headroom_db: float = -6.0,
    ) -> None:
        if not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
            raise ParamError(f"channels: {channels!r} is not 1..{MAX_CHANNELS}")
        self.sample_rate = float(sample_rate)
        self.channels = channels
        self.kp = np.array([self.PARAMS[0].coerce(headroom_db), self.sample_rate])
        self.state = np.array([10.0 ** (self.kp[0] / 20.0)])
        self._out = np.zeros((max_block, channels), dtype=np.float32)
        self._views: dict[int, F32] = {}

    def set(self, headroom_db: float) -> None:
        """Thread: any (writes one float64 the kernel reads at its next call, as Effect.set)."""
        self.kp[0] = self.PARAMS[0].coerce(headroom_db)

    def sum(self, tracks: npt.NDArray[np.float32]) -> F32:  # RT for float32 C-contiguous input
        """The bus: a view of the output buffer, valid until the next call. Audio thread."""
        if tracks.ndim != 3 or tracks.shape[2] != self.channels or tracks.dtype != np.float32:
            raise ParamError(
                f"tracks: expected float32 (tracks, frames, {self.channels}), "
                f"got {tracks.dtype} {tracks.shape}"
            )
        n = tracks.shape[1]
        out = self._views.get(n)
        if out is None:
            if n > self._out.shape[0]:
                self._out = np.zeros((n, self.channels), dtype=np.float32)
                self._views.clear()
            out = self._views[n] = self._out[:n]
        sum_kernel(np.ascontiguousarray(tracks), out, self.state, self.kp)
        return out
