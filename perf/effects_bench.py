"""The per-effect part of the DSP benchmark (``python -m perf.dsp``): every effect in dsp/
(found by walking the package) through ``process()`` on 128-frame stereo blocks, in ns per
channel-sample (time / (frames x channels)).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import time
from typing import Any

import numpy as np

from perf.dsp_common import BLOCK, SR, progress, track_signal


def discover_effects() -> list[type[Any]]:
    """Every Effect subclass in dsp/ (walking the package: nothing to keep in sync)."""
    import dsp
    from dsp.effect import Effect

    for info in pkgutil.walk_packages(dsp.__path__, "dsp."):
        importlib.import_module(info.name)
    found: set[type[Effect]] = set()
    stack = list(Effect.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.PARAMS and cls.run is not Effect.run and not cls.__name__.startswith("_"):
            found.add(cls)
    return sorted(found, key=lambda c: c.__name__)


def measure_effects(seconds: float, rounds: int) -> dict[str, float]:
    effects = discover_effects()
    signal = np.concatenate([track_signal(i, SR // 2) for i in range(2)])
    blocks = [np.ascontiguousarray(signal[i:i + BLOCK])
              for i in range(0, signal.shape[0] - BLOCK + 1, BLOCK)]
    count = max(1, int(seconds * SR / BLOCK))
    result: dict[str, float] = {}
    with progress() as bar:
        task = bar.add_task("effects (128-frame stereo blocks)", total=len(effects))
        for cls in effects:
            bar.update(task, description=f"effects: {cls.__name__}")
            fx = cls(float(SR), 2, **cls.EXAMPLE)
            for b in blocks[:64]:  # compile (or load the cache) and settle
                fx.process(b)
            best = math.inf
            for _ in range(rounds):
                start = time.perf_counter()
                for k in range(count):
                    fx.process(blocks[k % len(blocks)])
                best = min(best, time.perf_counter() - start)
            result[cls.__name__] = best / (count * BLOCK * 2) * 1e9
            bar.advance(task)
    return result
