"""Decoding an audio file to stereo float32 at a given sample rate, in bounded memory.

``decode_audio(path, sample_rate)`` reads the file with ``soundfile`` (libsndfile: WAV,
AIFF, FLAC, Ogg Vorbis/Opus, MP3 and the rest of what libsndfile reads), resamples it with
``soxr`` to ``sample_rate`` and returns a ``Decoded``. It blocks: engine/assets.py runs it
on worker threads (never on the audio thread); offline callers may call it directly.

What a decode holds
    ``data`` is float32, C-contiguous, shape ``(frames, 2)``, at ``sample_rate`` and
    read-only (so that one decode can be shared by every clip that plays the file). Mono files are
    duplicated to both channels; files with more than two channels keep the first two. The
    length is ``round(source_frames * sample_rate / source_rate)``; the resampler
    (``soxr`` at its very-high-quality setting, ``VHQ``) is delay-compensated, so sample n of
    the source lands at ``n * sample_rate / source_rate``. NaN and infinite samples (float
    files) become silence.

Bounded memory
    Files are read in blocks of ``BLOCK_FRAMES`` and each block is resampled as it arrives
    (``soxr.ResampleStream``) into one output array allocated for the length the header
    promises. So the peak memory of a decode is the output plus a block or two, whatever the
    length of the file. A header may lie: the allocation is only touched as audio arrives
    (so a header promising hours in a small damaged file costs what was decoded), the array
    shrinks to what was decoded, and a file longer than ``max_duration_s`` is refused.

Errors and damaged files (the policy)
    A file that cannot be decoded raises ``AssetError`` with a message that names the file
    and says what is wrong: not found, a directory, unreadable, empty, not audio (format
    not recognised), a header that cannot be read, truncated with no audio left, too long
    (and cancelled, if the ``cancel`` event is set during the decode). A well-formed file
    that holds no audio at all decodes to ``(0, 2)`` with a warning.

    A *truncated* or damaged file that still holds audio is decoded as far as it goes: the
    decode succeeds, ``data`` holds the audio that is there and ``warning`` names the file
    and says how much is missing. It is detected by the length the header promises
    (WAV/AIFF data chunk size, FLAC STREAMINFO, MP3 Xing/Info frame
    count) against what decodes, by a decoder error in the middle of the stream (e.g. FLAC
    "lost sync"; the frames decoded before it are kept), and for Ogg by a last page that is
    cut short or fails its CRC: libsndfile reads nothing at all from such a file, so the
    decoder is given the file up to its last intact page. A damaged file from which nothing
    can be decoded is an error.
"""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr  # type: ignore[import-untyped]

AudioArray = npt.NDArray[np.float32]
StrPath = str | os.PathLike[str]

BLOCK_FRAMES = 1 << 16
"""Frames read (and resampled) per step of a decode (of a stereo file; fewer for more
channels, so a block stays at about a megabyte)."""

MIN_SOURCE_RATE = 1000
MAX_SOURCE_RATE = 768000
"""Files at other rates are refused: a damaged header, not audio anyone recorded."""

RESAMPLE_QUALITY = "VHQ"
"""soxr's very-high-quality recipe (passband to 91% of Nyquist, 28-bit precision)."""

DEFAULT_MAX_DURATION_S = 4 * 3600.0
"""Files promising (or decoding to) more than this are refused."""

# Lossy decoders may decode a little less than the frame count their header states (encoder
# padding, estimated lengths); a shortfall within this is not reported as truncation.
_LOSSY_SLACK_FRAMES = 2 * 1152
_LOSSY_FORMATS = frozenset({"MP3"})
_OGG_MAX_PAGE = 27 + 255 + 255 * 255


class AssetError(ValueError):
    """A file that cannot be decoded. The message names the file and says why."""


@dataclass(frozen=True)
class Decoded:
    """The result of ``decode_audio``: stereo float32 at ``sample_rate``."""

    data: AudioArray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_format: str
    warning: str | None = None


