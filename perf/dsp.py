"""DSP speed: ``python -m perf.dsp [--json PATH] [--quick]``.

Measures, in one process and one thread (every engine runs in the main thread, so on one
core at a time; numba's parallel backend is not used, BLAS is limited to one thread, and
``--cpu N`` pins the process to CPU N):

* the cost of every effect in dsp/ (found by walking the package), through ``process()``
  on 128-frame stereo blocks, in ns per channel-sample (time / (frames x channels))
  (perf/effects_bench.py);
* the W64 workload: 64 stereo tracks, each 4-band EQ -> compressor -> delay -> gain ->
  constant-power pan, summed, master limiter, in 128-frame blocks at 48 kHz, in Retoone's
  ``StripBank``, in pedalboard and in pyo, taking turns on the same input for the same
  duration; the best round of each counts (perf/w64.py has the chains in detail);
* music analysis: ``dsp.analysis.analyze`` against librosa (beat_track for tempo, chroma_cqt
  with Retoone's own key templates for the key) on tracks of the generated test set
  (tests/dsp/testset.py, known tempo and key): speed and accuracy side by side
  (perf/analysis_bench.py).

Ratios are Retoone's speed over the other's: above 1 means Retoone is faster. This module
runs the three, prints the tables and writes the JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from perf.analysis_bench import Analysis, measure_analysis
from perf.dsp_common import BLOCK, SR, console
from perf.effects_bench import measure_effects
from perf.w64 import TRACKS, W64, measure_w64


@dataclass
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    effects_ns_per_sample: dict[str, float] = field(default_factory=dict)
    w64: W64 | None = None
    analysis: Analysis | None = None



# -- the run ----------------------------------------------------------------------------------


def pin_to_cpu(cpu: int | None) -> int | None:
    """Pin the process to ``cpu`` (None: leave it to the scheduler); the CPU pinned to."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    os.sched_setaffinity(0, {cpu})
    return cpu


def one_blas_thread() -> AbstractContextManager[Any] | None:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return None
    limits: AbstractContextManager[Any] = threadpool_limits(limits=1)
    return limits


def machine_info(cpu: int | None) -> dict[str, Any]:
    import numba

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    versions: dict[str, str] = {"numpy": np.__version__, "numba": numba.__version__}
    for mod in ("pedalboard", "pyo", "librosa"):
        try:
            m = importlib.import_module(mod)
            versions[mod] = str(getattr(m, "__version__", getattr(m, "PYO_VERSION", "?")))
        except ImportError:
            versions[mod] = "missing"
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "pinned_cpu": cpu,
        "threads": 1,
        "load_average_at_start": [round(v, 2) for v in load],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "versions": versions,
    }


