"""The voice engine shared by the synth (dsp/synth.py) and the sampler (dsp/sampler.py).

Everything of an instrument but its sound source: the kernel state layout, the events and
their sample accuracy, the ADSR envelope, the resonant low-pass and its modulation, voice
allocation and stealing, the pan by pitch, parameter smoothing on an absolute grid, the
block loop the kernels run (``begin_block``, then per segment ``begin_segment``, the
instrument's own voices, ``end_segment``), and ``Instrument``, the Python wrapper both
instruments subclass. ``mode`` (``SYNTH`` or ``SAMPLER``) selects the few places where the
two differ: how a note's increments are set and retuned, osc mix, and retriggering.

Filter
    The topology-preserving state-variable filter (Zavalishin; the Simper/Cytomic form),
    low-pass output, 12 dB/oct. With ``g = tan(pi fc / sr)`` and damping ``k = 1 / Q`` it is,
    in steady state, exactly the bilinear transform of the analogue 2-pole prewarped at fc:
    the RBJ cookbook low-pass. ``resonance`` 0..1 maps to Q = 0.707 * 30**resonance
    (Butterworth, flat, at 0; Q 21 at 1). The cutoff of a voice, in octaves::

        log2 fc = log2 cutoff_hz + env_amount_oct * env + key_track * (pitch - 60) / 12
                  + mod_wheel_oct * CC1 / 127

    where ``env`` is the voice's envelope level relative to its velocity peak (0..1), and fc
    is kept within 10 Hz .. 0.45 sr.
Envelope (ADSR)
    One per voice, in absolute amplitude: the peak is the velocity gain
    ``1 - velocity_sens + velocity_sens * (velocity / 127)**2``. Attack rises linearly from
    the current level at ``peak / attack_samples`` per sample (0 ms: at once); decay
    approaches ``sustain * peak`` exponentially, release approaches 0, both so that the
    distance shrinks by 60 dB in ``decay_ms`` / ``release_ms``. A voice frees itself once its
    level is below 1e-5 and heading to 0 (release, or a decay to sustain 0).
Events
    ``events[e0:e1]`` rows ``[offset, type, a, b]``, sorted by offset (frames from the start of
    the block); types ``0`` note off, ``1`` note on (velocity 0 is a note off), ``2`` control
    change, ``3`` all notes off. Each takes effect at its exact frame: a note on at offset k
    makes ``out[k]`` the note's first (non-zero) sample. Control changes: 1 mod wheel (opens
    the filter by ``mod_wheel_oct`` at 127), 7 channel volume (gain ``(v / 127)**2``, 127 after
    a reset), 64 sustain pedal (>= 64 down: released notes keep sounding until it goes up),
    120 all sound off (every voice fades out in 4 ms), 121 reset controllers (mod wheel 0,
    pedal up), 123 all notes off. All notes off releases every voice, pedal or not. Rows with
    an unknown type or controller, a non-integral or out-of-range pitch/controller, a velocity
    or value outside 0..127, NaN anywhere, or an offset outside ``0 <= offset < n`` are
    ignored. (A note off only checks its pitch, so a stray velocity cannot leave a note stuck.)
    A row whose offset is before one already applied (unsorted input) acts late, at the frame
    reached.
Voices
    ``voices`` playing slots plus as many tail slots. A note on for a pitch that is sounding
    reuses its voice: the envelope attacks again from the current level and the oscillators
    keep their phase (no click). (The sampler instead starts the note again from the top and
    the old playback fades out in a tail slot, see dsp/sampler.py.) Otherwise a free slot
    plays it; when none is free a voice is stolen: one already fading out, else the one
    released longest ago, else the oldest note. The stolen voice moves to a tail slot and
    fades out linearly over 4 ms (``STEAL_FADE_S``) while the new note starts in its slot at
    its exact frame. (Should all tail slots be fading, more than ``voices`` steals within
    4 ms, the tail nearest its end is cut.)
Pan
    ``spread`` places a voice by pitch, ``p = spread * clip((pitch - 60) / 48, -1, 1)``, with a
    balance law: the far channel is scaled by ``1 - |p|``, the near one stays at 1, so at
    spread 0 both channels carry the voice at full level.

Smoothing and block-size invariance. A counter in the state marks an absolute 16-sample grid
(``HOP``). At each grid point the parameters are read, the smoothed ones (cutoff, resonance,
env amount, key track, mod-wheel depth and position, osc mix, spread, volume) take one
one-pole step (time constant ``SMOOTH_S``), and every voice computes its filter ``g`` for the
end of the segment; within a segment ``g``, mix, spread and volume move linearly. Events split
segments at their frames without touching the grid, so the output is the same however the
stream is cut into blocks. ADSR times, sustain, velocity sensitivity and detune are read at
the grid without smoothing (they change rates, not levels: no step); waveforms are switches and
jump.

Kernel params ``[PARAMS values..., sample_rate]`` (the indices ``P_*`` below): the first
twelve, ``common_params``, are the same for both instruments; the synth's oscillator settings
follow (the sampler has its transposition there). State: a header of ``HEAD`` numbers
(indices ``H_*``), then ``2 * voices`` voice records of ``VS`` numbers (indices ``V_*``):
stage, pitch, velocity peak, envelope level, key held, held by the pedal, note-on and release
serial numbers, fade gain and step (tails), two phases (the sampler: read position) and
increments, two SVF states per channel and the segment's filter ``g`` at both ends, and the
pan position.
"""

