"""Low-latency voice pitch shifter with independent formant shift (a live voice changer).

Why this design. A voice is an excitation (glottal pulses, noise) coloured by the
vocal tract's envelope. Shifting the excitation alone moves the pitch and keeps
the formants; re-colouring with a frequency-scaled envelope moves the formants
alone. Linear prediction separates the two sample by sample with no frames to
wait for, and a delay-line grain shifter moves the excitation's pitch with a few
milliseconds of delay. FFT methods (phase vocoder, cepstral envelopes) need
30-50 ms windows to resolve a low voice's harmonics, too much latency for a live
singer; TD-PSOLA needs reliable pitch marks a period ahead. Per sample:

1. Pre-emphasis ``1 - mu z^-1`` (corner 700 Hz), so the predictor spends its
   poles on formants rather than on the spectral tilt.
2. Analysis of the channels' mean: a running autocorrelation under a causal
   two-pole window peaking 20 ms back (long enough not to follow single pitch
   periods; ``dsp.lpc.autocorr_step``). Every ``HOP`` = 128 samples (absolute
   grid) Levinson-Durbin gives ``order`` = sr / 1500 reflection coefficients (32 at
   48 kHz), and from the same lags read at ``f k`` (``dsp.lpc.scale_lags``,
   f = 2^(formant / 12)) the coefficients of the envelope moved by f, with the
   gain that keeps the level. A -20 dB white-noise floor keeps both fits stable.
   Coefficients are interpolated per sample between frames.
3. Whitening: the FIR lattice ``A(z)`` leaves the residual (the excitation).
4. Pitch: the residual goes into a delay line read by a tap whose delay D
   changes by ``1 - r`` per sample (r = 2^(semitones / 12)): read at speed r, the
   excitation's pitch is r times higher. A 12-tap windowed-sinc interpolator
   reads it (cubic interpolation of a flat, full-band residual adds noise that the
   re-colouring would lift), after a 4th-order low-pass at min(0.4, 0.45 / r) sr
   against aliasing when reading fast. When D passes its threshold the tap jumps
   to the delay where the waveform (the channels' mean) best matches the current
   read point (normalised cross-correlation over 8 ms, coarse then fine, over one
   75 Hz period; among near-best matches the farthest), and the two taps
   crossfade over 4 ms. Jumping by whole pitch periods is what keeps a shifted
   voice free of phasiness and echo. After a jump to D' the tap sweeps to
   ``2 L - D'``, so its mean delay stays at the latency L.
5. Re-colouring: the IIR lattice ``1 / A_f(z)`` with the envelope from L samples
   ago (moved, or the original when formant = 0), the gain times sqrt(r) (a flat
   excitation read at speed r spreads its power over r times the band), and
   de-emphasis. A slow level match (200 ms powers, within +-6 dB, held while the
   input is below -70 dBFS, both starting from -40 dBFS) keeps the wet level at the
   dry level.
6. Mix with the input delayed by the same latency.

Latency is ``L`` = 14 ms (672 samples at 48 kHz). At 0 semitones the tap sits at
D = L and, with formant 0, the output is the input delayed by exactly L samples
(whitening and re-colouring with the same coefficients cancel). While shifting,
the tap's delay sweeps within [4, 24] ms, centred on L, the usual cost of a
delay-line shifter; when semitones return to 0 the tap crossfades back to L.

Parameters ramp: semitones (one-pole, 20 ms, on an absolute 16-sample grid; the
read speed is continuous, so a change bends the pitch without a click), formant
(one-pole, 30 ms, per analysis frame) and mix (one-pole, 10 ms, per sample).
Stereo shares one analysis, one tap and one level between channels (no image
shift); whitening, delay lines and re-colouring are per channel.

Limits: input that is not a voice (pure tones, chords) has an "envelope" that
follows its partials, so shifting it away from them sounds filtered. Formant
shifts past +-5 semitones move a real voice's envelope by less than asked (about
half at +8 on speech): the -20 dB floor leaves the deepest valleys and the top
octave in the residual, which is not moved.

The parts: dsp/pitch_layout.py lays out the kernel params and the state (``P_*``,
``S_*``, ``C_*``), dsp/pitch_grain.py is the grain shifter of step 4 (the windowed-sinc
read, the similarity search, the tap jumps), and this module holds the analysis, the
whitening and re-colouring, the per-sample kernel, ``config`` and the effect. Every public
name of the three is importable from here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from dsp.biquad import LOWPASS, rbj
from dsp.effect import F32, F64, Effect
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.lpc import autocorr_step, lattice_colour, lattice_whiten, levinson, scale_lags
from dsp.params import Param
from dsp.pitch_grain import KAISER_BETA, MATCH_TOL, MIN_SWEEP, _jump, _read, interp_table
from dsp.pitch_layout import (
    C_AA,
    C_DE,
    C_LAT,
    C_XP,
    HEADER,
    P_ALPHA,
    P_CHAN0,
    P_CSIZE,
    P_DMAX,
    P_DMIN,
    P_FLOOR,
    P_FM,
    P_FR,
    P_FRAMES,
    P_HPRE,
    P_HRAW,
    P_KCUR,
    P_KFCUR,
    P_KFM,
    P_KLVL,
    P_KMIX,
    P_KST,
    P_LAGS,
    P_LAGWIN,
    P_LAT,
    P_MIX,
    P_MU,
    P_ORDER,
    P_RING,
    P_RR,
    P_RW,
    P_S1,
    P_S2,
    P_SCRATCH,
    P_SPAN,
    P_SR,
    P_ST,
    P_STEP,
    P_TABLE,
    P_WIN,
    P_XF,
    PHASES,
    S_AA,
    S_AA_COEF,
    S_D,
    S_DOLD,
    S_FM,
    S_HI,
    S_LEVEL,
    S_LO,
    S_MIX,
    S_N,
    S_PDRY,
    S_PWET,
    S_RATIO,
    S_RGAIN,
    S_ST,
    S_XF,
    TAPS,
    _layout,
)

__all__ = [
    "BUTTER4_Q", "C_AA", "C_DE", "C_LAT", "C_XP", "GRID", "HEADER", "HOP", "KAISER_BETA",
    "LAG_BW_HZ", "LATENCY_S", "LEVEL_PRIOR", "LEVEL_QUIET", "LEVEL_RANGE", "LEVEL_S",
    "MATCH_TOL", "MAX_RATIO", "MIN_F0", "MIN_SWEEP", "NOISE_FLOOR", "PHASES", "P_ALPHA",
    "P_CHAN0", "P_CSIZE", "P_DMAX", "P_DMIN", "P_FLOOR", "P_FM", "P_FR", "P_FRAMES", "P_HPRE",
    "P_HRAW", "P_KCUR", "P_KFCUR", "P_KFM", "P_KLVL", "P_KMIX", "P_KST", "P_LAGS", "P_LAGWIN",
    "P_LAT", "P_MIX", "P_MU", "P_ORDER", "P_RING", "P_RR", "P_RW", "P_S1", "P_S2", "P_SCRATCH",
    "P_SPAN", "P_SR", "P_ST", "P_STEP", "P_TABLE", "P_WIN", "P_XF", "SEARCH_S", "ST_SNAP",
    "S_AA", "S_AA_COEF", "S_D", "S_DOLD", "S_FM", "S_HI", "S_LEVEL", "S_LO", "S_MIX", "S_N",
    "S_PDRY", "S_PWET", "S_RATIO", "S_RGAIN", "S_ST", "S_XF", "TAPS", "WINDOW_PEAK_S",
    "XFADE_S", "PitchShifter", "config", "interp_table", "pitch_shift",
]

HOP = 128  # samples between analysis frames
GRID = 16  # samples between semitone smoothing steps
MAX_RATIO = 2.0
LATENCY_S = 0.014
XFADE_S = 0.004
SEARCH_S = 0.008  # similarity window
MIN_F0 = 75.0  # the search spans one period of this
WINDOW_PEAK_S = 0.020
LAG_BW_HZ = 60.0  # Gaussian lag window (bandwidth expansion)
NOISE_FLOOR = 1e-2  # white-noise correction of lag 0 (-20 dB)
ST_SNAP = 1e-3  # semitones: a ramp this close jumps to its target (0.1 cent)
LEVEL_S = 0.2  # level-match smoothing
LEVEL_QUIET = 1e-7  # dry power (-70 dBFS) below which the level match holds
LEVEL_RANGE = (0.5, 2.0)
LEVEL_PRIOR = 1e-4  # both powers start here (-40 dBFS): no level jump while they fill
BUTTER4_Q = (0.5411961001461970, 1.3065629648763766)


@njit(cache=True, nogil=True, inline="always")
def _ramp(cur: float, target: float, k: float, snap: float) -> float:  # RT
    diff = target - cur
    return target if abs(diff) < snap else cur + k * diff


@njit(cache=True, nogil=True)
def _set_ratio(state: F64, sr: float, st: float) -> None:  # RT
    """Ratio for ``st`` semitones, and the anti-alias low-pass for reading at that speed."""
    r = 2.0 ** (st / 12.0)
    state[S_RATIO] = r
    # read at speed r, a flat excitation spreads its power over r times the band (or
    # squeezes it into 1 / r of it): sqrt(r) keeps the power under the envelope
    state[S_RGAIN] = math.sqrt(r)
    # reading at speed r > 1 folds everything above sr / 2r, and no short interpolator
    # is exact near Nyquist: a 4th-order Butterworth low-pass at min(0.4, 0.45 / r) sr,
    # blended in over |r - 1| < 0.1 so that r = 1 (an integer delay) stays exact
    state[S_AA] = min(abs(r - 1.0) * 10.0, 1.0)
    fc = min(0.4, 0.45 / r) * sr
    rbj(LOWPASS, fc, BUTTER4_Q[0], 0.0, sr, state, S_AA_COEF)
    rbj(LOWPASS, fc, BUTTER4_Q[1], 0.0, sr, state, S_AA_COEF + 5)


@njit(cache=True, nogil=True, inline="always")
def _biquad(x: float, state: F64, c: int, z: int) -> float:  # RT
    y: float = state[c] * x + state[z]
    state[z] = state[c + 1] * x - state[c + 3] * y + state[z + 1]
    state[z + 1] = state[c + 2] * x - state[c + 4] * y
    return y
@njit(cache=True, nogil=True)
def _frame(state: F64, params: F64, j: int) -> None:  # RT
    """Analyse frame j from the running autocorrelation into its ring slot."""
    s2 = int(params[P_S2])
    rr = int(params[P_RR])
    rw = int(params[P_RW])
    scratch = int(params[P_SCRATCH])
    order = int(params[P_ORDER])
    lags = int(params[P_LAGS])
    frames = int(params[P_FRAMES])
    slot = int(params[P_FR]) + (j % frames) * (2 * order + 1)
    for k in range(order + 1):
        state[rr + k] = state[s2 + k] * params[P_LAGWIN + k]
    state[rr] *= 1.0 + params[P_FLOOR]
    err = levinson(state, rr, order, state, slot, state, scratch)
    fm = state[S_FM]
    if fm != params[P_FM]:
        fm = _ramp(fm, params[P_FM], params[P_KFM], 1e-6)
        state[S_FM] = fm
    if fm == 0.0:
        for k in range(order):
            state[slot + order + k] = state[slot + k]
        state[slot + 2 * order] = 1.0
        return
    scale_lags(state, s2, lags, 2.0 ** (fm / 12.0), state, rw, order + 1)
    for k in range(order + 1):
        state[rw + k] *= params[P_LAGWIN + k]
    state[rw] *= 1.0 + params[P_FLOOR]
    err_f = levinson(state, rw, order, state, slot + order, state, scratch)
    state[slot + 2 * order] = min(math.sqrt(err_f / err), 8.0) if err > 0.0 else 1.0


@njit(cache=True, nogil=True, inline="always")
def _lerp(a: F64, b: F64, t: float, dst: F64) -> None:  # RT
    for k in range(dst.shape[0]):
        ka = a[k]
        dst[k] = ka + t * (b[k] - ka)


@njit(cache=True, nogil=True, inline="always")
def _interp(  # RT
    state: F64, fr: int, frames: int, order: int, m: int, which: int, dst: int
) -> float:
    """Coefficients at sample m (between frames m // HOP - 1 and m // HOP) into dst; gain."""
    if m < 0:
        state[dst : dst + order] = 0.0
        return 1.0
    j = m // HOP
    t = (m - j * HOP) / HOP
    width = 2 * order + 1
    a = fr + ((j + frames - 1) % frames) * width
    b = fr + (j % frames) * width
    _lerp(state[a + which : a + which + order], state[b + which : b + which + order], t,
          state[dst : dst + order])
    ga: float = state[a + 2 * order]
    gb: float = state[b + 2 * order]
    return ga + t * (gb - ga)

@njit(cache=True, nogil=True)
def pitch_shift(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """The voice changer over one block (see the module docstring)."""
    saved = ftz_begin()
    frames_n, channels = inp.shape
    order = int(params[P_ORDER])
    lags = int(params[P_LAGS])
    ring = int(params[P_RING])
    mask = ring - 1
    nframes = int(params[P_FRAMES])
    s1 = int(params[P_S1])
    s2 = int(params[P_S2])
    fr = int(params[P_FR])
    kcur = int(params[P_KCUR])
    kfcur = int(params[P_KFCUR])
    hpre = int(params[P_HPRE])
    hraw = int(params[P_HRAW])
    chan0 = int(params[P_CHAN0])
    csize = int(params[P_CSIZE])
    lat_a = C_LAT
    lat_s = C_LAT + order + 1
    res_at = C_LAT + 2 * (order + 1)
    dry_at = res_at + ring
    alpha = params[P_ALPHA]
    mu = params[P_MU]
    lat = int(params[P_LAT])
    xf_len = int(params[P_XF])
    inv_ch = 1.0 / channels
    n = int(state[S_N])
    for i in range(frames_n):
        w = n & mask
        # parameter ramps
        if n % GRID == 0 and state[S_ST] != params[P_ST]:
            state[S_ST] = _ramp(state[S_ST], params[P_ST], params[P_KST], ST_SNAP)
            _set_ratio(state, params[P_SR], state[S_ST])
        if state[S_MIX] != params[P_MIX]:
            state[S_MIX] = _ramp(state[S_MIX], params[P_MIX], params[P_KMIX], 1e-7)
        # 1. pre-emphasis, the mean signal; 2. the running autocorrelation, frames
        raw = 0.0
        pre = 0.0
        for c in range(channels):
            base = chan0 + c * csize
            x = clean(inp[i, c])
            xp = x - mu * state[base + dry_at + ((w - 1) & mask)]
            state[base + C_XP] = xp
            state[base + dry_at + w] = x
            raw += x
            pre += xp
        raw *= inv_ch
        pre *= inv_ch
        state[hpre + w] = pre
        state[hpre + w + ring] = pre
        state[hraw + w] = raw
        state[hraw + w + ring] = raw
        autocorr_step(state[hpre : hpre + 2 * ring], w + ring, alpha,
                      state[s1 : s1 + lags], state[s2 : s2 + lags])
        if n % HOP == 0:
            _frame(state, params, n // HOP)
        # 3. whitening with the interpolated coefficients; anti-alias for reading fast
        _interp(state, fr, nframes, order, n, 0, kcur)
        aa = state[S_AA]
        for c in range(channels):
            base = chan0 + c * csize
            e = lattice_whiten(state[base + C_XP], state, kcur, state, base + lat_a, order)
            lp = _biquad(e, state, S_AA_COEF, base + C_AA)
            lp = _biquad(lp, state, S_AA_COEF + 5, base + C_AA + 2)
            state[base + res_at + w] = e + aa * (lp - e)
        # 4. the grain shifter: jump when the tap passes its threshold, crossfade
        if state[S_XF] == 0.0:
            _jump(state, hraw + w + ring, params)
        d = state[S_D]
        d_old = state[S_DOLD]
        xf = int(state[S_XF])
        fade = 0.5 - 0.5 * math.cos(math.pi * xf / (xf_len + 1)) if xf > 0 else 1.0
        # the envelope of the content being read: at its input time, moving from the old
        # tap's to the new tap's with the crossfade (exactly n - L at 0 semitones)
        d_env = d if xf == 0 else fade * d + (1.0 - fade) * d_old
        g = _interp(state, fr, nframes, order, n - math.ceil(d_env), order, kfcur)
        g *= state[S_RGAIN]
        mix = state[S_MIX]
        level = state[S_LEVEL]
        p_dry = 0.0
        p_wet = 0.0
        for c in range(channels):
            base = chan0 + c * csize
            v = _read(state, base + res_at, mask, n - d, params)
            if xf > 0:
                v = fade * v + (1.0 - fade) * _read(state, base + res_at, mask, n - d_old, params)
            # 5. re-colouring, de-emphasis, level; 6. mix with the delayed input
            y = lattice_colour(g * v, state, kfcur, state, base + lat_s, order)
            y += mu * state[base + C_DE]
            state[base + C_DE] = y
            dry = state[base + dry_at + ((n - lat) & mask)]
            p_dry += dry * dry
            p_wet += y * y
            out[i, c] = dry + mix * (level * y - dry)
        # the level match: the wet power follows the dry power (slowly, while not quiet)
        if p_dry > LEVEL_QUIET * channels:
            k_lvl = params[P_KLVL]
            state[S_PDRY] += k_lvl * (p_dry - state[S_PDRY])
            state[S_PWET] += k_lvl * (p_wet - state[S_PWET])
        if n % GRID == GRID - 1:
            target = math.sqrt((state[S_PDRY] + 1e-30) / (state[S_PWET] + 1e-30))
            state[S_LEVEL] = min(max(target, LEVEL_RANGE[0]), LEVEL_RANGE[1])
        step = 1.0 - state[S_RATIO]
        state[S_D] = min(max(d + step, 2.0), ring - 16.0)
        if xf > 0:
            state[S_DOLD] = min(max(d_old + step, 2.0), ring - 16.0)
            state[S_XF] = xf + 1 if xf < xf_len else 0
        n += 1
    state[S_N] = n
    ftz_end(saved)


def config(sr: float, channels: int, order: int = 0) -> tuple[F64, int]:
    """The kernel params' configuration part for a sample rate, and the state size."""
    order = order or int(min(max(round(sr / 1500.0), 16), 64))
    lags = math.ceil(MAX_RATIO * order) + 3
    xf_len = round(XFADE_S * sr)
    win = round(SEARCH_S * sr)
    lat = round(LATENCY_S * sr)
    d_min = float(xf_len + TAPS // 2 + 4)
    d_max = float(2 * lat) - d_min
    span = d_max - d_min - xf_len - 8.0
    need = int(d_max) + xf_len + win + 32
    ring = 1 << max(need - 1, 1).bit_length()
    nframes = (int(d_max) + xf_len) // HOP + 4
    step = max(1, round(sr / 24000.0))
    kp = np.zeros(P_LAGWIN + order + 1, dtype=np.float64)
    kp[P_SR] = sr
    kp[P_ORDER] = order
    kp[P_LAGS] = lags
    kp[P_ALPHA] = math.exp(-1.0 / (WINDOW_PEAK_S * sr))
    kp[P_MU] = math.exp(-2.0 * math.pi * 700.0 / sr)
    kp[P_LAT] = lat
    kp[P_DMIN] = d_min
    kp[P_DMAX] = d_max
    kp[P_XF] = xf_len
    kp[P_WIN] = win
    kp[P_SPAN] = min(span, sr / MIN_F0)
    kp[P_RING] = ring
    kp[P_FRAMES] = nframes
    kp[P_KST] = 1.0 - math.exp(-GRID / (0.02 * sr))
    kp[P_KFM] = 1.0 - math.exp(-HOP / (0.03 * sr))
    kp[P_KMIX] = 1.0 - math.exp(-1.0 / (0.01 * sr))
    kp[P_STEP] = step
    kp[P_FLOOR] = NOISE_FLOOR
    kp[P_KLVL] = 1.0 - math.exp(-1.0 / (LEVEL_S * sr))
    k = np.arange(order + 1)
    kp[P_TABLE:P_LAGWIN] = interp_table()
    kp[P_LAGWIN:] = np.exp(-0.5 * (2.0 * math.pi * LAG_BW_HZ * k / sr) ** 2)
    layout = _layout(channels, order, lags, ring, nframes)
    kp[P_S1 : P_CSIZE + 1] = layout[:-1]
    return kp, layout[-1]


class PitchShifter(Effect):
    """Pitch shift with formants kept, or formants moved on their own (voice changer)."""

    PARAMS = (
        Param("semitones", "st", -12.0, 12.0, 0.0, "pitch shift; formants stay where they are"),
        Param("formant", "st", -12.0, 12.0, 0.0,
              "formant (vocal tract) shift, independent of pitch; 0 keeps them"),
        Param("mix", "", 0.0, 1.0, 1.0, "dry/wet balance (0 = input, delayed to stay aligned)"),
    )
    EXAMPLE = {"semitones": 5.0, "formant": -2.0, "mix": 1.0}

    def make_state(self) -> F64:
        self._kp, size = config(self.sample_rate, self.channels)
        return np.zeros(size, dtype=np.float64)

    def set(self, **values: Any) -> None:  # control thread
        super().set(**values)
        self._kp[P_ST] = self.params[0]
        self._kp[P_FM] = self.params[1]
        self._kp[P_MIX] = self.params[2]

    def on_reset(self) -> None:
        kp = self._kp
        self.state[:] = 0.0
        self.state[S_ST] = kp[P_ST]
        self.state[S_FM] = kp[P_FM]
        self.state[S_MIX] = kp[P_MIX]
        _set_ratio(self.state, self.sample_rate, kp[P_ST])
        self.state[S_D] = kp[P_LAT]
        self.state[S_LO] = kp[P_DMIN]
        self.state[S_LEVEL] = 1.0
        self.state[S_PDRY] = LEVEL_PRIOR
        self.state[S_PWET] = LEVEL_PRIOR
        self.state[S_HI] = kp[P_DMAX]
        order = int(kp[P_ORDER])
        fr = int(kp[P_FR])
        width = 2 * order + 1
        for j in range(int(kp[P_FRAMES])):
            self.state[fr + j * width + 2 * order] = 1.0

    @property
    def latency_samples(self) -> int:
        return int(self._kp[P_LAT])

    def run(self, inp: F32, out: F32) -> None:  # RT
        pitch_shift(inp, out, self.state, self._kp)
