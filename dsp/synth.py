"""Polyphonic subtractive synth: two band-limited oscillators through the shared voice engine.

Signal flow, per voice::

    osc1 ─┐
          ├─ mix ─> resonant low-pass (SVF) ─> x envelope (ADSR x velocity) ─> pan ─┐
    osc2 ─┘                                                                     sum of voices
                                                     out <─ x volume (volume_db x CC 7) <─┘

Oscillators
    ``sine``, ``saw``, ``square``, ``triangle``, all in "sine phase" (rising through 0 at phase
    0, positive over the first quarter cycle); saw and square carry a two-sample PolyBLEP at
    their jumps, the triangle a PolyBLAMP at its corners, so they are band-limited to the
    residual aliasing of those corrections (well below the harmonics). Phases are float64
    cycles; a note starts both oscillators at phase 0.25, where every waveform is positive, so
    a note's first sample is never zero. osc2 runs ``osc2_detune_cents`` above osc1;
    ``osc_mix`` 0 is osc1 alone, 1 osc2 alone. A phase increment is capped at 0.45 cycles
    per sample (frequencies above 0.45 sr play at 0.45 sr).

The rest is the voice engine the synth shares with the sampler (dsp/sampler.py), in
dsp/voices.py: the filter and its modulation, the ADSR, the events and their sample
accuracy, voice allocation and stealing, the pan, parameter smoothing and the state layout
(see that module's docstring).

Kernel params ``[PARAMS values..., sample_rate]``: the twelve ``common_params``, then osc1
wave, osc2 wave, detune and mix (``P_OSC1``..``P_MIX``). State: ``synth_state_size(voices)``
numbers, laid out as dsp/voices.py describes.
"""

from __future__ import annotations

import math

from numba import njit

from dsp.effect import F32, F64
from dsp.fpu import ftz_begin, ftz_end
from dsp.instrument import Instrument, common_params
from dsp.params import Param
from dsp.voices import (
    COMMON,
    DEFAULT_VOICES,
    H_ATT,
    H_COUNTER,
    H_DCOEF,
    H_K,
    H_MIX0,
    H_MIX1,
    H_RCOEF,
    H_SPR0,
    H_SPR1,
    H_SUS,
    H_W1,
    H_W2,
    HEAD,
    HOP,
    OFF,
    STEAL_FADE_S,
    SYNTH,
    V_FADE,
    V_FSTEP,
    V_G0,
    V_G1,
    V_INC1,
    V_INC2,
    V_LEVEL,
    V_PAN,
    V_PEAK,
    V_PH1,
    V_PH2,
    V_STAGE,
    V_Z1,
    V_Z2,
    VS,
    begin_block,
    begin_segment,
    end_segment,
    envelope,
    instrument_reset,
    instrument_state_size,
    kernel_rate,
    svf_lowpass,
    voice_count,
)

# STEAL_FADE_S (dsp/voices.py) and Instrument (dsp/instrument.py) are importable from here too.
__all__ = [
    "SAW", "SINE", "SQUARE", "STEAL_FADE_S", "SYNTH_PARAM_COUNT", "TRIANGLE", "WAVES",
    "Instrument", "Synth", "oscillator", "synth_kernel", "synth_reset", "synth_state_size",
]

WAVES = ("sine", "saw", "square", "triangle")
SINE, SAW, SQUARE, TRIANGLE = range(4)

SYNTH_PARAM_COUNT = COMMON + 4


def synth_state_size(voices: int = DEFAULT_VOICES) -> int:
    return instrument_state_size(voices)


# -- the oscillators ---------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _blep(ph: float, dt: float) -> float:  # RT
    """Two-sample PolyBLEP residual of a unit upward jump at phase 0."""
    if ph < dt:
        x = ph / dt
        return -0.5 * (1.0 - x) * (1.0 - x)
    if ph > 1.0 - dt:
        x = (ph - 1.0) / dt
        return 0.5 * (1.0 + x) * (1.0 + x)
    return 0.0


@njit(cache=True, nogil=True, inline="always")
def _blamp(ph: float, at: float, dt: float) -> float:  # RT
    """PolyBLAMP residual (the BLEP's integral, in samples) of a unit slope change at ``at``."""
    d = ph - at
    d -= math.floor(d + 0.5)
    x = d / dt
    if x <= -1.0 or x >= 1.0:
        return 0.0
    y = 1.0 - abs(x)
    return y * y * y / 6.0


@njit(cache=True, nogil=True, inline="always")
def oscillator(wave: float, ph: float, dt: float) -> float:  # RT
    """One sample of a band-limited waveform at phase ``ph`` cycles, increment ``dt``."""
    if wave == SAW:
        return 1.0 - 2.0 * ph + 2.0 * _blep(ph, dt)
    if wave == SQUARE:
        half = ph + 0.5 if ph < 0.5 else ph - 0.5
        naive = 1.0 if ph < 0.5 else -1.0
        return naive + 2.0 * _blep(ph, dt) - 2.0 * _blep(half, dt)
    if wave == TRIANGLE:
        if ph < 0.25:
            naive = 4.0 * ph
        elif ph < 0.75:
            naive = 2.0 - 4.0 * ph
        else:
            naive = 4.0 * ph - 4.0
        return naive + 8.0 * dt * (_blamp(ph, 0.75, dt) - _blamp(ph, 0.25, dt))
    return math.sin(2.0 * math.pi * ph)