from __future__ import annotations

import math

from numba import njit

from dsp.effect import F32, F64
from dsp.fastmath import fast_exp2
from dsp.fpu import clean

DEFAULT_VOICES = 16
MAX_POLYPHONY = 64
HOP = 16
SMOOTH_S = 0.02
STEAL_FADE_S = 0.004
SILENT = 1e-5
LN1000 = math.log(1000.0)
MAX_INC = 0.45
START_PHASE = 0.25
Q_MIN = 1.0 / math.sqrt(2.0)
Q_SPAN = 30.0
MAX_TIME_MS = 20000.0
MAX_ATTACK_MS = 10000.0

SYNTH, SAMPLER = 0, 1
NOTE_OFF, NOTE_ON, CONTROL, ALL_NOTES_OFF = 0, 1, 2, 3
CC_MOD, CC_VOLUME, CC_SUSTAIN, CC_SOUND_OFF, CC_RESET, CC_NOTES_OFF = 1, 7, 64, 120, 121, 123

(P_ATTACK, P_DECAY, P_SUSTAIN, P_RELEASE, P_VELOCITY, P_CUTOFF, P_RESONANCE, P_ENV, P_KEY,
 P_MOD, P_SPREAD, P_VOLUME) = range(12)
P_OSC1, P_OSC2, P_DETUNE, P_MIX = 12, 13, 14, 15
COMMON = 12

(H_COUNTER, H_SERIAL, H_PEDAL, H_MW_TARGET, H_CC7, H_VOL0, H_VOL1, H_MIX0, H_MIX1, H_SPR0,
 H_SPR1, H_LOGF, H_K, H_ENV, H_KEY, H_MODOCT, H_MW, H_ATT, H_DCOEF, H_RCOEF, H_SUS, H_VSENS,
 H_W1, H_W2, H_RATIO, H_FSTEP) = range(26)
HEAD = 32

(V_STAGE, V_PITCH, V_PEAK, V_LEVEL, V_HELD, V_SUSTAINED, V_AGE, V_RELAGE, V_FADE, V_FSTEP,
 V_PH1, V_PH2, V_INC1, V_INC2, V_Z1, V_Z2, V_Z3, V_Z4, V_G0, V_G1, V_PAN) = range(21)
VS = 24
OFF, ATTACK, DECAY, RELEASE = 0, 1, 2, 3
STAGES = ("off", "attack", "decay", "release")


def instrument_state_size(voices: int = DEFAULT_VOICES) -> int:
    """Numbers of kernel state for ``voices`` playing voices (and as many tails)."""
    return HEAD + 2 * voices * VS


# -- small pieces ------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def clampf(x: float, lo: float, hi: float) -> float:  # RT
    """x within [lo, hi]; NaN reads as lo."""
    if not x >= lo:
        return lo
    return x if x <= hi else hi


@njit(cache=True, nogil=True, inline="always")
def _smooth(cur: float, target: float, k: float, eps: float) -> float:  # RT
    return target if abs(target - cur) < eps else cur + k * (target - cur)


