"""The control side against a playing engine: changes land in the next block without clicks,
graph swaps drop no block, steady state allocates nothing, offline equals real time."""

from __future__ import annotations

import inspect
import math
import threading
import time
import tracemalloc

import numpy as np
from numba.core.runtime import _nrt_python as nrt

import engine.engine as engine_module
from engine.engine import Engine
from engine.model import Bus, EffectSpec, Track
from engine.runner import RealtimeRunner, render_offline
from tests.engine.helpers import (
    SR,
    engine,
    fx,
    max_jump,
    noise,
    project,
    render,
    send,
    sine,
    sine_step,
    track,
)

HZ, AMP = 441.0, 0.5


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_a_fader_move_is_heard_in_the_next_block_and_ramped_without_a_click() -> None:
    ref = engine(project(track("t", "a")), {"a": sine(4.0, HZ, AMP)})
    e = engine(project(track("t", "a")), {"a": sine(4.0, HZ, AMP)})
    before = render(e, 0.2)
    render(ref, 0.2)
    e.set_param("t", "gain_db", -20.0)
    after, same = render(e, 0.2), render(ref, 0.2)
    ratio = np.abs(after[:, 0]) / np.maximum(np.abs(same[:, 0]), 1e-9)
    loud = np.abs(same[:, 0]) > 0.1
    assert ratio[:128][loud[:128]].max() < 1.0  # the next block is already going down
    assert ratio[100:128][loud[100:128]].max() < 0.9
    assert np.allclose(ratio[2000:][loud[2000:]], 0.1, rtol=1e-4)  # -20 dB once there
    y = np.concatenate([before, after])[:, :1] / math.cos(math.pi / 4)
    assert max_jump(y) <= sine_step(HZ, AMP) * 1.001


def test_an_effect_parameter_and_a_mute_are_heard_in_the_next_block() -> None:
    def make() -> Engine:
        t = track("t", "a", chain=[fx("eq", "eq", b1_type="peak", b1_freq_hz=441.0,
                                       b1_gain_db=0.0, b1_q=2.0, b1_enabled="on")])
        return engine(project(t), {"a": sine(4.0, HZ, AMP)})

    ref, changed = make(), make()
    render(ref, 0.1)
    render(changed, 0.1)
    changed.set_param("t", "eq.b1_gain_db", 9.0)
    a, b = render(ref, 0.1), render(changed, 0.1)
    assert not np.array_equal(a[:128], b[:128])  # the very next block differs
    assert _rms(b[-1000:]) > 2.5 * _rms(a[-1000:])  # +9 dB at 441 Hz once settled
    assert max_jump(b[:, :1] / math.cos(math.pi / 4)) <= sine_step(HZ, AMP) * 2.9 * 1.01
    changed.set_mute("t", True)
    muted = render(changed, 0.1)
    assert _rms(muted[:128]) < _rms(b[-128:])
    assert not muted[-100:].any()
    assert max_jump(muted) <= max_jump(b) * 1.01


def test_adding_and_removing_tracks_and_effects_while_playing_drops_no_block() -> None:
    """A real-time run with a sine on one track while the control side adds and removes
    tracks (with effects, sends, a bus) and effects: no block is late, and the sine plays on
    as if nothing happened (the new tracks are silent: same output to the bit)."""
    blocks: list[np.ndarray] = []
    p = project(track("t", "a", length=64.0), buses=(Bus(id="verb", chain=[fx("r", "reverb")]),))
    e = engine(p, {"a": sine(10.0, HZ, AMP)}, play=True)
    ref = render_offline(engine(project(track("t", "a", length=64.0),
                                        buses=(Bus(id="verb", chain=[fx("r", "reverb")]),)),
                                {"a": sine(10.0, HZ, AMP)}), round(2.2 * SR), 128)
    runner = RealtimeRunner(e, 128, ahead=8, sink=lambda out: blocks.append(out.copy()))
    with runner:
        for k in range(12):
            e.add_track(Track(id=f"n{k}", chain=[fx("c", "compressor"), fx("d", "delay")],
                              sends=[send("verb", -6.0)]))
            e.add_effect("t", EffectSpec(f"e{k}", "eq"))
            time.sleep(0.03)
            e.remove_effect("t", f"e{k}")
            if k % 2:
                e.remove_track(f"n{k - 1}")
            time.sleep(0.03)
        deadline = time.monotonic() + 5.0
        while len(blocks) * 128 < 2.2 * SR and time.monotonic() < deadline:
            time.sleep(0.01)
    stats = runner.stats.summary()
    assert stats["xruns"] == 0, stats
    y = np.concatenate(blocks)[:ref.shape[0]]
    assert y.shape == ref.shape
    assert np.array_equal(y, ref)  # every block there, in order, the same samples


