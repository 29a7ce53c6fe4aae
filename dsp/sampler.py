"""Polyphonic sampler: one stereo sample played at any pitch through the shared voice engine.

Signal flow, per voice::

    sample (read at a rate of 2**((pitch - root) / 12 + tune_cents / 1200), 4-point cubic)
      ─> resonant low-pass per channel (SVF) ─> x envelope (ADSR x velocity) ─> pan ─> sum
                                                            ─> x volume (volume_db x CC 7) ─> out

Everything but the source is the voice engine's, dsp/voices.py, shared with the synth
(dsp/synth.py): the events and their sample accuracy, the ADSR and velocity curve, the filter
with its envelope, key tracking and mod wheel, the pan by pitch, parameter smoothing on the
absolute 16-sample grid, voice stealing with a 4 ms fade (see that module's docstring; the
first twelve ``PARAMS`` are the same as the synth's, in the same order).

The source. A voice reads ``sample`` (float32, (length, 2), at the engine's sample rate) from
frame 0 at ``rate`` frames per output sample, interpolating with the Catmull-Rom cubic over
four neighbours (frames outside the sample read as 0). When the read position passes the end
the voice frees itself: a sample shorter than the note simply ends. Pitching up does not
band-limit the sample (frequencies pushed past Nyquist alias). A note on for a pitch that is
sounding starts it again from the top; the old playback fades out over 4 ms (a tail slot), so
the restart does not click. ``tune_cents`` changes the rate of sounding voices too (phase
continuously: the read position does not jump).

Kernel params ``[PARAMS values..., sample_rate]``; state as dsp/voices.py lays it out
(``instrument_state_size``), the voice's first phase being the read position in frames,
``V_INC2`` the untuned rate and ``V_INC1`` the tuned one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.effect import F32, F64
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.instrument import Instrument, common_params
from dsp.params import Param, ParamError
from dsp.voices import (
    COMMON,
    DEFAULT_VOICES,
    H_ATT,
    H_COUNTER,
    H_DCOEF,
    H_K,
    H_RCOEF,
    H_SPR0,
    H_SPR1,
    H_SUS,
    HEAD,
    HOP,
    OFF,
    SAMPLER,
    V_FADE,
    V_FSTEP,
    V_G0,
    V_G1,
    V_INC1,
    V_LEVEL,
    V_PAN,
    V_PEAK,
    V_PH1,
    V_STAGE,
    V_Z1,
    V_Z2,
    V_Z3,
    V_Z4,
    VS,
    begin_block,
    begin_segment,
    clampf,
    end_segment,
    envelope,
    instrument_reset,
    instrument_state_size,
    kernel_rate,
    svf_lowpass,
    voice_count,
)

SAMPLER_PARAM_COUNT = COMMON + 1


def sampler_state_size(voices: int = DEFAULT_VOICES) -> int:
    return instrument_state_size(voices)


@njit(cache=True, nogil=True)
def sampler_reset(state: F64, params: F64) -> None:  # RT
    instrument_reset(state, params, SAMPLER)


@njit(cache=True, nogil=True, inline="always")
def _frame(sample: F32, j: int, c: int, length: int) -> float:  # RT
    if j < 0 or j >= length:
        return 0.0
    return clean(sample[j, c])


@njit(cache=True, nogil=True, inline="always")
def cubic_read(sample: F32, j: int, t: float, c: int, length: int) -> float:  # RT
    """Catmull-Rom interpolation of channel ``c`` at frame ``j + t`` (0 <= t < 1)."""
    xm = _frame(sample, j - 1, c, length)
    x0 = _frame(sample, j, c, length)
    x1 = _frame(sample, j + 1, c, length)
    x2 = _frame(sample, j + 2, c, length)
    c1 = 0.5 * (x1 - xm)
    c2 = xm - 2.5 * x0 + 2.0 * x1 - 0.5 * x2
    c3 = 0.5 * (x2 - xm) + 1.5 * (x0 - x1)
    return ((c3 * t + c2) * t + c1) * t + x0


@njit(cache=True, nogil=True)
def _render_sample(  # RT
    out: F32, pos: int, end: int, counter: int, state: F64, b: int, sample: F32
) -> None:
    """Add one sampler voice into ``out[pos:end]`` (within one grid segment)."""
    length = sample.shape[0]
    spr0 = state[H_SPR0]
    dspr = (state[H_SPR1] - spr0) / HOP
    k = state[H_K]
    att = state[H_ATT]
    dcoef = state[H_DCOEF]
    rcoef = state[H_RCOEF]
    sus = state[H_SUS]
    stage = state[b + V_STAGE]
    level = state[b + V_LEVEL]
    peak = state[b + V_PEAK]
    fade = state[b + V_FADE]
    fstep = state[b + V_FSTEP]
    where = state[b + V_PH1]
    rate = state[b + V_INC1]
    z1 = state[b + V_Z1]
    z2 = state[b + V_Z2]
    z3 = state[b + V_Z3]
    z4 = state[b + V_Z4]
    g0 = state[b + V_G0]
    dg = (state[b + V_G1] - g0) / HOP
    pan = state[b + V_PAN]
    for i in range(pos, end):
        if not where < length:  # the sample has ended (or the position is unusable)
            stage = OFF
            break
        step = counter + i - pos + 1.0
        j = int(where)  # where >= 0: int() is floor
        t = where - j
        g = g0 + dg * step
        a1 = 1.0 / (1.0 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
        left, z1, z2 = svf_lowpass(cubic_read(sample, j, t, 0, length), z1, z2, a1, a2, a3)
        right, z3, z4 = svf_lowpass(cubic_read(sample, j, t, 1, length), z3, z4, a1, a2, a3)
        stage, level = envelope(stage, level, peak, att, dcoef, rcoef, sus)
        amp = level * fade
        p = (spr0 + dspr * step) * pan
        out[i, 0] += left * amp * (1.0 - max(p, 0.0))
        out[i, 1] += right * amp * (1.0 + min(p, 0.0))
        where += rate
        if fstep > 0.0:
            fade -= fstep
            if fade <= 0.0:
                stage = OFF
        if stage == OFF:
            break
    state[b + V_STAGE] = stage
    state[b + V_LEVEL] = level
    state[b + V_FADE] = fade
    state[b + V_PH1] = where
    state[b + V_Z1] = z1
    state[b + V_Z2] = z2
    state[b + V_Z3] = z3
    state[b + V_Z4] = z4


@njit(cache=True, nogil=True)
def sampler_kernel(  # RT
    out: F32, events: F64, e0: int, e1: int, sample: F32, root: float, state: F64, params: F64
) -> None:
    """Overwrite ``out`` (n, 2) with the sampler's output; ``sample`` is float32 (length, 2)."""
    saved = ftz_begin()
    n = out.shape[0]
    ei, e1, usable = begin_block(out, events, e0, e1, state, params, SAMPLER_PARAM_COUNT + 1)
    if usable and sample.shape[1] >= 2:
        sr = kernel_rate(params)
        key = clampf(root, 0.0, 127.0)
        slots = 2 * voice_count(state)
        pos = 0
        while pos < n:
            ei, end = begin_segment(events, ei, e1, pos, n, state, params, SAMPLER, key, sr)
            counter = int(state[H_COUNTER])
            for slot in range(slots):
                b = HEAD + slot * VS
                if state[b + V_STAGE] != OFF:
                    _render_sample(out, pos, end, counter, state, b, sample)
            end_segment(out, pos, end, state)
            pos = end
    ftz_end(saved)


