"""What the parts of the auth benchmark (``python -m perf.auth``) share: the console and
its progress bars, the password every benchmark user has, and latency summaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

PASSWORD = "Violet-Harmonic-Tape-72"

console = Console()


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


# -- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Summary of a sample of latencies, in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            raise ValueError("no samples")
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(
            n=len(ms),
            mean_ms=sum(ms) / len(ms),
            p50_ms=percentile(ms, 50),
            p99_ms=percentile(ms, 99),
            min_ms=ms[0],
            max_ms=ms[-1],
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sample."""
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]
