"""``retoone render PROJECT.json -o mix.wav [--format flac] [--stems DIR]``: offline mixdown.

The project is loaded (engine.project.read_project: what cannot be used is reported on
stderr and left out), its audio assets decoded and resampled to the project's rate
(engine.assets), and the engine renders it block by block, exactly as it would in real time
(the same block size gives the same samples), faster than real time, with a progress bar.

Length: up to the end of the last clip or note, plus ``--tail`` seconds (default 2) for
reverb and delay tails; ``--seconds`` sets it instead. Files are 24-bit PCM (WAV) or 24-bit
FLAC; ``--format`` overrides the file name's suffix. ``--stems DIR`` also writes one file per
track: the track's post-fader output (its own sound, before buses and the master chain).

Exit status: 0 written, 1 a file could not be read or written, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from engine.model import Project

console = Console(stderr=True)
FORMATS = {"wav": ("WAV", "PCM_24"), "flac": ("FLAC", "PCM_24")}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "render", help="render a project to an audio file (and stems)",
        description="Render a project JSON to WAV or FLAC, faster than real time.")
    p.add_argument("project", metavar="PROJECT.json")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the mix")
    p.add_argument("--format", choices=sorted(FORMATS),
                   help="file format (default: from the output's suffix, else wav)")
    p.add_argument("--stems", metavar="DIR", help="also write one file per track here")
    p.add_argument("--seconds", type=float, help="render this long (default: to the end)")
    p.add_argument("--tail", type=float, default=2.0,
                   help="seconds after the last clip or note (default 2)")
    p.add_argument("--block", type=int, default=128, help="frames per block (default 128)")


def project_end_seconds(project: Project) -> float:
    """Where the last clip or MIDI clip ends, in seconds."""
    from engine.tempo import TempoMap

    tmap = TempoMap(project.tempo, project.sample_rate, project.time_signature)
    end = 0.0
    for t in project.tracks:
        for c in t.clips:
            end = max(end, tmap.seconds(c.start + c.length))
        for m in t.midi:
            end = max(end, tmap.seconds(m.start + m.length))
    return end


def _stem_name(index: int, name: str, tid: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name or tid).strip("_") or tid
    return f"{index + 1:02d}-{safe}"


def run(args: argparse.Namespace) -> int:
    # the engine (numba kernels) loads only when a render is asked for
    import soundfile as sf

    from engine.assets import AssetCache
    from engine.engine import Engine
    from engine.project import ProjectError, read_project

    if args.block < 1 or args.block > 8192:
        console.print("[red]--block must be 1..8192[/]")
        return 2
    try:
        project, problems = read_project(args.project)
    except ProjectError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    for p in problems:
        console.print(f"[yellow]warning:[/] {p}")
    out = Path(args.output)
    fmt = args.format or (out.suffix.lstrip(".").lower() if out.suffix.lower() in (
        ".wav", ".flac") else "wav")
    sr = project.sample_rate

    data: dict[str, Any] = {}
    with AssetCache(sr) as cache:
        assets = {aid: cache.request(path) for aid, path in project.assets.items()}
        for aid, asset in assets.items():
            asset.wait(None)
            if asset.error:
                console.print(f"[yellow]warning:[/] asset {aid!r}: {asset.error}; "
                              "its clips play as silence")
                continue
            if asset.warning:
                console.print(f"[yellow]warning:[/] asset {aid!r}: {asset.warning}")
            data[aid] = asset.data

    seconds = args.seconds if args.seconds is not None else (
        project_end_seconds(project) + max(args.tail, 0.0))
    frames = max(round(seconds * sr), 1)
    stems = args.stems is not None
    engine = Engine(project, clip_data=data, max_block=args.block, stems=stems)
    engine.configure_meters(args.block)
    engine.play()
    mix = np.zeros((frames, 2), dtype=np.float32)
    stem_audio = [np.zeros((frames, 2), dtype=np.float32) for _ in project.tracks] \
        if stems else []
    start = time.perf_counter()
    columns = (TextColumn("[bold]rendering[/]"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("render", total=frames)
        done = 0
        while done < frames:
            n = min(args.block, frames - done)
            mix[done:done + n] = engine.render(n)
            for k, dst in enumerate(stem_audio):
                dst[done:done + n] = engine.stem(k, n)
            done += n
            if done % (args.block * 64) < args.block or done == frames:
                bar.update(task, completed=done)
    elapsed = time.perf_counter() - start
    container, subtype = FORMATS[fmt]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, mix, sr, format=container, subtype=subtype)
        if stems:
            folder = Path(args.stems)
            folder.mkdir(parents=True, exist_ok=True)
            for k, (t, audio) in enumerate(zip(project.tracks, stem_audio, strict=True)):
                sf.write(folder / f"{_stem_name(k, t.name, t.id)}.{fmt}", audio, sr,
                         format=container, subtype=subtype)
    except (OSError, sf.LibsndfileError) as exc:
        console.print(f"[red]cannot write: {exc}[/]")
        return 1
    stats = engine.stats
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    console.print(f"wrote {out} ({frames / sr:.1f} s, peak {20 * np.log10(max(peak, 1e-10)):.1f}"
                  f" dBFS) in {elapsed:.1f} s ({frames / sr / max(elapsed, 1e-9):.0f}x real "
                  f"time)" + (f"; {len(project.tracks)} stems in {args.stems}" if stems else ""))
    if stats["late_frames"]:
        console.print(f"[yellow]warning:[/] {stats['late_frames']:.0f} frames of missing audio "
                      "played as silence")
    return 0
