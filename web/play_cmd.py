"""``retoone play PROJECT.json [--audio-device N] [--seconds S]``: play a project live.

Without ``--audio-device`` the engine runs headless (the clock-paced runner a server uses:
no sound card needed) and the terminal shows the transport position, block times, xruns
and each track's meter; with it, the audio goes to that device through sounddevice
(``--list-devices`` shows them). Ctrl-C stops. Exit status: 0, 1 when the project or the
device cannot be opened.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

console = Console(stderr=True)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("play", help="play a project in real time (headless or a device)")
    p.add_argument("project", metavar="PROJECT.json", nargs="?")
    p.add_argument("--audio-device", help="output device (index or name); default: headless")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--seconds", type=float, help="stop after this long")
    p.add_argument("--block", type=int, default=128, help="frames per block (default 128)")


def _meter_table(engine: Any, runner: Any) -> Table:
    stats = runner.stats.summary()
    table = Table(title=f"{engine.position}  {'playing' if engine.playing else 'stopped'}   "
                        f"block p50 {stats['p50_ms']:.2f} ms, p99 {stats['p99_ms']:.2f} ms, "
                        f"xruns {stats['xruns']:.0f}, load {stats['load']:.0%}")
    table.add_column("strip")
    table.add_column("peak L / R (dBFS)", justify="right")
    table.add_column("RMS L / R (dBFS)", justify="right")
    for sid, m in engine.read_meters().items():
        pl, pr = m.peak_db
        rl, rr = m.rms_db
        table.add_row(sid, f"{pl:6.1f} / {pr:6.1f}", f"{rl:6.1f} / {rr:6.1f}")
    return table


def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        import sounddevice as sd

        console.print(str(sd.query_devices()))
        return 0
    if not args.project:
        console.print("[red]play: a PROJECT.json is needed[/]")
        return 2
    from engine.assets import AssetCache
    from engine.engine import Engine
    from engine.project import ProjectError, read_project
    from engine.runner import RealtimeRunner, SoundDeviceRunner

    try:
        project, problems = read_project(args.project)
    except ProjectError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    for p in problems:
        console.print(f"[yellow]warning:[/] {p}")
    engine = Engine(project, max_block=max(args.block, 1024))
    cache = AssetCache(project.sample_rate)
    for aid, path in project.assets.items():  # clips play as silence until they are decoded
        asset = cache.request(path)

        def ready(a: Any, aid: str = aid) -> None:
            if a.error:
                console.print(f"[yellow]warning:[/] asset {aid!r}: {a.error}")
            else:
                engine.set_clip_data(aid, a.data)

        asset.on_ready(ready)
    runner: Any
    if args.audio_device is not None:
        device: int | str = int(args.audio_device) if args.audio_device.isdigit() \
            else args.audio_device
        try:
            runner = SoundDeviceRunner(engine, device, args.block)
        except Exception as exc:  # PortAudio errors have no common base class
            console.print(f"[red]cannot open audio device {args.audio_device!r}: {exc}[/]")
            return 1
    else:
        runner = RealtimeRunner(engine, args.block)
    engine.play()
    runner.start()
    start = time.monotonic()
    try:
        with Live(_meter_table(engine, runner), console=console, refresh_per_second=4) as live:
            while args.seconds is None or time.monotonic() - start < args.seconds:
                time.sleep(0.25)
                live.update(_meter_table(engine, runner))
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()
        cache.close()
    stats = runner.stats.summary()
    console.print(f"played {time.monotonic() - start:.1f} s: {stats['blocks']:.0f} blocks, "
                  f"{stats['xruns']:.0f} xruns, p99 block {stats['p99_ms']:.2f} ms")
    return 0
