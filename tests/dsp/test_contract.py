"""The contract every effect keeps: block-size invariance, finite output whatever the
parameters, no denormal slowdown, and no allocation in ``process`` after warm-up.

Effects are discovered from dsp/ (tests/dsp/effects.py), so a new effect is held to
this contract without being listed anywhere.
"""

from __future__ import annotations

import gc
import math
import re
import sys
import time
import tracemalloc

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.dispatcher import Dispatcher
from numba.core.runtime import _nrt_python as nrt

from dsp.effect import Effect
from dsp.params import ParamError
from tests.dsp.effects import all_effects, make

EFFECTS = all_effects()
IDS = [cls.__name__ for cls in EFFECTS]
SR = 48000.0
BLOCK_SIZES = [1, 64, 65, 128, 8192, 8193]


def program(frames: int, channels: int = 2, seed: int = 7) -> npt.NDArray[np.float32]:
    """Music-like test signal: chords, a kick-like burst train, noise, and silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / SR
    tone = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 277.2, 329.6, 880.0))
    env = np.exp(-((t * 2.0) % 1.0) * 12.0)
    kick = 0.6 * env * np.sin(2 * np.pi * 55.0 * t)
    noise = 0.05 * rng.standard_normal((frames, channels))
    x = (tone + kick)[:, None] + noise
    x[frames // 2 : frames // 2 + 2000] = 0.0
    x[:, -1] *= 0.8
    return np.ascontiguousarray(x, dtype=np.float32)


def test_effects_were_found() -> None:
    assert len(EFFECTS) >= 3, IDS


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
def test_params_are_documented(cls: type[Effect]) -> None:
    for p in cls.PARAMS:
        assert p.doc, f"{cls.__name__}.{p.name} needs a doc"
        assert p.lo <= p.default <= p.hi
        if not p.choices:
            assert p.unit is not None
    make(cls)  # EXAMPLE settings are valid


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
def test_block_size_invariance(cls: type[Effect]) -> None:
    x = program(20000)
    fx = make(cls)
    reference = fx.process(x).copy()
    for size in BLOCK_SIZES:
        fx.reset()
        parts = [fx.process(x[i : i + size]).copy() for i in range(0, x.shape[0], size)]
        streamed = np.concatenate(parts)
        err = float(np.max(np.abs(streamed - reference)))
        assert err <= 1e-5, f"block size {size}: max difference {err}"


CHANGE_AT = 8320  # a block boundary for every size below (lcm of 64, 65 and 128)


def _moved(cls: type[Effect], fraction: float) -> dict[str, object]:
    """Every parameter moved to a point of its range (switches to another choice)."""
    values: dict[str, object] = {}
    for p in cls.PARAMS:
        if p.choices:
            values[p.name] = p.choices[int(fraction * 10) % len(p.choices)]
        else:
            values[p.name] = p.lo + fraction * (p.hi - p.lo)
    return values


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
def test_parameter_changes_are_block_size_invariant(cls: type[Effect]) -> None:
    """Moves at the same sample positions give the same output however blocks are cut."""
    x = program(3 * CHANGE_AT)
    moves = {CHANGE_AT: _moved(cls, 0.37), 2 * CHANGE_AT: _moved(cls, 0.81)}
    outputs = []
    for size in (1, 64, 65, 128, CHANGE_AT):
        fx = make(cls)
        parts = []
        for i in range(0, x.shape[0], size):
            if i in moves:
                fx.set(**moves[i])
            parts.append(fx.process(x[i : i + size]).copy())
        outputs.append(np.concatenate(parts))
    for size, y in zip((1, 64, 65, 128), outputs[:-1], strict=True):
        err = float(np.max(np.abs(y - outputs[-1])))
        assert err <= 1e-5, f"block size {size}: max difference {err} after parameter moves"
    assert np.all(np.isfinite(outputs[-1]))


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
@pytest.mark.parametrize("channels", [1, 2])
def test_mono_and_stereo_at_all_rates(cls: type[Effect], channels: int) -> None:
    for sr in (44100.0, 48000.0, 96000.0):
        fx = make(cls, channels, sr)
        y = fx.process(program(4096, channels))
        assert y.shape == (4096, channels) and y.dtype == np.float32
        assert np.all(np.isfinite(y))


wild_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, -1e9, 1e9, 1e-300, math.nan, math.inf, -math.inf]),
    st.integers(min_value=-(10**6), max_value=10**6),
)


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_parameter_value_gives_finite_output(cls: type[Effect], data: st.DataObject) -> None:
    fx = make(cls)
    for p in cls.PARAMS:
        value = data.draw(
            st.one_of(wild_numbers, st.sampled_from(p.choices)) if p.choices else wild_numbers,
            label=p.name,
        )
        try:
            fx.set(**{p.name: value})
        except ParamError as exc:
            assert p.name in str(exc)
            bad = isinstance(value, float) and not math.isfinite(value)
            assert bad or p.choices, f"{p.name}={value!r} refused: {exc}"
        else:
            got = fx.get(p.name)
            if not p.choices:
                assert isinstance(got, float) and p.lo <= got <= p.hi
    x = program(3000)
    x[100] = np.nan
    x[200] = np.inf
    x[300] = -np.inf
    x[400:420] = 1e30
    for _ in range(3):
        y = fx.process(x)
        assert np.all(np.isfinite(y)), f"{cls.__name__} produced non-finite output"
        assert float(np.max(np.abs(y))) < 1e8, "runaway output"


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
def test_unknown_parameter_and_bad_blocks_are_refused(cls: type[Effect]) -> None:
    fx = make(cls)
    with pytest.raises(ParamError, match="unknown parameter"):
        fx.set(no_such_knob=1.0)
    with pytest.raises(ParamError, match="block"):
        fx.process(np.zeros((64, 3), dtype=np.float32))


def _best_time(fx: Effect, block: npt.NDArray[np.float32], reps: int) -> float:
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter_ns()
        for _ in range(8):
            fx.process(block)
        best = min(best, time.perf_counter_ns() - start)
    return best


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
def test_silence_after_loud_signal_costs_no_more(cls: type[Effect]) -> None:
    """Denormals in decaying tails would make silence 30-100x dearer than signal."""
    fx = make(cls)
    block = 2048
    loud = program(48000) * 4.0
    signal = np.ascontiguousarray(loud[:block])
    silence = np.zeros((block, 2), dtype=np.float32)
    fx.process(signal)
    ratios = []
    for _ in range(3):  # the best of three rounds: the machine is shared
        fx.reset()
        for i in range(0, loud.shape[0], block):
            fx.process(loud[i : i + block])
        for _ in range(20):  # let tails decay deep into denormal range
            fx.process(silence)
        t_silence = _best_time(fx, silence, 15)
        t_signal = _best_time(fx, signal, 15)
        ratios.append(t_silence / t_signal)
    assert min(ratios) <= 1.5, f"silence/signal cost ratio {min(ratios):.2f}"


def _nrt_allocs_per_call(fx: Effect, block: npt.NDArray[np.float32], calls: int = 50) -> float:
    was_enabled = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        before = nrt.memsys_get_stats_alloc()
        for _ in range(calls):
            fx.process(block)
        return (nrt.memsys_get_stats_alloc() - before) / calls
    finally:
        if not was_enabled:
            nrt.memsys_disable_stats()


@pytest.mark.parametrize("cls", EFFECTS, ids=IDS)
def test_process_allocates_nothing_after_warm_up(cls: type[Effect]) -> None:
    fx = make(cls)
    small, large = program(64), program(4096)
    for _ in range(5):
        fx.process(small)
        fx.process(large)
    # Python side: nothing retained, and no buffer-sized temporary.
    gc.collect()
    tracemalloc.start()
    for _ in range(2000):  # first calls under tracing fill Python's own small caches
        fx.process(small)
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(400):
        fx.process(small)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Less than one ndarray header retained over 400 calls: nothing is kept per call.
    assert after - before < 64, f"{after - before} bytes still held after 400 calls"
    assert peak - before < 512, f"peak {peak - before} bytes during process()"
    # numba side: NRT counts one allocation per array handed across the Python boundary
    # (its MemInfo wrapper, no sample data). That count must not grow with the block;
    # what the kernels themselves do is checked in their compiled code below.
    per_small = _nrt_allocs_per_call(fx, small)
    per_large = _nrt_allocs_per_call(fx, large)
    assert per_small == per_large <= 12, (per_small, per_large)


ALLOCATING = re.compile(r"@(NRT_MemInfo_alloc\w*|NRT_Allocate\w*|NRT_MemInfo_new_varsize\w*)")


def test_no_compiled_kernel_allocates() -> None:
    """Every compiled numba function in dsp/ is free of NRT allocation calls."""
    for cls in EFFECTS:  # compile everything the effects use
        make(cls).process(program(256))
    checked = 0
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("dsp."):
            continue
        for attr, obj in vars(module).items():
            if not (isinstance(obj, Dispatcher) and obj.signatures):
                continue
            # Code loaded from numba's on-disk cache cannot be inspected: compile a
            # fresh, uncached copy with the same signatures and read its IR.
            fresh = njit(nogil=True)(obj.py_func)
            for sig in obj.signatures:
                fresh.compile(sig)
            for ir in fresh.inspect_llvm().values():
                assert ir, f"{name}.{attr}: no IR to inspect"
                found = set(ALLOCATING.findall(ir))
                assert not found, f"{name}.{attr} allocates: {sorted(found)}"
            checked += 1
    assert checked >= len(EFFECTS)
