"""Tracks with an EQ -> compressor -> delay chain rendered side by side (engine.bank):
the same sound as one track at a time, and state that survives changes of the bank."""

from __future__ import annotations

import numpy as np

from engine.engine import Engine
from engine.model import EffectSpec, Project, Track
from tests.engine.helpers import engine, fx, noise, project, render, track


def chain(k: int) -> list[EffectSpec]:
    return [fx("eq", "eq", b1_type="peak", b1_freq_hz=300.0 + 100 * k, b1_gain_db=4.0,
               b1_enabled="on"),
            fx("comp", "compressor", threshold_db=-24.0, ratio=3.0),
            fx("dly", "delay", time_ms=60.0 + 17 * k, feedback=0.4, mix=0.35)]


def studio(count: int = 6) -> tuple[Project, dict[str, np.ndarray]]:
    tracks = [track(f"t{k}", f"a{k}", chain=chain(k), pan=-0.6 + 0.2 * k) for k in range(count)]
    return project(*tracks), {f"a{k}": noise(3.0, amp=0.3, seed=k) for k in range(count)}


def test_the_bank_sounds_like_one_track_at_a_time() -> None:
    p, data = studio()
    banked = Engine(p, clip_data=data)
    assert banked.rack.bank is not None and len(banked.rack.bank.ids) == 6
    p2, _ = studio()
    single = Engine(p2, clip_data=data, banks=False)
    assert single.rack.bank is None
    for e in (banked, single):
        e.play()
    a, b = render(banked, 1.5), render(single, 1.5)
    assert np.abs(b).max() > 0.1
    # the bank's delay lines hold float32 (the Delay effect's float64): echoes differ by
    # that rounding, fed back through the compressor
    assert np.allclose(a, b, atol=2e-5), np.abs(a - b).max()


def test_a_parameter_change_reaches_a_banked_track() -> None:
    p, data = studio()
    ref = engine(p, data)
    p2, _ = studio()
    e = engine(p2, data)
    render(ref, 0.3)
    render(e, 0.3)
    e.set_param("t2", "comp.threshold_db", -50.0)
    e.set_param("t3", "dly.mix", 0.0)
    a, b = render(ref, 0.3), render(e, 0.3)
    assert not np.allclose(a, b, atol=1e-3)


def test_adding_a_track_keeps_the_other_tracks_echoes() -> None:
    """A new track joins the bank while playing: a new bank adopts the others' state, so
    the output goes on exactly as if nothing had been added (the new track is silent)."""
    p, data = studio()
    ref = engine(p, data)
    p2, _ = studio()
    e = engine(p2, data)
    before = render(e, 0.5)
    assert np.array_equal(before, render(ref, 0.5))
    old = e.rack.bank
    e.add_track(Track(id="new", chain=chain(9)))
    after, expected = render(e, 1.0), render(ref, 1.0)
    assert e.rack.bank is not old and "new" in e.rack.bank.ids  # type: ignore[union-attr]
    assert np.array_equal(after, expected)


def test_a_track_leaving_the_bank_plays_on_with_its_own_effects() -> None:
    p, data = studio()
    e = engine(p, data)
    render(e, 0.5)
    e.add_effect("t0", EffectSpec("g", "gain", {"gain_db": 0.0}))  # no longer the shape
    y = render(e, 0.5)
    assert e.rack.bank is not None and "t0" not in e.rack.bank.ids
    assert np.isfinite(y).all() and np.abs(y).max() < 4.0
