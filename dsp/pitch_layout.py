"""The layout of the voice pitch shifter's (dsp/pitch.py) kernel params and state.

Kernel params (``config`` in dsp/pitch.py): ``[semitones, formant, mix, sr, configuration
(P_*), interpolation table, lag window]``. State: a header (``S_*``), then the arrays
laid out by ``_layout``: autocorrelation stages, Levinson scratch, a ring of
analysis frames ``[k (order), k_moved (order), gain]``, the interpolated
coefficients, the mean signal's doubled histories (pre-emphasised for analysis,
plain for the similarity search), and per channel ``[pre-emphasised sample,
de-emphasis, anti-alias (4), whitening lattice (order+1), colouring lattice
(order+1), residual ring, dry ring]``.

The indices are compile-time constants of the kernels (dsp/pitch.py, dsp/pitch_grain.py).
"""

from __future__ import annotations

TAPS = 12  # windowed-sinc interpolator of the delay line
PHASES = 64

# kernel params: user targets, configuration, state offsets, tables
(P_ST, P_FM, P_MIX, P_SR, P_ORDER, P_LAGS, P_ALPHA, P_MU, P_LAT, P_DMIN, P_DMAX, P_XF, P_WIN,
 P_SPAN, P_RING, P_FRAMES, P_KST, P_KFM, P_KMIX, P_STEP, P_FLOOR, P_KLVL) = range(22)
(P_S1, P_S2, P_RR, P_RW, P_SCRATCH, P_FR, P_KCUR, P_KFCUR, P_HPRE, P_HRAW, P_CHAN0,
 P_CSIZE) = range(22, 34)
P_TABLE = 34  # interpolation table: (PHASES + 1) x TAPS
P_LAGWIN = P_TABLE + (PHASES + 1) * TAPS

# state header
S_N, S_ST, S_FM, S_MIX, S_RATIO, S_D, S_DOLD, S_XF, S_AA = range(9)
S_AA_COEF = 9  # two biquads' b0 b1 b2 a1 a2
S_RGAIN = 19  # sqrt(r): keeps the excitation's power density (see _set_ratio in dsp/pitch.py)
S_LO, S_HI = 20, 21  # the tap's current jump thresholds
S_PDRY, S_PWET, S_LEVEL = 22, 23, 24  # smoothed powers and the wet gain that matches them
HEADER = 25
# per channel: pre-emphasised input, de-emphasis state, anti-alias z (2 x 2), lattices, rings
C_XP, C_DE, C_AA = 0, 1, 2
C_LAT = 6


def _layout(channels: int, order: int, lags: int, ring: int, frames: int) -> list[int]:
    """Offsets of the state arrays (``P_S1`` .. ``P_CSIZE``) and the state size."""
    at = [HEADER]
    for size in (lags, lags, order + 1, order + 1, order + 1, frames * (2 * order + 1),
                 order, order, 2 * ring, 2 * ring):
        at.append(at[-1] + size)
    csize = C_LAT + 2 * (order + 1) + 2 * ring
    return [*at, csize, at[-1] + channels * csize]
