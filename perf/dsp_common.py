"""What the parts of the DSP benchmark (``python -m perf.dsp``) share: the sample rate and
block size, the console and its progress bars, and the music-like test signal that the
effect and W64 measurements feed their engines.
"""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SR = 48000
BLOCK = 128

console = Console(width=None if sys.stdout.isatty() else 120)  # wide enough when piped


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def track_signal(index: int, frames: int) -> F32:
    """A music-like stereo track: a chord of decaying notes, a kick-like burst train, noise."""
    rng = np.random.default_rng(index)
    t = np.arange(frames) / SR
    root = 55.0 * 2.0 ** (rng.integers(0, 24) / 12.0)
    tone = sum(0.12 / (k + 1) * np.sin(2 * np.pi * root * r * t + rng.uniform(0, 6.28))
               for k, r in enumerate((1.0, 1.5, 2.0, 2.5, 4.0)))
    beat = 60.0 / rng.uniform(90.0, 140.0)
    env = np.exp(-((t + rng.uniform(0, beat)) % beat) * rng.uniform(6.0, 20.0))
    kick = 0.5 * env * np.sin(2 * np.pi * 50.0 * t)
    noise = rng.standard_normal((frames, 2)) * 0.03 * env[:, None]
    x = (tone * (0.6 + 0.4 * env) + kick)[:, None] + noise
    x[:, 1] *= rng.uniform(0.7, 1.0)
    return np.ascontiguousarray(x, dtype=np.float32)

