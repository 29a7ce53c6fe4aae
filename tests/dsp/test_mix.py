"""Crossfader curves at analytic points, the two-input Crossfader, and the summing kernel."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import numpy.typing as npt
import pytest
from numba import njit

from dsp.mix import (
    CURVES,
    Crossfader,
    Summer,
    crossfade,
    crossfade_gains,
    cut_width,
    sum_kernel,
)
from dsp.params import ParamError
from tests.dsp.test_stereo import change_is_block_size_invariant

SR = 48000.0
F32 = npt.NDArray[np.float32]
POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)
S = math.sqrt(0.5)


@pytest.mark.parametrize(
    ("curve", "slope", "expected"),
    [
        ("linear", 0.5, [(1, 0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0, 1)]),
        ("constant_power", 0.5, [
            (1, 0), (math.cos(math.pi / 8), math.sin(math.pi / 8)), (S, S),
            (math.sin(math.pi / 8), math.cos(math.pi / 8)), (0, 1),
        ]),
        # slope 0: each deck fades over half the travel
        ("cut", 0.0, [(1, 0), (1, 0.5), (1, 1), (0.5, 1), (0, 1)]),
        # slope 1: cut within the last 1% of the travel
        ("cut", 1.0, [(1, 0), (1, 1), (1, 1), (1, 1), (0, 1)]),
        # slope 0.5: width 0.5 * 0.02**0.5 = 0.0707
        ("cut", 0.5, [(1, 0), (1, 1), (1, 1), (1, 1), (0, 1)]),
    ],
)
def test_curves_at_the_analytic_points(
    curve: str, slope: float, expected: list[tuple[float, float]]
) -> None:
    for p, (a, b) in zip(POINTS, expected, strict=True):
        got = crossfade(p, curve, slope)
        assert got == pytest.approx((a, b), abs=1e-12), (curve, p)


def test_constant_power_sums_to_one_in_power() -> None:
    for p in np.linspace(0, 1, 101):
        a, b = crossfade(float(p), "constant_power")
        assert abs(a * a + b * b - 1.0) < 1e-12
    a, b = crossfade(0.5, "constant_power")
    assert abs(20 * math.log10(a) + 3.0103) < 1e-4


def test_linear_sums_to_one_in_amplitude() -> None:
    for p in np.linspace(0, 1, 101):
        assert sum(crossfade(float(p), "linear")) == pytest.approx(1.0, abs=1e-12)


def test_cut_curve_holds_both_decks_until_near_the_ends_and_slope_steepens_it() -> None:
    widths = [cut_width(s) for s in np.linspace(0, 1, 11)]
    assert widths[0] == pytest.approx(0.5) and widths[-1] == pytest.approx(0.01)
    assert all(b < a for a, b in itertools.pairwise(widths))
    for slope, w in ((0.3, cut_width(0.3)), (0.8, cut_width(0.8))):
        for p in np.linspace(w, 1 - w, 50):
            assert crossfade(float(p), "cut", slope) == pytest.approx((1.0, 1.0), abs=1e-12)
        # inside the cut zone the gain falls linearly to 0 at the end
        p = 1 - w / 4
        assert crossfade(p, "cut", slope)[0] == pytest.approx(0.25)
        assert crossfade(w / 4, "cut", slope)[1] == pytest.approx(0.25)
    # a steeper slope keeps deck A at full level closer to the end
    assert crossfade(0.9, "cut", 0.2)[0] < crossfade(0.9, "cut", 0.9)[0] == 1.0


def test_unknown_curve_and_out_of_range_positions() -> None:
    with pytest.raises(ParamError, match="curve"):
        crossfade(0.5, "exponential")
    assert crossfade(-3.0, "linear") == (1.0, 0.0)
    assert crossfade(7.0, "linear") == (0.0, 1.0)
    assert crossfade(math.nan, "linear") == (1.0, 0.0)


@njit(cache=True)
def _gains_in_njit(p: float, curve: int, slope: float) -> tuple[float, float]:
    return crossfade_gains(p, curve, slope)


def test_njit_version_is_callable_from_kernels_and_agrees() -> None:
    for curve in CURVES:
        for p in np.linspace(0, 1, 21):
            assert _gains_in_njit(float(p), CURVES.index(curve), 0.4) == crossfade(
                float(p), curve, 0.4
            )


# -- the Crossfader effect ------------------------------------------------------------


def decks(frames: int = 4800) -> tuple[F32, F32]:
    t = np.arange(frames) / SR
    a = np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32) * 0.5
    b = np.stack([np.sin(2 * np.pi * 330 * t)] * 2, axis=1).astype(np.float32) * 0.5
    return a, b


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("position", POINTS)
def test_crossfader_applies_the_curve(curve: str, position: float) -> None:
    a, b = decks()
    y = Crossfader(SR, 2, position=position, curve=curve, slope=0.3).process2(a, b)
    ga, gb = crossfade(position, curve, 0.3)
    assert np.allclose(y, ga * a.astype(np.float64) + gb * b.astype(np.float64), atol=1e-6)


def test_process_feeds_both_decks() -> None:
    a, _ = decks()
    y = Crossfader(SR, 2, position=0.5, curve="constant_power").process(a)
    assert np.allclose(y, 2 * S * a.astype(np.float64), atol=1e-6)


def test_crossfader_moves_fast_but_without_steps() -> None:
    a = np.ones((1920, 2), dtype=np.float32)
    b = np.zeros((1920, 2), dtype=np.float32)
    fx = Crossfader(SR, 2, position=0.0, curve="linear")
    fx.process2(a[:10], b[:10])
    fx.set(position=1.0)
    y = np.concatenate([fx.process2(a[i : i + 32], b[i : i + 32]).copy()
                        for i in range(0, 1920, 32)])[:, 0].astype(np.float64)
    assert np.abs(np.diff(y)).max() < 0.05  # 16 samples per step of the grid, interpolated
    assert y[480] < 1e-4  # within 10 ms (1 ms time constant) ...
    assert not np.any(y[1440:])  # ... and exactly there by 30 ms


def test_crossfader_changes_are_block_size_invariant() -> None:
    change_is_block_size_invariant(Crossfader, {}, {"position": 0.95, "curve": "linear"})


def test_crossfader_refuses_mismatched_decks() -> None:
    a, b = decks()
    with pytest.raises(ParamError, match="block"):
        Crossfader(SR, 2).process2(a, b[:100])


# -- summing -------------------------------------------------------------------------


def test_sum_kernel_sums_tracks_with_the_headroom_gain() -> None:
    tracks = np.random.default_rng(1).uniform(-1, 1, (64, 256, 2)).astype(np.float32)
    bus = Summer(SR, 2, headroom_db=-12.0)
    y = bus.sum(tracks).astype(np.float64)
    expected = tracks.astype(np.float64).sum(axis=0) * 10 ** (-12 / 20)
    assert np.max(np.abs(y - expected)) < 1e-4


def test_a_broken_track_does_not_break_the_bus() -> None:
    tracks = np.full((3, 64, 2), 0.25, dtype=np.float32)
    tracks[1, 10, 0] = np.nan
    tracks[2, 20, 1] = np.inf
    y = Summer(SR, 2, headroom_db=0.0).sum(tracks)
    assert np.all(np.isfinite(y))
    assert y[10, 0] == 0.5 and y[20, 1] == 0.5 + 64.0  # NaN is silence, inf is clamped
    assert y[0, 0] == 0.75


def test_headroom_changes_ramp_and_snap() -> None:
    tracks = np.ones((2, 14400, 1), dtype=np.float32)
    bus = Summer(SR, 1, headroom_db=0.0)
    bus.set(headroom_db=-6.0)
    y = np.concatenate([bus.sum(tracks[:, i : i + 100]).copy() for i in range(0, 14400, 100)])
    y64 = y[:, 0].astype(np.float64)
    assert np.abs(np.diff(y64)).max() < 0.01
    assert y64[-1] == np.float32(2 * 10 ** (-6 / 20))  # snapped to the target by 0.3 s


def test_summer_checks_its_input() -> None:
    with pytest.raises(ParamError, match="tracks"):
        Summer(SR, 2).sum(np.zeros((4, 64, 1), dtype=np.float32))


ALLOCATING = re.compile(r"@(NRT_MemInfo_alloc\w*|NRT_Allocate\w*|NRT_MemInfo_new_varsize\w*)")


def test_sum_kernel_does_not_allocate() -> None:
    """It has no Effect to be checked by the contract. Compiled afresh: numba cannot show
    the IR of a function it loaded from its cache."""
    fresh = njit(nogil=True)(sum_kernel.py_func)
    fresh(np.zeros((4, 64, 2), dtype=np.float32), np.zeros((64, 2), dtype=np.float32),
          np.ones(1), np.array([-6.0, SR]))
    irs = list(fresh.inspect_llvm().values())
    assert irs and all("sum_kernel" in ir for ir in irs)
    for ir in irs:
        assert not ALLOCATING.findall(ir)