def run(args: argparse.Namespace) -> Report:
    cpu = pin_to_cpu(args.cpu)
    limits = one_blas_thread()
    quick = bool(args.quick)
    settings = {
        "quick": quick,
        "block": BLOCK,
        "tracks": TRACKS,
        "sample_rate": SR,
        "effect_seconds": 0.1 if quick else 1.0,
        "effect_rounds": 2 if quick else 5,
        "w64_seconds": 0.5 if quick else 2.0,
        "w64_rounds": 1 if quick else 10,
        "analysis_tracks": 1 if quick else 12,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report = Report(machine=machine_info(cpu), settings=settings)
    try:
        report.effects_ns_per_sample = measure_effects(
            float(settings["effect_seconds"]), int(settings["effect_rounds"]))
        report.w64 = measure_w64(float(settings["w64_seconds"]), int(settings["w64_rounds"]))
        report.analysis = measure_analysis(int(settings["analysis_tracks"]))
    finally:
        if limits is not None:
            limits.__exit__(None, None, None)
    return report


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def show(report: Report) -> None:
    m = report.machine
    pinned = "not pinned" if m["pinned_cpu"] is None else f"pinned to CPU {m['pinned_cpu']}"
    console.print(
        f"\n[bold]Retoone DSP perf[/]: {m['cpu_model'] or m['machine']}, {m['cpu_count']} CPUs "
        f"(one thread, {pinned}), load average at start "
        f"{m['load_average_at_start']}, Python {m['python']}"
    )
    if report.effects_ns_per_sample:
        t = Table(title="Effects through process(), 128-frame stereo blocks",
                  caption="ns per channel-sample = time / (frames x 2); includes the Python "
                          "call (~1 us per block)")
        t.add_column("effect")
        t.add_column("ns / channel-sample", justify="right")
        t.add_column("x real time (one stereo stream)", justify="right")
        for name, ns in sorted(report.effects_ns_per_sample.items(), key=lambda kv: kv[1]):
            t.add_row(name, f"{ns:.1f}", f"{1e9 / (ns * 2 * SR):.0f}")
        console.print(t)
    if report.w64 is not None:
        w = report.w64
        t = Table(title=f"W64: {w.tracks} stereo tracks (EQ4 -> compressor -> delay -> gain -> "
                        f"pan) + master limiter, {w.block}-frame blocks at {w.sample_rate} Hz",
                  caption=f"best of {w.rounds} interleaved rounds of {w.seconds_per_round:g} s "
                          "of audio; real-time factor = audio seconds / wall seconds, one core")
        for col in ("engine", "best s", "median s", "RTF best", "RTF median",
                    "Retoone is (best)", "(median)", "out peak dBFS", "out RMS dBFS"):
            t.add_column(col, justify="left" if col == "engine" else "right")
        for name, e in w.engines.items():
            ours = w.engines["retoone"]
            faster = None if name == "retoone" or e.rtf <= 0 else ours.rtf / e.rtf
            faster_med = (None if name == "retoone" or e.rtf_median <= 0
                          else ours.rtf_median / e.rtf_median)
            t.add_row(name + (f" ({e.note})" if e.note else ""),
                      f"{e.best_s:.3f}" if e.rounds_s else "-",
                      f"{e.median_s:.3f}" if e.rounds_s else "-",
                      f"{e.rtf:.2f}" if e.rtf else "-",
                      f"{e.rtf_median:.2f}" if e.rtf_median else "-",
                      _ratio(faster) if name != "retoone" else "",
                      _ratio(faster_med) if name != "retoone" else "",
                      f"{e.out_peak_dbfs:.1f}", f"{e.out_rms_dbfs:.1f}")
        console.print(t)
        for name, e in w.engines.items():
            console.print(f"  {name} rounds (s): " + " ".join(f"{s:.3f}" for s in e.rounds_s))
        console.print(f"Retoone StripBank: {w.retoone_ns_per_track_channel_sample:.2f} ns per "
                      "track-channel-sample")
    if report.analysis is not None:
        a = report.analysis
        t = Table(title=f"Music analysis on {a.tracks} generated tracks "
                        f"({a.audio_s:.0f} s of audio, known tempo and key)",
                  caption="Acc1: tempo within 4 %; Acc2: also at x2, x1/2, x3, x1/3; "
                          "librosa: resample to 22050 Hz, beat_track, chroma_cqt + Retoone's "
                          "key templates")
        for col in ("engine", "seconds", "x real time", "tempo Acc1", "tempo Acc2", "key exact"):
            t.add_column(col, justify="left" if col == "engine" else "right")
        for name, side in (("retoone analyze()", a.retoone), ("librosa", a.librosa)):
            if side is None:
                t.add_row(name, "-", "-", "-", "-", "-")
                continue
            t.add_row(name, f"{side.seconds:.2f}", f"{side.x_realtime:.0f}",
                      f"{side.tempo_acc1:.0%}", f"{side.tempo_acc2:.0%}",
                      f"{side.key_exact:.0%}")
        console.print(t)
        console.print(f"Retoone analysis is {_ratio(a.vs_librosa_speed)} librosa's speed")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.dsp",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run (a few seconds once the numba cache is warm)")
    parser.add_argument("--cpu", type=int, metavar="N", help="pin the process to CPU N")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
    show(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_jsonable(asdict(report)), indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