def as_sample(sample: npt.ArrayLike) -> F32:
    """A sample as clean float32 (length, 2): mono is duplicated, NaN becomes 0, +-inf clamped."""
    arr = np.asarray(sample, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2) or arr.shape[0] < 1:
        raise ParamError(f"sample: expected shape (length,), (length, 1) or (length, 2), "
                         f"got {arr.shape}")
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 2, axis=1)
    arr = np.clip(np.nan_to_num(arr, nan=0.0, posinf=64.0, neginf=-64.0), -64.0, 64.0)
    return np.ascontiguousarray(arr, dtype=np.float32)


class Sampler(Instrument):
    """Plays one sample pitched by (pitch - root) semitones, with the synth's filter and ADSR.

    ``Sampler(sample_rate, sample, root=60.0, **values)``: ``sample`` at ``sample_rate``,
    mono or stereo; ``root`` is the MIDI pitch (0..127, fractional for fine tuning) at which
    it plays unchanged.
    """

    PARAMS = (
        *common_params(cutoff_hz=20000.0, resonance=0.0, env_oct=0.0, key=0.0, spread=0.0,
                       volume_db=0.0, attack_ms=1.0, sustain=1.0),
        Param("tune_cents", "cents", -2400.0, 2400.0, 0.0, "transposition of every note"),
    )
    EXAMPLE = {"cutoff_hz": 4000.0, "resonance": 0.3, "release_ms": 800.0, "tune_cents": -50.0}

    def __init__(
        self,
        sample_rate: float,
        sample: npt.ArrayLike,
        root: float = 60.0,
        *,
        voices: int = DEFAULT_VOICES,
        max_block: int = 8192,
        **values: Any,
    ) -> None:
        self.sample = as_sample(sample)
        if isinstance(root, bool) or not isinstance(root, int | float) or not (
            0.0 <= float(root) <= 127.0
        ):
            raise ParamError(f"root: {root!r} is not a MIDI pitch 0..127")
        self.root = float(root)
        super().__init__(sample_rate, voices=voices, max_block=max_block, **values)

    def reset(self) -> None:
        sampler_reset(self.state, self.kp)

    def run(self, out: F32, events: F64) -> None:  # RT
        sampler_kernel(out, events, 0, events.shape[0], self.sample, self.root, self.state,
                       self.kp)
