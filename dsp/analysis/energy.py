"""Energy over time: a per-second curve (0..1) and hints where the intro ends and the
outro starts, for the DJ to mix in and out.

The curve is the RMS level of each second of the (mono, analysis-rate) signal in dB,
mapped linearly from ``RANGE_DB`` below the loudest second (0) to the loudest second
(1). Silence reads 0.

Intro and outro are found on the bar grid when there is one (the downbeats), else on
the seconds: the "main" level is the ``MAIN_PERCENTILE``th percentile of the bar levels
(dB); the intro ends at the first bar whose level is within ``ENTRY_DB`` of it, and the
outro starts after the last such bar. A track that is at full level throughout has an
intro end of 0 and an outro start at its end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

RANGE_DB = 40.0
MAIN_PERCENTILE = 75.0
ENTRY_DB = 3.0
SILENCE_DB = -100.0


@dataclass(frozen=True)
class Energy:
    curve: F64  # one value per second (the last second may be partial), 0..1
    intro_end_s: float
    outro_start_s: float


def _block_db(cum: F64, edges: npt.NDArray[np.int64]) -> F64:
    """RMS level in dB of the signal between consecutive sample ``edges``, from the
    cumulative sum of squares ``cum`` (length samples + 1)."""
    lo, hi = edges[:-1], edges[1:]
    count = np.maximum(hi - lo, 1)
    ms = (cum[hi] - cum[lo]) / count
    return np.asarray(10.0 * np.log10(np.maximum(ms, 10.0 ** (SILENCE_DB / 10.0))))


def energy(y: F32, sr: float, downbeats_s: F64 | None = None) -> Energy:
    """Energy curve and intro/outro hints of the mono signal ``y`` at rate ``sr``."""
    n = y.shape[0]
    duration = n / sr
    if n == 0:
        return Energy(np.zeros(0), 0.0, 0.0)
    cum = np.concatenate(([0.0], np.cumsum(y.astype(np.float64) ** 2)))
    seconds = int(np.ceil(duration))
    edges = np.minimum(np.round(np.arange(seconds + 1) * sr).astype(np.int64), n)
    db = _block_db(cum, edges)
    top = float(db.max())
    if top <= SILENCE_DB:
        return Energy(np.zeros(seconds), 0.0, duration)
    curve = np.clip((db - (top - RANGE_DB)) / RANGE_DB, 0.0, 1.0)
    # Intro and outro on bars when there are enough of them.
    bounds = None
    if downbeats_s is not None and downbeats_s.size >= 4:
        bounds = np.concatenate(([0.0], downbeats_s[downbeats_s > 0.0], [duration]))
    else:
        bounds = np.arange(seconds + 1, dtype=np.float64)
        bounds[-1] = duration
    bounds = np.unique(np.clip(bounds, 0.0, duration))
    bar_edges = np.round(bounds * sr).astype(np.int64)
    levels = _block_db(cum, bar_edges)
    lengths = np.diff(bounds)
    full = lengths >= 0.5 * float(np.median(lengths))  # ignore the partial first/last bar
    if not np.any(full):
        return Energy(curve, 0.0, duration)
    main = float(np.percentile(levels[full], MAIN_PERCENTILE))
    loud = np.flatnonzero(full & (levels >= main - ENTRY_DB))
    first, last = int(loud[0]), int(loud[-1])
    full_idx = np.flatnonzero(full)
    # Quiet bars before the first loud one make an intro (a partial bar alone does not).
    intro_end = float(bounds[first]) if first > full_idx[0] else 0.0
    outro_start = float(bounds[last + 1]) if last < full_idx[-1] else duration
    return Energy(np.asarray(curve, dtype=np.float64), intro_end, outro_start)