def test_steady_state_allocates_nothing_while_parameters_change_1000_times_a_second() -> None:
    tracks = [track(f"t{k}", "n", chain=[fx("eq", "eq"), fx("c", "compressor")],
                    sends=[send("verb", -12.0)]) for k in range(8)]
    e = engine(project(*tracks, buses=(Bus(id="verb", chain=[fx("r", "reverb")]),)),
               {"n": noise(30.0)})
    for _ in range(3000):  # warm-up: compile, first blocks, views, and numba's dispatch
        e.render(128)  # caches, which take a few hundred bytes in the first ~3000 calls
    stop = threading.Event()
    changes = [0]

    def control() -> None:  # ~1000 changes a second from another thread
        k = 0
        while not stop.is_set():
            for _ in range(10):
                e.set_param(f"t{k % 8}", "gain_db", -6.0 - (k % 12))
                e.set_param(f"t{k % 8}", "eq.b1_gain_db", (k % 7) - 3.0)
                k += 2
            changes[0] = k
            time.sleep(0.02)

    lines, start = inspect.getsourcelines(Engine.render)
    filters = [tracemalloc.Filter(True, engine_module.__file__, lineno)
               for lineno in range(start, start + len(lines))]
    thread = threading.Thread(target=control)
    thread.start()
    try:
        nrt.memsys_enable_stats()
        tracemalloc.start(8)
        snaps = []
        t0 = time.perf_counter()
        nrt_before = 0
        for window in range(3):  # 3 x 2 s of audio, paced to real time
            if window == 1:
                nrt_before = nrt.memsys_get_stats_alloc()
            snaps.append(tracemalloc.take_snapshot().filter_traces(filters))
            for _ in range(750):
                e.render(128)
                time.sleep(max(0.0, 128 / SR - 0.0002))
        snaps.append(tracemalloc.take_snapshot().filter_traces(filters))
        nrt_after = nrt.memsys_get_stats_alloc()
        elapsed = time.perf_counter() - t0
        tracemalloc.stop()
    finally:
        stop.set()
        thread.join()
    assert changes[0] / elapsed > 900, changes[0] / elapsed
    assert nrt_after == nrt_before  # no numba (NRT) allocation in 1500 blocks
    # Python memory held by the render path: numba's dispatcher keeps a few hundred bytes
    # of caches that settle in the first window; after that nothing grows with the blocks
    grown = sum(max(d.size_diff, 0) for d in snaps[3].compare_to(snaps[1], "traceback"))
    assert grown < 1536, grown  # about one byte per block at most, over 1500 blocks


def test_offline_render_equals_the_real_time_render() -> None:
    def make() -> Engine:
        t1 = track("t1", "n", chain=[fx("eq", "eq"), fx("c", "compressor", threshold_db=-30.0)],
                   sends=[send("verb", -6.0)])
        t2 = track("t2", "s", start=0.5, chain=[fx("d", "delay", time_ms=120.0)], pan=-0.4)
        return engine(project(t1, t2, buses=(Bus(id="verb", chain=[fx("r", "reverb")]),)),
                      {"n": noise(3.0), "s": sine(3.0, 220.0, 0.3)})

    frames = round(1.5 * SR) // 128 * 128
    offline = render_offline(make(), frames, 128)
    blocks: list[np.ndarray] = []
    runner = RealtimeRunner(make(), 128, sink=lambda out: blocks.append(out.copy()))
    with runner:
        deadline = time.monotonic() + 10.0
        while len(blocks) * 128 < frames and time.monotonic() < deadline:
            time.sleep(0.01)
    realtime = np.concatenate(blocks)[:frames]
    assert np.abs(offline).max() > 0.05
    assert np.array_equal(offline, realtime)


def test_meters_come_back_about_30_times_a_second() -> None:
    e = engine(project(track("t", "a")), {"a": sine(4.0, HZ, AMP)})
    e.configure_meters(128)
    render(e, 1.0)
    readings = e.read_meters()
    assert set(readings) == {"t", "master"}
    peak_l, _ = readings["t"].peak
    assert peak_l == __import__("pytest").approx(AMP * math.cos(math.pi / 4), rel=0.01)
    assert readings["t"].rms[0] == __import__("pytest").approx(peak_l / math.sqrt(2), rel=0.02)


def test_live_input_ports_feed_input_tracks_and_late_data_is_silence() -> None:
    t = Track(id="mic", kind="input", input="alice", chain=[fx("g", "gain", gain_db=-6.0)])
    e = engine(project(t), {})
    e.add_input("alice")
    voice = sine(0.1, 220.0, 0.5)
    assert e.push_input("alice", voice[:2560]) == 2560
    y = render(e, 2560 / SR)
    expected = voice[:2560, 0] * 10 ** (-6 / 20) * math.cos(math.pi / 4)
    assert np.allclose(y[:, 0], expected, atol=1e-6)
    before = e.stats["late_frames"]
    assert not render(e, 256 / SR).any()  # nothing more arrived: silence, counted
    assert e.stats["late_frames"] == before + 256