# -- the kernel --------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def synth_reset(state: F64, params: F64) -> None:  # RT
    instrument_reset(state, params, SYNTH)


@njit(cache=True, nogil=True)
def _render_osc(out: F32, pos: int, end: int, counter: int, state: F64, b: int) -> None:  # RT
    """Add one synth voice into ``out[pos:end]`` (within one grid segment)."""
    w1 = state[H_W1]
    w2 = state[H_W2]
    mix0 = state[H_MIX0]
    dmix = (state[H_MIX1] - mix0) / HOP
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
    ph1 = state[b + V_PH1]
    ph2 = state[b + V_PH2]
    inc1 = state[b + V_INC1]
    inc2 = state[b + V_INC2]
    z1 = state[b + V_Z1]
    z2 = state[b + V_Z2]
    g0 = state[b + V_G0]
    dg = (state[b + V_G1] - g0) / HOP
    pan = state[b + V_PAN]
    for i in range(pos, end):
        step = counter + i - pos + 1.0
        x1 = oscillator(w1, ph1, inc1)
        x2 = oscillator(w2, ph2, inc2)
        x = x1 + (mix0 + dmix * step) * (x2 - x1)
        g = g0 + dg * step
        a1 = 1.0 / (1.0 + g * (g + k))
        lp, z1, z2 = svf_lowpass(x, z1, z2, a1, g * a1, g * g * a1)
        stage, level = envelope(stage, level, peak, att, dcoef, rcoef, sus)
        y = lp * level * fade
        p = (spr0 + dspr * step) * pan
        out[i, 0] += y * (1.0 - max(p, 0.0))
        out[i, 1] += y * (1.0 + min(p, 0.0))
        ph1 += inc1
        if ph1 >= 1.0:
            ph1 -= 1.0
        ph2 += inc2
        if ph2 >= 1.0:
            ph2 -= 1.0
        if fstep > 0.0:
            fade -= fstep
            if fade <= 0.0:
                stage = OFF
        if stage == OFF:
            break
    state[b + V_STAGE] = stage
    state[b + V_LEVEL] = level
    state[b + V_FADE] = fade
    state[b + V_PH1] = ph1
    state[b + V_PH2] = ph2
    state[b + V_Z1] = z1
    state[b + V_Z2] = z2


@njit(cache=True, nogil=True)
def synth_kernel(out: F32, events: F64, e0: int, e1: int, state: F64, params: F64) -> None:  # RT
    """Overwrite ``out`` (n, 2) with the synth's output for this block and its events."""
    saved = ftz_begin()
    n = out.shape[0]
    ei, e1, usable = begin_block(out, events, e0, e1, state, params, SYNTH_PARAM_COUNT + 1)
    if usable:
        sr = kernel_rate(params)
        slots = 2 * voice_count(state)
        pos = 0
        while pos < n:
            ei, end = begin_segment(events, ei, e1, pos, n, state, params, SYNTH, 0.0, sr)
            counter = int(state[H_COUNTER])
            for slot in range(slots):
                b = HEAD + slot * VS
                if state[b + V_STAGE] != OFF:
                    _render_osc(out, pos, end, counter, state, b)
            end_segment(out, pos, end, state)
            pos = end
    ftz_end(saved)


# -- the wrapper -------------------------------------------------------------------------------


class Synth(Instrument):
    """Polyphonic subtractive synth: two band-limited oscillators, resonant low-pass, ADSR."""

    PARAMS = (
        *common_params(cutoff_hz=6000.0, resonance=0.2, env_oct=2.0, key=0.5, spread=0.3,
                       volume_db=-12.0, attack_ms=5.0, sustain=0.7),
        Param("osc1_wave", "", 0, 3, SAW, "waveform of oscillator 1", WAVES),
        Param("osc2_wave", "", 0, 3, SAW, "waveform of oscillator 2", WAVES),
        Param("osc2_detune_cents", "cents", -1200.0, 1200.0, 7.0,
              "oscillator 2's pitch relative to oscillator 1"),
        Param("osc_mix", "", 0.0, 1.0, 0.5, "0: oscillator 1 only, 1: oscillator 2 only"),
    )
    EXAMPLE = {"osc2_wave": "square", "osc2_detune_cents": -1200.0, "osc_mix": 0.3,
               "cutoff_hz": 1200.0, "resonance": 0.5, "env_amount_oct": 3.0}

    def reset(self) -> None:
        synth_reset(self.state, self.kp)

    def run(self, out: F32, events: F64) -> None:  # RT
        synth_kernel(out, events, 0, events.shape[0], self.state, self.kp)