def decode_audio(path: StrPath, sample_rate: int, *, cancel: threading.Event | None = None,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S) -> Decoded:
    """Decode ``path`` to read-only stereo float32 at ``sample_rate``, block by block.

    Raises ``AssetError`` with a message naming the file for anything that cannot be decoded
    (and if ``cancel`` is set during the decode). A truncated file that still holds audio is
    returned with ``warning`` set (see the module docstring). Blocking: never call it on the
    audio thread.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    name = os.fspath(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise AssetError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise AssetError(f"{name}: is a directory, not an audio file") from None
    except PermissionError:
        raise AssetError(f"{name}: cannot be read (permission denied)") from None
    except OSError as e:
        raise AssetError(f"{name}: cannot be read ({e.strerror or e})") from None
    with fh:
        try:
            return _decode_open_file(name, fh, sample_rate, cancel, max_duration_s)
        except OSError as e:
            raise AssetError(f"{name}: cannot be read ({e.strerror or e})") from None


def _decode_open_file(name: str, fh: BinaryIO, sample_rate: int, cancel: threading.Event | None,
                      max_duration_s: float) -> Decoded:
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise AssetError(f"{name}: empty file (0 bytes), not audio")
    head = fh.read(12)
    ogg_end = _ogg_complete_end(fh, size) if head.startswith(b"OggS") else size
    data_chunk = _iff_data_shortfall(fh, size, head)
    fh.seek(0)
    try:
        if ogg_end < size:
            snd = sf.SoundFile(_FileView(fh, ogg_end))
        else:
            # libsndfile reads the descriptor from its OS offset, which a buffered seek
            # may not have moved.
            os.lseek(fh.fileno(), 0, os.SEEK_SET)
            snd = sf.SoundFile(fh.fileno(), closefd=False)
    except sf.LibsndfileError as e:
        raise AssetError(_open_error_message(name, head, e.error_string)) from None
    except (sf.SoundFileError, RuntimeError, TypeError) as e:
        raise AssetError(f"{name}: cannot be decoded ({e})") from None

    with snd:
        src_rate, channels, declared, fmt = snd.samplerate, snd.channels, snd.frames, snd.format
        if not MIN_SOURCE_RATE <= src_rate <= MAX_SOURCE_RATE or channels <= 0:
            raise AssetError(f"{name}: damaged or unsupported {fmt} file: {channels} channels "
                             f"at {src_rate} Hz (rates from {MIN_SOURCE_RATE} to "
                             f"{MAX_SOURCE_RATE} Hz are decoded)")
        max_frames = int(max_duration_s * src_rate)
        if declared > max_frames:
            raise AssetError(f"{name}: too long: its header promises {declared / src_rate:.0f} s "
                             f"(the limit is {max_duration_s:.0f} s)")
        ratio = sample_rate / src_rate
        out = _Output(round(declared * ratio) + 64)
        stream = None
        if src_rate != sample_rate:
            stream = soxr.ResampleStream(src_rate, sample_rate, 2, dtype="float32",
                                         quality=RESAMPLE_QUALITY)
        block_frames = max(BLOCK_FRAMES * 2 // channels, 1024)  # many-channel files too
        block = np.empty((block_frames, channels), np.float32)
        stereo = np.empty((block_frames, 2), np.float32)
        got = 0
        read_error: str | None = None
        while True:
            if cancel is not None and cancel.is_set():
                raise AssetError(f"{name}: decoding cancelled")
            # NaN marks the rows the decoder did not write: soundfile raises on a decoder
            # error without saying how many frames of the block it decoded first.
            block.fill(np.nan)
            try:
                n = len(snd.read(dtype="float32", always_2d=True, out=block))
            except (sf.SoundFileError, RuntimeError) as e:
                error_string = getattr(e, "error_string", "")
                read_error = (error_string if isinstance(error_string, str) and error_string
                              else str(e)).strip().removeprefix("Error : ")
                n = _leading_written(block)
            if n == 0:
                break
            chunk = block[:n]
            got += n
            if got > max_frames:
                raise AssetError(f"{name}: too long: more than {max_duration_s:.0f} s of audio")
            st = stereo[:n]
            st[:, 0] = chunk[:, 0]
            st[:, 1] = chunk[:, 1 if channels > 1 else 0]
            if not np.isfinite(st).all():  # float files may hold NaN/inf: make them silence
                np.nan_to_num(st, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            out.append(st if stream is None else stream.resample_chunk(st))
            if read_error is not None:
                break
        if stream is not None:
            out.append(stream.resample_chunk(np.zeros((0, 2), np.float32), last=True))

    problem = _damage(fmt, got, declared, src_rate, read_error, data_chunk, size - ogg_end)
    if got == 0:
        if problem is not None:
            raise AssetError(f"{name}: {problem}; no audio could be decoded")
        problem = "the file holds no audio (0 frames)"
    elif problem is not None:
        problem += f"; decoded the {got / src_rate:.3f} s before the damage, the rest is missing"
    warning = None if problem is None else f"{name}: {problem}"
    data = out.finish(round(got * ratio))
    data.flags.writeable = False
    return Decoded(data, sample_rate, src_rate, channels, fmt, warning)


def _damage(fmt: str, got: int, declared: int, rate: int, read_error: str | None,
            data_chunk: tuple[int, int] | None, ogg_excess: int) -> str | None:
    """What is wrong with a file that opened, or None if it decoded in full."""
    if read_error is not None:
        return f"damaged or truncated {fmt} file: the decoder stopped ({read_error})"
    if data_chunk is not None:
        promised, present = data_chunk
        return (f"truncated {fmt} file: its header promises {promised} bytes of audio but only "
                f"{present} are there")
    if ogg_excess > 0:
        return (f"truncated or damaged Ogg file: it ends with {ogg_excess} bytes that are not "
                "a complete, intact page")
    if declared - got > (_LOSSY_SLACK_FRAMES if fmt in _LOSSY_FORMATS else 0):
        return f"truncated {fmt} file: its header promises {declared / rate:.3f} s of audio"
    return None


def _container(head: bytes) -> str | None:
    """The audio format a file's first bytes announce, if any."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] in (b"WAVE", b""):
        return "WAV"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC", b""):
        return "AIFF"
    if head.startswith(b"fLaC"):
        return "FLAC"
    if head.startswith(b"OggS"):
        return "Ogg"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] >= 0xE0):
        return "MP3"  # an ID3 tag, or an MPEG audio frame sync
    return None


