"""``retoone analyze FILES... [--json]``: tempo, beats, key and loudness of audio files.

Each file is decoded with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, AIFF, and MP3
where the library supports it) to float32 (frames, channels) at its own rate and handed
to ``dsp.analysis.analyze``. A file that cannot be read, or holds fewer frames than its
header announces (a truncated download), gets a per-file error and the others are still
analysed; the exit status is 1 if any file failed, else 0.

Without ``--json`` a table is printed (and a progress bar runs on stderr); with it, a
JSON array with one object per file, in the order given::

    {"file": "a.flac", "duration_s": 212.4, "bpm": 124.0, "bpm_confidence": 0.81,
     "beats": [0.113, 0.597, ...], "downbeats": [0.113, 2.048, ...],
     "key": "A minor", "camelot": "8A", "lufs": -8.9}

or ``{"file": "b.wav", "error": "truncated: ..."}``. Loudness of silence (-inf LUFS) is
``null``. Times are in seconds, rounded to the millisecond.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from dsp.analysis import Analysis

F32 = npt.NDArray[np.float32]

# Formats whose headers state the exact frame count (MP3's is an estimate).
EXACT_LENGTH = {"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC", "CAF", "AU", "OGG"}


class DecodeError(Exception):
    """A file that cannot be turned into audio samples."""


def add_parser(subparsers: Any) -> None:
    """Register ``analyze`` on the ``retoone`` sub-command parser."""
    p = subparsers.add_parser(
        "analyze", help="analyse audio files: BPM, beats, downbeats, key, loudness",
        description="Analyse audio files (WAV, FLAC, OGG, AIFF; MP3 when libsndfile "
                    "supports it): tempo, beat grid, downbeats, key, Camelot code, LUFS.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files to analyse")
    p.add_argument("--json", action="store_true",
                   help="print a JSON array (one object per file) instead of a table")


def decode(path: str) -> tuple[F32, float]:
    """float32 (frames, channels) samples and the sample rate of an audio file."""
    if not Path(path).exists():
        raise DecodeError("no such file")
    if Path(path).is_dir():
        raise DecodeError("is a directory, not an audio file")
    try:
        with sf.SoundFile(path) as f:
            expected = int(f.frames)
            fmt = str(f.format)
            rate = float(f.samplerate)
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, EOFError) as exc:
        raise DecodeError(_describe(exc)) from exc
    frames = int(data.shape[0])
    if fmt in EXACT_LENGTH and 0 < frames < expected:
        raise DecodeError(f"truncated: the header announces {expected} frames "
                          f"({expected / rate:.2f} s), only {frames} could be read")
    cut = truncation(path)
    if cut:
        raise DecodeError(f"truncated: {cut}")
    if frames == 0:
        raise DecodeError("no audio frames in the file")
    return np.ascontiguousarray(data), rate


def truncation(path: str) -> str | None:
    """Why the file looks cut short, or None. libsndfile quietly reads what there is of
    a WAV or AIFF whose data chunk runs past the end of the file, and of an Ogg stream
    that stops without its end-of-stream page, so those are checked here."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = f.seek(0, 2)
            if head[:4] in (b"RIFF", b"RIFX", b"FORM"):
                return _chunk_truncation(f, head, size)
            if head[:4] == b"OggS":
                f.seek(max(0, size - 65536))
                tail = f.read()
                last = tail.rfind(b"OggS")
                if last < 0 or last + 6 > len(tail) or not tail[last + 5] & 0x04:
                    return "the Ogg stream ends without its end-of-stream page"
    except OSError:
        return None
    return None


def _chunk_truncation(f: Any, head: bytes, size: int) -> str | None:
    big = head[:4] in (b"RIFX", b"FORM")  # RIFX and AIFF are big-endian
    data_id = b"SSND" if head[:4] == b"FORM" else b"data"
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        header = f.read(8)
        length = int.from_bytes(header[4:8], "big" if big else "little")
        if header[:4] == data_id:
            available = size - pos - 8
            if length != 0xFFFFFFFF and available < length:
                return (f"the audio data chunk announces {length} bytes, "
                        f"the file holds {available}")
            return None
        pos += 8 + length + (length & 1)
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, IsADirectoryError):
        return f"is a directory: {exc.filename}"
    return f"unreadable: {text}"


def _seconds(values: npt.NDArray[np.float64]) -> list[float]:
    return [round(float(v), 3) for v in values]


def to_json(path: str, a: Analysis) -> dict[str, Any]:
    return {
        "file": path,
        "duration_s": round(a.duration_s, 3),
        "bpm": round(a.bpm, 3),
        "bpm_confidence": round(a.bpm_confidence, 3),
        "beats": _seconds(a.beats),
        "downbeats": _seconds(a.downbeats),
        "key": a.key,
        "camelot": a.camelot,
        "lufs": round(a.lufs, 2) if math.isfinite(a.lufs) else None,
    }


def analyse_file(path: str) -> dict[str, Any]:
    """The JSON object for one file: its analysis, or its error."""
    try:
        audio, rate = decode(path)
        # Imported here: dsp compiles kernels on import, which other commands should not pay for.
        from dsp.analysis import analyze

        return to_json(path, analyze(audio, rate))
    except DecodeError as exc:
        return {"file": path, "error": str(exc)}
    except (ValueError, MemoryError) as exc:  # e.g. an unsupported sample rate
        return {"file": path, "error": f"cannot analyse: {exc}"}


def _table(results: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("File", overflow="fold", min_width=12)
    for name in ("Length", "BPM", "Conf."):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("Key", no_wrap=True)
    table.add_column("Cam.", no_wrap=True)
    for name in ("LUFS", "Beats", "Bar 1"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in results:
        name = Path(r["file"]).name
        if "error" in r:
            table.add_row(f"[red]{name}[/]", "[red]failed[/]", *[""] * 7)
            continue
        minutes, secs = divmod(r["duration_s"], 60.0)
        lufs = "-inf" if r["lufs"] is None else f"{r['lufs']:.1f}"
        first = f"{r['downbeats'][0]:.2f}" if r["downbeats"] else "-"
        table.add_row(name, f"{int(minutes)}:{secs:04.1f}", f"{r['bpm']:.2f}",
                      f"{r['bpm_confidence']:.2f}", r["key"] or "-", r["camelot"] or "-",
                      lufs, str(len(r["beats"])), first)
    return table


def run(args: argparse.Namespace) -> int:
    """Analyse ``args.files``; print a table or JSON; 1 if any file failed, else 0."""
    files: list[str] = list(args.files)
    results: list[dict[str, Any]] = []
    if args.json:
        results = [analyse_file(path) for path in files]
        # one file per line: readable, and still one JSON array
        sys.stdout.write("[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n")
    else:
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        with progress:
            task = progress.add_task("analysing", total=len(files))
            for path in files:
                progress.update(task, description=f"analysing {Path(path).name}")
                results.append(analyse_file(path))
                progress.advance(task)
        Console().print(_table(results))
    failed = [r for r in results if "error" in r]
    if failed:
        err = Console(stderr=True)
        for r in failed:
            err.print(f"[red]{r['file']}:[/] {r['error']}", highlight=False)
        err.print(f"[red]{len(failed)} of {len(files)} file(s) failed[/]")
    return 1 if failed else 0