@njit(cache=True, nogil=True, inline="always")
def voice_count(state: F64) -> int:  # RT
    return int(max((state.shape[0] - HEAD) // (2 * VS), 0))


@njit(cache=True, nogil=True, inline="always")
def kernel_rate(params: F64) -> float:  # RT
    return clampf(params[params.shape[0] - 1], 8000.0, 384000.0)


@njit(cache=True, nogil=True, inline="always")
def svf_lowpass(
    x: float, z1: float, z2: float, a1: float, a2: float, a3: float
) -> tuple[float, float, float]:  # RT
    """One TPT SVF step: (low-pass output, new z1, new z2)."""
    v3 = x - z2
    v1 = a1 * z1 + a2 * v3
    v2 = z2 + a2 * z1 + a3 * v3
    return v2, 2.0 * v1 - z1, 2.0 * v2 - z2


@njit(cache=True, nogil=True, inline="always")
def envelope(
    stage: float, level: float, peak: float, att: float, dcoef: float, rcoef: float, sus: float
) -> tuple[float, float]:  # RT
    """One ADSR step: (new stage, new level)."""
    if stage == ATTACK:
        level += att * peak
        if level >= peak:
            return float(DECAY), peak
        return stage, level
    if stage == DECAY:
        target = sus * peak
        level = target + (level - target) * dcoef
        if target == 0.0 and level < SILENT:
            return float(OFF), 0.0
        return stage, level
    if stage == RELEASE:
        level *= rcoef
        if level < SILENT:
            return float(OFF), 0.0
        return stage, level
    return stage, level


@njit(cache=True, nogil=True, inline="always")
def _voice_g(state: F64, b: int, sr: float) -> float:  # RT
    """The filter's ``g`` for voice record ``b`` from its envelope and the smoothed settings."""
    peak = state[b + V_PEAK]
    env = state[b + V_LEVEL] / peak if peak > 0.0 else 0.0
    lf = (state[H_LOGF] + state[H_ENV] * env + state[H_KEY] * (state[b + V_PITCH] - 60.0) / 12.0
          + state[H_MODOCT] * state[H_MW])
    fc = min(max(fast_exp2(lf), 10.0), 0.45 * sr)
    return math.tan(math.pi * fc / sr)


# -- parameters, reset and the grid ------------------------------------------------------------


@njit(cache=True, nogil=True)
def _control(state: F64, params: F64, mode: int, sr: float) -> None:  # RT
    """The unsmoothed settings: envelope rates, velocity, waveforms, osc2/tune ratio."""
    att = clampf(params[P_ATTACK], 0.0, MAX_ATTACK_MS) * sr / 1000.0
    state[H_ATT] = 1.0 / max(att, 1.0)
    decay = clampf(params[P_DECAY], 1.0, MAX_TIME_MS) * sr / 1000.0
    state[H_DCOEF] = math.exp(-LN1000 / max(decay, 1.0))
    release = clampf(params[P_RELEASE], 1.0, MAX_TIME_MS) * sr / 1000.0
    state[H_RCOEF] = math.exp(-LN1000 / max(release, 1.0))
    state[H_SUS] = clampf(params[P_SUSTAIN], 0.0, 1.0)
    state[H_VSENS] = clampf(params[P_VELOCITY], 0.0, 1.0)
    state[H_FSTEP] = 1.0 / max(STEAL_FADE_S * sr, 1.0)
    if mode == SYNTH:
        state[H_W1] = math.floor(clampf(params[P_OSC1], 0.0, 3.0))
        state[H_W2] = math.floor(clampf(params[P_OSC2], 0.0, 3.0))
        state[H_RATIO] = 2.0 ** (clampf(params[P_DETUNE], -1200.0, 1200.0) / 1200.0)
    else:
        state[H_RATIO] = 2.0 ** (clampf(params[COMMON], -2400.0, 2400.0) / 1200.0)


@njit(cache=True, nogil=True, inline="always")
def _targets(
    state: F64, params: F64, mode: int
) -> tuple[float, float, float, float, float, float, float, float]:  # RT
    """Targets of the smoothed values: log2 cutoff, damping, env, key, mod, mix, spread, gain."""
    logf = math.log2(clampf(params[P_CUTOFF], 20.0, 20000.0))
    k = 1.0 / (Q_MIN * Q_SPAN ** clampf(params[P_RESONANCE], 0.0, 1.0))
    env = clampf(params[P_ENV], -8.0, 8.0)
    key = clampf(params[P_KEY], 0.0, 1.0)
    mod = clampf(params[P_MOD], 0.0, 8.0)
    mix = clampf(params[P_MIX], 0.0, 1.0) if mode == SYNTH else 0.0
    spread = clampf(params[P_SPREAD], 0.0, 1.0)
    gain = 10.0 ** (clampf(params[P_VOLUME], -60.0, 12.0) / 20.0) * state[H_CC7]
    return logf, k, env, key, mod, mix, spread, gain


@njit(cache=True, nogil=True)
def instrument_reset(state: F64, params: F64, mode: int) -> None:  # RT
    """Silence every voice, controllers to their defaults, smoothed values at their targets."""
    state[:] = 0.0
    if state.shape[0] < HEAD:
        return
    sr = kernel_rate(params)
    state[H_CC7] = 1.0
    _control(state, params, mode, sr)
    logf, k, env, key, mod, mix, spread, gain = _targets(state, params, mode)
    state[H_LOGF] = logf
    state[H_K] = k
    state[H_ENV] = env
    state[H_KEY] = key
    state[H_MODOCT] = mod
    state[H_MIX0] = state[H_MIX1] = mix
    state[H_SPR0] = state[H_SPR1] = spread
    state[H_VOL0] = state[H_VOL1] = gain


@njit(cache=True, nogil=True)
def _grid(state: F64, params: F64, mode: int, sr: float) -> None:  # RT
    """At a grid point: read the settings, step the smoothers, retarget every voice's filter."""
    _control(state, params, mode, sr)
    kf = 1.0 - math.exp(-HOP / (SMOOTH_S * sr))
    logf, k, env, key, mod, mix, spread, gain = _targets(state, params, mode)
    state[H_LOGF] = _smooth(state[H_LOGF], logf, kf, 1e-7)
    state[H_K] = _smooth(state[H_K], k, kf, 1e-7)
    state[H_ENV] = _smooth(state[H_ENV], env, kf, 1e-7)
    state[H_KEY] = _smooth(state[H_KEY], key, kf, 1e-7)
    state[H_MODOCT] = _smooth(state[H_MODOCT], mod, kf, 1e-7)
    state[H_MW] = _smooth(state[H_MW], state[H_MW_TARGET], kf, 1e-7)
    state[H_MIX0] = state[H_MIX1]
    state[H_MIX1] = _smooth(state[H_MIX1], mix, kf, 1e-7)
    state[H_SPR0] = state[H_SPR1]
    state[H_SPR1] = _smooth(state[H_SPR1], spread, kf, 1e-7)
    state[H_VOL0] = state[H_VOL1]
    state[H_VOL1] = _smooth(state[H_VOL1], gain, kf, 1e-9)
    ratio = state[H_RATIO]
    for slot in range(2 * voice_count(state)):
        b = HEAD + slot * VS
        if state[b + V_STAGE] == OFF:
            continue
        state[b + V_G0] = state[b + V_G1]
        state[b + V_G1] = _voice_g(state, b, sr)
        if mode == SYNTH:
            state[b + V_INC2] = min(state[b + V_INC1] * ratio, MAX_INC)
        else:  # the sampler keeps the untuned rate in V_INC2
            state[b + V_INC1] = state[b + V_INC2] * ratio


# -- voices and events -------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _release(state: F64, b: int) -> None:  # RT
    state[b + V_HELD] = 0.0
    state[b + V_SUSTAINED] = 0.0
    if state[b + V_STAGE] == ATTACK or state[b + V_STAGE] == DECAY:
        state[b + V_STAGE] = RELEASE
        state[b + V_RELAGE] = state[H_SERIAL]
        state[H_SERIAL] += 1.0


@njit(cache=True, nogil=True, inline="always")
def _addressable(state: F64, b: int) -> bool:  # RT
    """A sounding note that events can reach (not free, not fading out)."""
    return bool(state[b + V_STAGE] != OFF and state[b + V_FSTEP] == 0.0)


@njit(cache=True, nogil=True)
def _victim(state: F64, nv: int) -> int:  # RT
    """The playing slot to steal: fading out, else released longest ago, else oldest."""
    best = 0
    best_class = 3
    best_key = math.inf
    for i in range(nv):
        b = HEAD + i * VS
        if state[b + V_FSTEP] > 0.0:
            cls, key = 0, state[b + V_AGE]
        elif state[b + V_STAGE] == RELEASE:
            cls, key = 1, state[b + V_RELAGE]
        else:
            cls, key = 2, state[b + V_AGE]
        if cls < best_class or (cls == best_class and key < best_key):
            best, best_class, best_key = i, cls, key
    return best


@njit(cache=True, nogil=True)
def _to_tail(state: F64, nv: int, slot: int) -> None:  # RT
    """Move a playing voice into a tail slot, where it fades out; its slot becomes free."""
    tail = -1
    least = math.inf
    for j in range(nv, 2 * nv):
        fade = state[HEAD + j * VS + V_FADE]
        if state[HEAD + j * VS + V_STAGE] == OFF:
            tail = j
            break
        if fade < least:
            tail, least = j, fade
    src = HEAD + slot * VS
    dst = HEAD + tail * VS
    for f in range(VS):
        state[dst + f] = state[src + f]
    if state[dst + V_FSTEP] == 0.0:
        state[dst + V_FSTEP] = state[H_FSTEP]
    state[src + V_STAGE] = OFF


@njit(cache=True, nogil=True)
def _start(  # RT
    state: F64, slot: int, pitch: float, peak: float, serial: float, mode: int, root: float,
    sr: float,
) -> None:
    """A fresh note in a free slot: attack from silence, new phases and filter."""
    b = HEAD + slot * VS
    for f in range(VS):
        state[b + f] = 0.0
    state[b + V_STAGE] = ATTACK
    state[b + V_PITCH] = pitch
    state[b + V_PEAK] = peak
    state[b + V_HELD] = 1.0
    state[b + V_AGE] = serial
    state[b + V_FADE] = 1.0
    state[b + V_PAN] = min(max((pitch - 60.0) / 48.0, -1.0), 1.0)
    if mode == SYNTH:
        inc = min(440.0 * 2.0 ** ((pitch - 69.0) / 12.0) / sr, MAX_INC)
        state[b + V_INC1] = inc
        state[b + V_INC2] = min(inc * state[H_RATIO], MAX_INC)
        state[b + V_PH1] = START_PHASE
        state[b + V_PH2] = START_PHASE
    else:
        rate = 2.0 ** ((pitch - root) / 12.0)
        state[b + V_INC2] = rate
        state[b + V_INC1] = rate * state[H_RATIO]
    g = _voice_g(state, b, sr)
    state[b + V_G0] = g
    state[b + V_G1] = g


@njit(cache=True, nogil=True)
def _note_on(  # RT
    state: F64, pitch: float, velocity: float, mode: int, root: float, sr: float
) -> None:
    nv = voice_count(state)
    if nv == 0:
        return
    sens = state[H_VSENS]
    v = velocity / 127.0
    peak = 1.0 - sens + sens * v * v
    serial = state[H_SERIAL]
    state[H_SERIAL] = serial + 1.0
    slot = -1
    for i in range(nv):
        b = HEAD + i * VS
        if _addressable(state, b) and state[b + V_PITCH] == pitch:
            slot = i
            break
    if slot >= 0 and mode == SYNTH:  # retrigger: same voice, from the current level
        b = HEAD + slot * VS
        state[b + V_PEAK] = peak
        state[b + V_STAGE] = ATTACK if state[b + V_LEVEL] < peak else DECAY
        state[b + V_HELD] = 1.0
        state[b + V_SUSTAINED] = 0.0
        state[b + V_AGE] = serial
        return
    if slot >= 0:  # sampler: the old playback fades out, the note starts again from the top
        _to_tail(state, nv, slot)
    else:
        for i in range(nv):
            if state[HEAD + i * VS + V_STAGE] == OFF:
                slot = i
                break
        if slot < 0:
            slot = _victim(state, nv)
            _to_tail(state, nv, slot)
    _start(state, slot, pitch, peak, serial, mode, root, sr)


@njit(cache=True, nogil=True)
def _note_off(state: F64, pitch: float) -> None:  # RT
    for i in range(voice_count(state)):
        b = HEAD + i * VS
        if _addressable(state, b) and state[b + V_PITCH] == pitch and state[b + V_HELD] == 1.0:
            if state[H_PEDAL] != 0.0:
                state[b + V_HELD] = 0.0
                state[b + V_SUSTAINED] = 1.0
            else:
                _release(state, b)


@njit(cache=True, nogil=True)
def _pedal(state: F64, down: bool) -> None:  # RT
    state[H_PEDAL] = 1.0 if down else 0.0
    if down:
        return
    for i in range(voice_count(state)):
        b = HEAD + i * VS
        if _addressable(state, b) and state[b + V_SUSTAINED] == 1.0:
            _release(state, b)


@njit(cache=True, nogil=True)
def _all_notes_off(state: F64) -> None:  # RT
    for i in range(voice_count(state)):
        b = HEAD + i * VS
        if _addressable(state, b):
            _release(state, b)


@njit(cache=True, nogil=True)
def _sound_off(state: F64) -> None:  # RT
    """Every sounding slot fades out over ``STEAL_FADE_S`` (already fading ones go on)."""
    for slot in range(2 * voice_count(state)):
        b = HEAD + slot * VS
        if state[b + V_STAGE] != OFF and state[b + V_FSTEP] == 0.0:
            state[b + V_FSTEP] = state[H_FSTEP]
            state[b + V_HELD] = 0.0
            state[b + V_SUSTAINED] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _midi_number(x: float) -> bool:  # RT
    return 0.0 <= x <= 127.0 and x == math.floor(x)


@njit(cache=True, nogil=True)
def apply_event(  # RT
    state: F64, kind: float, a: float, b: float, mode: int, root: float, sr: float
) -> None:
    """One event row's effect; malformed rows do nothing."""
    if kind == NOTE_OFF:
        if _midi_number(a):
            _note_off(state, a)
    elif kind == NOTE_ON:
        if not _midi_number(a):
            return
        if 0.0 < b <= 127.0:
            _note_on(state, a, b, mode, root, sr)
        elif b == 0.0:
            _note_off(state, a)
    elif kind == CONTROL:
        if not (_midi_number(a) and 0.0 <= b <= 127.0):
            return
        cc = int(a)
        if cc == CC_MOD:
            state[H_MW_TARGET] = b / 127.0
        elif cc == CC_VOLUME:
            state[H_CC7] = (b / 127.0) ** 2
        elif cc == CC_SUSTAIN:
            _pedal(state, b >= 64.0)
        elif cc == CC_SOUND_OFF:
            _sound_off(state)
        elif cc == CC_RESET:
            state[H_MW_TARGET] = 0.0
            _pedal(state, False)
        elif cc == CC_NOTES_OFF:
            _all_notes_off(state)
    elif kind == ALL_NOTES_OFF:
        _all_notes_off(state)


# -- the block loop ----------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def begin_segment(  # RT
    events: F64, ei: int, e1: int, pos: int, n: int, state: F64, params: F64, mode: int,
    root: float, sr: float,
) -> tuple[int, int]:
    """Apply the events due at ``pos`` and the grid step if due: (next event, segment end)."""
    while ei < e1:
        offset = events[ei, 0]
        if not (0.0 <= offset < n):
            ei += 1
            continue
        if int(offset) > pos:  # offset >= 0: int() is floor
            break
        apply_event(state, events[ei, 1], events[ei, 2], events[ei, 3], mode, root, sr)
        ei += 1
    counter = int(state[H_COUNTER])
    if counter == 0:
        _grid(state, params, mode, sr)
    end = min(n, pos + HOP - counter)
    if ei < e1:
        end = min(end, int(events[ei, 0]))
    return ei, end


@njit(cache=True, nogil=True)
def end_segment(out: F32, pos: int, end: int, state: F64) -> None:  # RT
    """The output level (volume x CC 7, ramped) over the segment; advance the grid counter."""
    counter = int(state[H_COUNTER])
    v0 = state[H_VOL0]
    dv = (state[H_VOL1] - v0) / HOP
    for i in range(pos, end):
        gain = v0 + dv * (counter + i - pos + 1.0)
        out[i, 0] = clean(out[i, 0] * gain)
        out[i, 1] = clean(out[i, 1] * gain)
    state[H_COUNTER] = (counter + end - pos) % HOP


@njit(cache=True, nogil=True)
def begin_block(out: F32, events: F64, e0: int, e1: int, state: F64, params: F64,
                count: int) -> tuple[int, int, bool]:  # RT
    """Zero the output; (first, last) event rows in range; False when the arrays cannot work."""
    for i in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[i, c] = 0.0
    usable = out.shape[1] == 2 and state.shape[0] >= HEAD + 2 * VS and params.shape[0] >= count
    if events.shape[1] < 4:
        return 0, 0, usable
    e0 = max(e0, 0)
    e1 = min(e1, events.shape[0])
    return e0, max(e1, e0), usable
