"""Engine speed: ``python -m perf.engine [--tracks 64] [--block 128] [--seconds 30] [--json F]``.

Four measurements, all in this process:

* real time: a ``--tracks`` project (each track: a clip -> 4-band EQ -> compressor -> delay ->
  fader, a send to a reverb bus; master limiter) played by the headless real-time runner for
  ``--seconds`` while a control thread makes 1,000 parameter changes a second: block render
  time p50/p99/max, load, xruns. Target: no xruns, p99 under 25% of the block period.
* offline: the same project rendered as fast as it goes (real-time factor, one core).
* sessions per core: how many 8-track sessions render in real time side by side, on one
  thread (one core) and on two threads (the kernels release the interpreter lock).
  Target: at least 40 on one core.
* pyo: the W64 chain (perf.w64: 64 tracks of EQ -> compressor -> delay -> gain -> pan,
  master limiter) as an engine project, rendered offline by Retoone and by pyo's offline
  server for the same audio time; the ratio of speeds (> 1: Retoone faster).

``--json FILE`` writes ``{"rtf", "block_ms": {"p50", "p99", "max"}, "xruns",
"sessions_per_core_8tracks", "sessions_two_cores_8tracks", "offline_vs_pyo", ...}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from engine.engine import Engine
from engine.model import AudioClip, Bus, EffectSpec, Project, Send, Track
from engine.runner import RealtimeRunner, render_offline
from perf import w64
from perf.dsp_common import F32, SR, console, progress, track_signal

LOOP_S = 4.0


def _eq_params() -> dict[str, Any]:
    eq: dict[str, Any] = {}
    for k, (kind, freq, gain, q) in enumerate(w64.EQ_BANDS):
        eq.update({f"b{k}_type": kind, f"b{k}_freq_hz": freq, f"b{k}_gain_db": gain,
                   f"b{k}_q": q, f"b{k}_enabled": "on"})
    return eq


def studio_project(tracks: int, *, reverb: bool = True, loop_s: float = LOOP_S
                   ) -> tuple[Project, dict[str, F32]]:
    """``tracks`` tracks with a looping clip each, the W64 chain, a reverb send; master
    limiter. The clip repeats (the project loops) so any duration can be rendered."""
    frames = round(loop_s * SR)
    data = {f"a{t}": track_signal(t, frames) for t in range(tracks)}
    beats = loop_s * 2.0  # 120 bpm
    comp: dict[str, float | str] = {"detector": "peak", "knee_db": 0.0, **w64.COMP}
    p = Project(name=f"{tracks}-track bench")
    for t in range(tracks):
        chain = [EffectSpec("eq", "eq", _eq_params()), EffectSpec("comp", "compressor", comp),
                 EffectSpec("dly", "delay", {"time_ms": w64.delay_ms(t), "mix": w64.DELAY_MIX,
                                             "feedback": w64.DELAY_FEEDBACK})]
        p.tracks.append(Track(
            id=f"t{t}", gain_db=w64.GAIN_DB, pan=w64.pan_position(t, tracks), chain=chain,
            clips=[AudioClip(f"c{t}", f"a{t}", 0.0, beats)],
            sends=[Send("verb", -18.0)] if reverb else []))
        p.assets[f"a{t}"] = f"a{t}"
    if reverb:
        p.buses.append(Bus(id="verb", chain=[EffectSpec("rev", "reverb", {"mix": 1.0})]))
    p.master.gain_db = w64.HEADROOM_DB
    p.master.chain.append(EffectSpec("lim", "limiter", {
        "ceiling_db": w64.CEILING_DB, "release_ms": w64.LIMITER_RELEASE_MS,
        "lookahead_ms": w64.LOOKAHEAD_MS}))
    p.loop.enabled, p.loop.start, p.loop.end = True, 0.0, beats
    return p, data


def _engine(project: Project, data: dict[str, F32], block: int) -> Engine:
    e = Engine(project, clip_data=data, max_block=block)
    e.configure_meters(block)
    e.play()
    return e


def measure_realtime(tracks: int, block: int, seconds: float) -> dict[str, Any]:
    project, data = studio_project(tracks)
    e = _engine(project, data, block)
    render_offline(e, block * 64, block)  # warm-up
    stop = threading.Event()
    sent = [0]

    def control() -> None:  # 1,000 changes a second: 20 every 20 ms
        k = 0
        next_t = time.perf_counter()
        while not stop.is_set():
            for _ in range(10):
                t = f"t{k % tracks}"
                e.set_param(t, "gain_db", w64.GAIN_DB - (k % 7) * 0.5)
                e.set_param(t, "eq.b1_gain_db", -2.0 + (k % 5))
                k += 1
            sent[0] += 20
            next_t += 0.02
            time.sleep(max(0.0, next_t - time.perf_counter()))

    runner = RealtimeRunner(e, block)
    thread = threading.Thread(target=control, daemon=True)
    with progress() as bar:
        task = bar.add_task(f"real time: {tracks} tracks, {seconds:g} s", total=seconds)
        runner.start()
        thread.start()
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            bar.update(task, completed=elapsed)
            time.sleep(0.1)
        stop.set()
        runner.stop()
        thread.join()
    stats = runner.stats.summary()
    period_ms = block / SR * 1000.0
    return {"block_ms": {"p50": stats["p50_ms"], "p99": stats["p99_ms"], "max": stats["max_ms"]},
            "period_ms": period_ms, "p99_of_period": stats["p99_ms"] / period_ms,
            "load": stats["load"], "xruns": int(stats["xruns"]), "blocks": int(stats["blocks"]),
            "param_changes_per_s": sent[0] / max(elapsed, 1e-9),
            "late_frames": e.stats["late_frames"]}


def measure_offline(tracks: int, block: int, seconds: float) -> float:
    project, data = studio_project(tracks)
    e = _engine(project, data, block)
    render_offline(e, block * 64, block)
    frames = round(seconds * SR) // block * block
    t0 = time.perf_counter()
    render_offline(e, frames, block)
    return frames / SR / (time.perf_counter() - t0)


def _round_robin(engines: list[Engine], block: int, rounds: int) -> float:
    t0 = time.perf_counter()
    for _ in range(rounds):
        for e in engines:
            e.render(block)
    return time.perf_counter() - t0


def measure_sessions(block: int, count: int = 48, seconds: float = 3.0) -> dict[str, float]:
    """Sessions of 8 tracks rendered side by side: per core, and on two threads."""
    project, data = studio_project(8, loop_s=2.0)
    engines = []
    for _ in range(count):
        p, d = studio_project(8, loop_s=2.0)
        engines.append(_engine(p, d, block))
    _ = project, data
    rounds = max(1, round(seconds * SR / block))
    _round_robin(engines, block, 32)
    period = block / SR
    one = _round_robin(engines, block, rounds) / rounds  # time for every session's block
    per_core = math.floor(count * period / one)
    halves = (engines[:count // 2], engines[count // 2:])
    times: list[float] = [0.0, 0.0]

    def work(k: int) -> None:
        times[k] = _round_robin(halves[k], block, rounds)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    two = (time.perf_counter() - t0) / rounds
    return {"sessions": count, "one_core_round_ms": one * 1e3,
            "two_threads_round_ms": two * 1e3,
            "sessions_per_core_8tracks": per_core,
            "sessions_two_cores_8tracks": math.floor(count * period / two)}


def measure_vs_pyo(block: int, seconds: float) -> dict[str, float]:
    """The W64 chain as a 64-track project (no reverb bus): Retoone's engine against pyo's
    offline server (perf.w64.PyoW64) on the same inputs, for the same audio time."""
    project, data = studio_project(w64.TRACKS, reverb=False, loop_s=2.0)
    e = _engine(project, data, block)
    render_offline(e, block * 64, block)
    frames = round(seconds * SR) // block * block
    t0 = time.perf_counter()
    render_offline(e, frames, block)
    ours = time.perf_counter() - t0
    inputs = np.stack([data[f"a{t}"] for t in range(w64.TRACKS)])
    try:
        pyo_engine = w64.PyoW64(inputs)
    except ImportError as exc:
        return {"retoone_s": ours, "note": f"pyo not installed: {exc}"}  # type: ignore[dict-item]
    try:
        pyo_engine.run(64)
        t0 = time.perf_counter()
        pyo_engine.run(frames // block)
        theirs = time.perf_counter() - t0
    finally:
        pyo_engine.close()
    return {"retoone_s": ours, "pyo_s": theirs, "audio_s": frames / SR,
            "offline_vs_pyo": theirs / ours}


def show(report: dict[str, Any]) -> None:
    rt = report["realtime"]
    table = Table(title=f"Retoone engine: {report['tracks']} tracks, {report['block']}-frame "
                        f"blocks at {SR} Hz")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("offline real-time factor (one core)", f"{report['rtf']:.1f}", "")
    table.add_row("block time p50 / p99 / max (ms)",
                  f"{rt['block_ms']['p50']:.3f} / {rt['block_ms']['p99']:.3f} / "
                  f"{rt['block_ms']['max']:.2f}", "")
    table.add_row("p99 / block period", f"{rt['p99_of_period']:.1%}", "< 25%")
    table.add_row("xruns (while 1,000 changes/s)", f"{rt['xruns']} in {rt['blocks']} blocks",
                  "0")
    table.add_row("parameter changes per second", f"{rt['param_changes_per_s']:.0f}", ">= 1000")
    s = report["sessions"]
    table.add_row("8-track sessions in real time, one core",
                  str(s["sessions_per_core_8tracks"]), ">= 40")
    table.add_row("8-track sessions in real time, two threads",
                  str(s["sessions_two_cores_8tracks"]), "")
    pyo = report["pyo"]
    if "offline_vs_pyo" in pyo:
        table.add_row("W64 project offline: Retoone vs pyo speed",
                      f"{pyo['offline_vs_pyo']:.2f}x", "> 1")
    console.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m perf.engine", description=__doc__.split("\n")[0])
    p.add_argument("--tracks", type=int, default=64)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--seconds", type=float, default=30.0, help="real-time run length")
    p.add_argument("--json", type=Path, metavar="PATH")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {"tracks": args.tracks, "block": args.block,
                              "seconds": args.seconds}
    report["rtf"] = measure_offline(args.tracks, args.block, min(args.seconds, 10.0))
    report["realtime"] = measure_realtime(args.tracks, args.block, args.seconds)
    report["block_ms"] = report["realtime"]["block_ms"]
    report["xruns"] = report["realtime"]["xruns"]
    report["sessions"] = measure_sessions(args.block)
    report["sessions_per_core_8tracks"] = report["sessions"]["sessions_per_core_8tracks"]
    report["sessions_two_cores_8tracks"] = report["sessions"]["sessions_two_cores_8tracks"]
    report["pyo"] = measure_vs_pyo(args.block, min(args.seconds, 5.0))
    report["offline_vs_pyo"] = report["pyo"].get("offline_vs_pyo")
    show(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
