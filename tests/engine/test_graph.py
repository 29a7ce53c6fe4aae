"""The mixer as a desk: known signals through known graphs, mute, solo, sends, compensation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model import Bus, EffectSpec
from tests.engine.helpers import (
    BEAT,
    const_power,
    db,
    dc,
    engine,
    fx,
    noise,
    project,
    render,
    send,
    track,
)


def test_a_known_signal_through_a_known_graph_is_the_analytic_result() -> None:
    """DC 0.5 -> track (-6 dB, pan +0.5) -> post-fader send (-12 dB) -> bus (-3 dB) ->
    master (-1 dB): every sample after the start is the product of the gains."""
    t = track("t", "a", gain_db=-6.0, pan=0.5, sends=[send("b", -12.0)])
    p = project(t, buses=(Bus(id="b", gain_db=-3.0),))
    p.master.gain_db = -1.0
    y = render(engine(p, {"a": dc(2.0)}), 1.0)
    gl, gr = const_power(0.5)
    track_out = np.array([0.5 * db(-6.0) * gl, 0.5 * db(-6.0) * gr])
    bus_out = track_out * db(-12.0) * db(-3.0)  # the bus pans with the balance law: 0 dB
    expected = (track_out + bus_out) * db(-1.0)
    assert np.allclose(y[100:], expected, rtol=1e-6, atol=1e-7), (y[100], expected)


def test_mute_solo_and_sends_behave_as_on_a_mixing_desk() -> None:
    tracks = [track("t1", "a1", sends=[send("fx", 0.0)]),  # post-fader send
              track("t2", "a2"),
              track("t3", "a3", sends=[send("fx", 0.0, pre=True)])]  # pre-fader send
    data = {"a1": dc(4.0, 0.1), "a2": dc(4.0, 0.2), "a3": dc(4.0, 0.4)}
    e = engine(project(*tracks, buses=(Bus(id="fx"),)), data)
    left = const_power(0.0)[0]

    def level() -> float:
        return float(render(e, 0.1)[-1, 0])  # after every 15 ms ramp

    assert level() == pytest.approx((0.1 + 0.2 + 0.4) * left + 0.1 * left + 0.4, rel=1e-5)
    e.set_mute("t1", True)  # its post-fader send goes with it
    assert level() == pytest.approx((0.2 + 0.4) * left + 0.4, rel=1e-5)
    e.set_mute("t1", False)
    e.set_solo("t2", True)  # solo in place: the others go quiet, the bus stays open
    assert level() == pytest.approx(0.2 * left, rel=1e-5)
    e.set_solo("t1", True)  # two soloed: both heard, and t1's send reaches the bus
    assert level() == pytest.approx((0.1 + 0.2) * left + 0.1 * left, rel=1e-5)
    e.set_solo("t1", False)
    e.set_solo("t2", False)
    e.set_param("t3", "gain_db", -100.0)  # fader down: the pre-fader send still sends
    assert level() == pytest.approx((0.1 + 0.2) * left + 0.1 * left + 0.4, rel=1e-5)
    e.set_mute("t3", True)  # a mute also cuts its pre-fader send
    assert level() == pytest.approx((0.1 + 0.2) * left + 0.1 * left, rel=1e-5)
    e.set_mute("fx", True)  # a bus mute
    assert level() == pytest.approx((0.1 + 0.2) * left, rel=1e-5)


def test_parallel_paths_with_different_latencies_null() -> None:
    """The same noise through a limiter that does not limit (its lookahead delays it) and
    through nothing: with delay compensation the two paths are sample-aligned, so rendering
    either one alone gives the same output."""
    lim = EffectSpec("lim", "limiter", {"ceiling_db": 0.0, "lookahead_ms": 5.0})
    data = {"n": noise(1.0, amp=0.05)}

    def only(which: str) -> np.ndarray:
        a = track("a", "n", chain=[lim], mute=which != "a")
        b = track("b", "n", mute=which != "b")
        e = engine(project(a, b), data)
        assert e.latency_samples == 240
        return render(e, 0.5)

    ya, yb = only("a"), only("b")
    assert np.abs(yb).max() > 0.01
    assert np.array_equal(ya, yb)
    # the limiter's path really is 240 samples late: alone, with nothing to align to
    alone = render(engine(project(track("a", "n", chain=[lim])), data), 0.5)
    dry = render(engine(project(track("b", "n")), data), 0.5)
    assert not np.array_equal(alone, dry)
    assert np.array_equal(alone[240:], dry[:-240])


def test_buses_feeding_buses_run_in_order_and_a_bus_chain_processes_the_sum() -> None:
    # heard only through t -> (pre-fader) b1 -> (pre-fader) b2 -> master
    t = track("t", "a", sends=[send("b1", 0.0, pre=True)], gain_db=-100.0)
    b1 = Bus(id="b1", sends=[send("b2", 0.0, pre=True)], gain_db=-100.0)
    b2 = Bus(id="b2", chain=[fx("g", "gain", gain_db=-6.0)])
    e = engine(project(t, buses=(b2, b1)), {"a": dc(2.0)})  # listed out of order
    y = render(e, 0.2)
    assert y[-1, 0] == pytest.approx(0.5 * db(-6.0), rel=1e-5)
    assert y[-1, 1] == pytest.approx(0.5 * db(-6.0), rel=1e-5)
    assert BEAT == 24000