def _open_error_message(name: str, head: bytes, libsndfile_error: str) -> str:
    reason = libsndfile_error.strip()
    container = _container(head)
    if container is not None or "malformed" in reason.lower():
        kind = f"{container} " if container else ""
        return (f"{name}: damaged or truncated {kind}file: its header cannot be read "
                f"(libsndfile: {reason})")
    if "not recognised" in reason.lower():
        return f"{name}: not audio, or not a format that can be decoded (libsndfile: {reason})"
    return f"{name}: cannot be decoded (libsndfile: {reason})"


def _leading_written(block: AudioArray) -> int:
    """How many leading rows of a NaN-filled block a failed read wrote."""
    unwritten = np.isnan(block[:, 0])
    return int(np.argmax(unwritten)) if unwritten.any() else len(block)


class _Output:
    """The decoded stereo frames, in one array sized from the header, grown if it lied."""

    def __init__(self, capacity: int) -> None:
        self._buf: AudioArray = np.empty((max(capacity, 1), 2), np.float32)
        self._n = 0

    def append(self, frames: AudioArray) -> None:
        m = len(frames)
        if m == 0:
            return
        if self._n + m > len(self._buf):
            grown = max(self._n + m, len(self._buf) * 3 // 2 + BLOCK_FRAMES)
            self._buf.resize((grown, 2), refcheck=False)
        self._buf[self._n:self._n + m] = frames
        self._n += m

    def finish(self, length: int) -> AudioArray:
        """The first ``length`` frames (zero-padded if the resampler fell a frame short)."""
        if length <= 0:
            return np.zeros((0, 2), np.float32)
        if length > len(self._buf):
            self._buf.resize((length, 2), refcheck=False)
        if length > self._n:
            self._buf[self._n:length] = 0.0
        if length != len(self._buf):
            self._buf.resize((length, 2), refcheck=False)
        buf, self._buf = self._buf, np.empty((0, 2), np.float32)
        return buf


def _iff_data_shortfall(fh: BinaryIO, size: int, head: bytes) -> tuple[int, int] | None:
    """For a WAV or AIFF file whose audio chunk runs past the end of the file: the bytes
    its header promises and the bytes present. ``None`` if intact or not WAV/AIFF.

    libsndfile quietly shortens such files to the frames present, so this is the only way
    to tell a truncated WAV from a short one.
    """
    if len(head) < 12:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        fmt, data_id = "<I", b"data"
    elif head[:4] == b"RIFX" and head[8:12] == b"WAVE":
        fmt, data_id = ">I", b"data"
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        fmt, data_id = ">I", b"SSND"
    else:
        return None  # RF64 and W64 keep 64-bit sizes elsewhere: not checked
    pos = 12
    for _ in range(4096):
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            return None
        (chunk_size,) = struct.unpack(fmt, header[4:])
        if header[:4] == data_id:
            present = size - (pos + 8)
            if chunk_size in (0, 0xFFFFFFFF) or chunk_size <= present:
                return None  # intact, or written by a recorder that never finalised it
            return chunk_size, present
        pos += 8 + chunk_size + (chunk_size & 1)
        if pos >= size:
            return None
    return None


def _ogg_crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_OGG_CRC_TABLE = _ogg_crc_table()


def _ogg_page_intact(page: bytes) -> bool:
    """Whether a complete Ogg page's CRC (bytes 22-25, computed with them zeroed) holds."""
    stored = int.from_bytes(page[22:26], "little")
    crc = 0
    table = _OGG_CRC_TABLE
    for byte in b"".join((page[:22], bytes(4), page[26:])):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc == stored


def _ogg_complete_end(fh: BinaryIO, size: int) -> int:
    """Where the last complete, intact Ogg page ends: ``size`` for an intact file, less if
    the file was cut inside a page, its last page is corrupt, or bytes follow it.

    libsndfile finds an Ogg file's length from its last page and reads nothing at all when
    that page is damaged, so the decoder is given the file up to this point.
    """
    start = max(0, size - 2 * _OGG_MAX_PAGE)
    fh.seek(start)
    tail = fh.read(size - start)
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        header_end = pos + 27
        if header_end <= len(tail) and tail[pos + 4] == 0:
            segments = tail[pos + 26]
            if header_end + segments <= len(tail):
                page_end = header_end + segments + sum(tail[header_end:header_end + segments])
                if page_end <= len(tail) and _ogg_page_intact(tail[pos:page_end]):
                    return start + page_end
        pos = tail.rfind(b"OggS", 0, pos)
    return size  # no intact page in the tail: let libsndfile judge the file


class _FileView:
    """The first ``end`` bytes of an open file, for libsndfile's virtual I/O."""

    def __init__(self, fh: BinaryIO, end: int) -> None:
        self._fh = fh
        self._end = end
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        left = max(self._end - self._pos, 0)
        n = left if n < 0 else min(n, left)
        self._fh.seek(self._pos)
        data = self._fh.read(n)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos
