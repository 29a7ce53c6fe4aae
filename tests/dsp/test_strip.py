"""The strip bank (dsp/strip.py) against the chain of effects it fuses, and the kernel rules.

(a) Equivalence: per track ParametricEQ4 -> Compressor -> Delay -> Gain -> Pan, then Summer and
    Limiter, as separate effects, against ``StripBank`` with the same settings and the same
    parameter changes mid-stream. Both run the compressor's gain law on the same hop grid (the
    bank runs a line-by-line copy of the Compressor's gain computer), so no grid difference
    is left to measure; the one deliberate difference is the delay lines, float32 in the bank
    and float64 in Delay. Measured: at most 1.8e-7 (a float32 step or two at these levels;
    with the delays dry the outputs are identical); the test allows 1e-6.
(b) Block-size invariance: 1, 64, 65, 128, 8192 and 8193 frames against one big block, with
    parameter changes at fixed sample positions (within 1e-5; in practice identical).
(c) No allocation in ``process`` after warm-up (tracemalloc, numba's NRT statistics) and no NRT
    allocation call in any compiled function of dsp/strip.py.
(d) Finite, limited output for NaN, inf and absurd input samples.
"""

from __future__ import annotations

import gc
import itertools
import re
import tracemalloc
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from numba import njit
from numba.core.dispatcher import Dispatcher
from numba.core.runtime import _nrt_python as nrt

import dsp.gaincomputer
import dsp.strip
import dsp.strip_stages
from dsp.biquad import ParametricEQ4
from dsp.compressor import Compressor
from dsp.delay import Delay
from dsp.effect import Effect
from dsp.limiter import Limiter
from dsp.mix import Summer
from dsp.params import ParamError
from dsp.stereo import Gain, Pan
from dsp.strip import StripBank
from dsp.truepeak import measure_true_peak

SR = 48000.0
F32 = npt.NDArray[np.float32]
BLOCK_SIZES = [1, 64, 65, 128, 8192, 8193]
TOLERANCE = 1e-6

# Four strips that between them take every path: shelves, peaks, pass filters and a bypassed
# band; RMS and peak detectors, a fast attack (per-sample gain), a short release (short
# hops), limiting and a dry/wet mix; free, synced, ping-pong, filtered and 1 ms echoes; a
# boost, a cut and silence; constant-power and balance pans.
STRIPS: list[dict[str, dict[str, Any]]] = [
    {
        "eq": {"b0_type": "lowshelf", "b0_gain_db": 4.0, "b1_gain_db": -3.0, "b2_q": 2.0,
               "b2_gain_db": 6.0, "b3_type": "highshelf", "b3_gain_db": -2.0},
        "compressor": {"detector": "rms", "threshold_db": -24.0, "ratio": 4.0,
                       "attack_ms": 5.0, "release_ms": 80.0, "makeup_db": 6.0},
        "delay": {"time_ms": 250.0, "feedback": 0.4, "mix": 0.3},
        "gain": {"gain_db": -3.0},
        "pan": {"pan": -0.5},
    },
    {
        "eq": {"b1_enabled": "off", "b2_gain_db": 3.0},
        "compressor": {"detector": "peak", "threshold_db": -30.0, "ratio": 8.0,
                       "attack_ms": 0.3, "release_ms": 40.0, "mix": 0.7},
        "delay": {"sync": "1/8", "bpm": 128.0, "pingpong": "on", "lowcut_hz": 150.0,
                  "highcut_hz": 6000.0, "feedback": 0.5, "mix": 0.35},
        "gain": {"gain_db": 2.0},
        "pan": {"pan": 0.7},
    },
    {
        "eq": {},
        "compressor": {"detector": "peak", "threshold_db": -12.0, "ratio": 100.0,
                       "knee_db": 0.0, "release_ms": 3.0},
        "delay": {"time_ms": 1.0, "mix": 0.5},
        "gain": {"gain_db": 12.0},
        "pan": {"pan": 0.0, "law": "balance"},
    },
    {
        "eq": {"b0_type": "highpass", "b0_freq_hz": 80.0, "b3_type": "lowpass",
               "b3_freq_hz": 9000.0},
        "compressor": {"threshold_db": -18.0},
        "delay": {"time_ms": 20.0, "feedback": 0.9, "mix": 0.2},
        "gain": {"gain_db": -100.0},
        "pan": {"pan": 1.0},
    },
]

# Changes applied together at one sample position: every kind of ramp starts there.
CHANGES: list[tuple[str, int | None, dict[str, Any]]] = [
    ("eq", 0, {"b1_freq_hz": 3000.0, "b1_gain_db": 9.0, "b2_q": 0.5}),
    ("eq", 2, {"b0_type": "lowshelf", "b0_gain_db": 6.0}),
    ("compressor", 0, {"threshold_db": -36.0, "ratio": 2.0, "release_ms": 5.0, "mix": 0.5}),
    ("compressor", 1, {"detector": "rms", "attack_ms": 20.0}),
    ("delay", 0, {"time_ms": 120.0, "feedback": 0.2, "highcut_hz": 3000.0}),
    ("delay", 1, {"sync": "1/4", "pingpong": "off"}),
    ("gain", 1, {"gain_db": -12.0}),
    ("gain", 3, {"gain_db": -6.0}),
    ("gain", 2, {"mute": "on"}),
    ("pan", 0, {"pan": 0.8}),
    ("pan", 2, {"pan": -0.6}),
    ("bus", None, {"headroom_db": -3.0}),
    ("limiter", None, {"ceiling_db": -3.0, "release_ms": 30.0}),
]

EFFECTS: dict[str, type[Effect]] = {
    "eq": ParametricEQ4, "compressor": Compressor, "delay": Delay, "gain": Gain, "pan": Pan,
}


def music(tracks: int, frames: int, seed: int = 3) -> F32:
    """Per track: a chord, a kick-like burst train, noise and a gap of silence, at its own
    level (up to +6 dBFS peaks, so the limiter and the clamps have work)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / SR
    out = np.zeros((tracks, frames, 2))
    for k in range(tracks):
        root = 55.0 * 2.0 ** (k * 5 / 12)
        tone = sum(0.2 * np.sin(2 * np.pi * root * r * t + k) for r in (1.0, 1.5, 2.0, 3.0))
        env = np.exp(-((t * (1.5 + 0.5 * k)) % 1.0) * 10.0)
        x = (tone + env * np.sin(2 * np.pi * 50.0 * t))[:, None]
        x = x + 0.05 * rng.standard_normal((frames, 2))
        x[frames // 3 : frames // 3 + 3000] = 0.0
        out[k] = x * (0.4 + 0.5 * k)
    return np.ascontiguousarray(out, dtype=np.float32)


class Chain:
    """The reference: each track through its own effects, the Summer, the Limiter."""

    def __init__(self, strips: list[dict[str, dict[str, Any]]]) -> None:
        self.tracks = [[EFFECTS[stage](SR, 2, **strip[stage]) for stage in EFFECTS]
                       for strip in strips]
        self.summer = Summer(SR, 2)
        self.limiter = Limiter(SR, 2)

    def set(self, stage: str, track: int | None, **values: Any) -> None:
        if stage == "bus":
            self.summer.set(**values)
        elif stage == "limiter":
            self.limiter.set(**values)
        else:
            assert track is not None
            self.tracks[track][list(EFFECTS).index(stage)].set(**values)

    def process(self, inputs: F32) -> F32:
        outs = []
        for k, effects in enumerate(self.tracks):
            y = inputs[k]
            for fx in effects:
                y = fx.process(y)
            outs.append(y.copy())
        return self.limiter.process(self.summer.sum(np.stack(outs))).copy()


def make_bank(strips: list[dict[str, dict[str, Any]]]) -> StripBank:
    bank = StripBank(len(strips), SR)
    for k, strip in enumerate(strips):
        for stage, values in strip.items():
            bank.set(stage, k, **values)
    bank.reset()
    return bank


def stream(proc: Any, x: F32, block: int, change_at: int | None = None) -> F32:
    """Run ``x`` (tracks, frames, 2) through ``proc`` in blocks; apply CHANGES at
    ``change_at`` (the blocks are cut there, so the change lands on that sample)."""
    frames = x.shape[1]
    cuts = [0, frames] if change_at is None else [0, change_at, frames]
    parts = []
    for lo, hi in itertools.pairwise(cuts):
        if lo:
            for stage, track, values in CHANGES:
                proc.set(stage, track, **values)
        for i in range(lo, hi, block):
            parts.append(np.array(proc.process(np.ascontiguousarray(x[:, i:min(i + block, hi)]))))
    return np.concatenate(parts)


# -- (a) equivalence ----------------------------------------------------------------------


@pytest.mark.parametrize("block", [128, 65])
def test_bank_equals_the_chain_of_effects(block: int) -> None:
    x = music(len(STRIPS), 36000)
    reference = stream(Chain(STRIPS), x, block, change_at=18000)
    got = stream(make_bank(STRIPS), x, block, change_at=18000)
    assert got.shape == reference.shape == (36000, 2)
    assert float(np.max(np.abs(reference))) > 0.1  # the comparison is not of silences
    err = float(np.max(np.abs(got - reference)))
    assert err <= TOLERANCE, f"block {block}: max difference {err:.3g}"


def test_latency_is_the_limiters() -> None:
    bank = StripBank(2, SR)
    assert bank.latency_samples == Limiter(SR, 2).latency_samples == 240
    bank.set("limiter", lookahead_ms=2.0)
    assert bank.latency_samples == 240  # lookahead applies at reset, as in Limiter
    bank.reset()
    assert bank.latency_samples == Limiter(SR, 2, lookahead_ms=2.0).latency_samples


# -- (b) block-size invariance ------------------------------------------------------------


def test_block_size_invariance() -> None:
    x = music(len(STRIPS), 20000, seed=5)
    reference = stream(make_bank(STRIPS), x, 20000, change_at=9001)
    for size in BLOCK_SIZES:
        got = stream(make_bank(STRIPS), x, size, change_at=9001)
        err = float(np.max(np.abs(got - reference)))
        assert err <= 1e-5, f"block size {size}: max difference {err}"


def test_reset_restarts_the_stream() -> None:
    x = music(2, 6000)
    bank = make_bank(STRIPS[:2])
    first = stream(bank, x, 128)
    bank.reset()
    again = stream(bank, x, 128)
    assert np.array_equal(first, again)


# -- (c) no allocation --------------------------------------------------------------------


def _nrt_allocs_per_call(bank: StripBank, block: F32, calls: int = 50) -> float:
    was_enabled = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        before = nrt.memsys_get_stats_alloc()
        for _ in range(calls):
            bank.process(block)
        return (nrt.memsys_get_stats_alloc() - before) / calls
    finally:
        if not was_enabled:
            nrt.memsys_disable_stats()


def test_process_allocates_nothing_after_warm_up() -> None:
    bank = make_bank(STRIPS)
    small = music(len(STRIPS), 64)
    large = music(len(STRIPS), 4096)
    for _ in range(5):
        bank.process(small)
        bank.process(large)
    gc.collect()
    tracemalloc.start()
    for _ in range(2000):
        bank.process(small)
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(400):
        bank.process(small)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before < 64, f"{after - before} bytes still held after 400 calls"
    assert peak - before < 512, f"peak {peak - before} bytes during process()"
    # NRT counts one MemInfo per array handed to the kernel (five): the count must not grow
    # with the block; what the compiled code itself does is checked below.
    per_small = _nrt_allocs_per_call(bank, small)
    per_large = _nrt_allocs_per_call(bank, large)
    assert per_small == per_large <= 8, (per_small, per_large)


ALLOCATING = re.compile(r"@(NRT_MemInfo_alloc\w*|NRT_Allocate\w*|NRT_MemInfo_new_varsize\w*)")


def test_no_compiled_strip_function_allocates() -> None:
    make_bank(STRIPS[:1]).process(music(1, 256))
    # A fresh (uncached) compile of the kernel compiles every function it calls, so each has
    # its signatures afterwards; then each gets a fresh copy whose IR is read.
    njit(nogil=True)(dsp.strip.strip_kernel.py_func).compile(
        dsp.strip.strip_kernel.signatures[0])
    checked = 0
    for module in (dsp.strip, dsp.strip_stages, dsp.gaincomputer):
        for attr, obj in vars(module).items():
            if not (isinstance(obj, Dispatcher) and obj.signatures) or (
                    obj.__module__ != module.__name__):
                continue
            fresh = njit(nogil=True)(obj.py_func)
            for sig in obj.signatures:
                fresh.compile(sig)
            for ir in fresh.inspect_llvm().values():
                assert ir, f"{module.__name__}.{attr}: no IR to inspect"
                found = set(ALLOCATING.findall(ir))
                assert not found, f"{module.__name__}.{attr} allocates: {sorted(found)}"
            checked += 1
    assert checked >= 10, checked


# -- (d) bad input --------------------------------------------------------------------------


def test_nan_inf_and_absurd_inputs_give_finite_limited_output() -> None:
    bank = make_bank(STRIPS)
    x = music(len(STRIPS), 6000)
    x[0, 100] = np.nan
    x[1, 200] = np.inf
    x[2, 300] = -np.inf
    x[3, 400:420] = 1e30
    x[0, 1000:1100] = -1e30
    ceiling = 10.0 ** (float(bank.get("limiter", "ceiling_db")) / 20.0)
    for _ in range(3):
        y = stream(bank, x, 128)
        assert np.all(np.isfinite(y)), "non-finite output"
        # The limiter's promise is on the true peak as dsp.truepeak reads it. Its BS.1770
        # interpolator reads an isolated one-sample spike a little below the sample itself,
        # so the sample peak of the clamped inf may pass up to ~0.25 dB over (the Limiter
        # effect does the same, bit for bit).
        assert float(np.max(measure_true_peak(y))) <= ceiling
        assert float(np.max(np.abs(y))) <= ceiling * 10.0 ** (0.5 / 20.0)


def test_silence_in_silence_out() -> None:
    bank = make_bank(STRIPS)
    y = stream(bank, np.zeros((len(STRIPS), 3000, 2), dtype=np.float32), 128)
    assert not np.any(y)


# -- parameters ------------------------------------------------------------------------------


def test_parameters_are_the_effects() -> None:
    bank = StripBank(3, SR)
    assert bank.get("delay", "time_ms", 1) == Delay.PARAMS[0].default
    bank.set("compressor", ratio=1000.0)  # every track; clamped like the effect
    assert all(bank.get("compressor", "ratio", t) == 100.0 for t in range(3))
    bank.set("pan", 2, law="balance")
    assert bank.get("pan", "law", 2) == "balance" and bank.get("pan", "law", 1) == (
        "constant_power")
    bank.set("bus", headroom_db=-12.0)
    assert bank.get("bus", "headroom_db") == -12.0
    with pytest.raises(ParamError, match="unknown parameter"):
        bank.set("eq", 0, no_such_knob=1.0)
    with pytest.raises(ParamError, match="time_ms"):
        bank.set("delay", 0, time_ms=float("nan"))
    with pytest.raises(ParamError, match="unknown stage"):
        bank.set("reverb", 0, mix=0.5)
    with pytest.raises(ParamError, match="track"):
        bank.set("gain", 3, gain_db=0.0)
    with pytest.raises(ParamError, match="master"):
        bank.set("limiter", 0, ceiling_db=-1.0)
    with pytest.raises(ParamError, match="inputs"):
        bank.process(np.zeros((2, 64, 2), dtype=np.float32))
    with pytest.raises(ParamError, match="tracks"):
        StripBank(0, SR)
