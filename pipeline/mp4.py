"""Read the length of an MP4 file's audio track from its box tables, without decoding it.

A 20-hour M4B contains about 1.5 million AAC frames. Decoding them all to count the samples
took about 68 s and held the whole book's PCM in memory. The check after writing therefore
reads the ``mdhd`` duration and the ``elst`` start of the audio track, and checks that every
top-level box ends inside the file.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import OutputCheckError

logger = logging.getLogger(__name__)

HEADER_BYTES = 8
"""Size of a box header: a 32-bit size and a 4-character type."""

MOOV_LIMIT_BYTES = 256 * 1024 * 1024
"""Largest ``moov`` box read into memory. A 20-hour AAC book needs about 6 MiB (an estimate: 4 bytes of sample size per frame)."""


@dataclass(frozen=True)
class TrackLength:
    """The playable length of an MP4 audio track, in samples at ``timescale``."""

    timescale: int
    """Media time units per second; ffmpeg writes the sample rate for audio."""

    samples: int
    """The track duration minus the decoder delay that the edit list skips."""


def _box_header(header: bytes, offset: int, end: int) -> tuple[bytes, int, int]:
    """Return a box's type, header length and total size from the bytes at its start.

    ``header`` holds up to 16 bytes from ``offset``; ``end`` is where the enclosing space
    ends, which a size of 0 extends the box to.
    """
    size, kind = struct.unpack_from(">I4s", header)
    header_size = HEADER_BYTES
    if size == 1 and len(header) >= 16:
        (size,) = struct.unpack_from(">Q", header, HEADER_BYTES)
        header_size = 16
    elif size == 0:
        size = end - offset
    return kind, header_size, size


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield the type, payload start and end of each box in ``data[start:end]``."""
    offset = start
    while offset + HEADER_BYTES <= end:
        kind, header_size, size = _box_header(data[offset : offset + 16], offset, end)
        if size < header_size or offset + size > end:
            raise ValueError(f"box {kind!r} at byte {offset} has an invalid size {size}")
        yield kind, offset + header_size, offset + size
        offset += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """Return the payload start and end of the first ``kind`` box in ``data[start:end]``."""
    for found, payload, box_end in _boxes(data, start, end):
        if found == kind:
            return payload, box_end
    return None


def _read_moov(path: Path) -> bytes:
    """Return the ``moov`` box of ``path``, after checking that no top-level box is cut short.

    Raises
    ------
    OutputCheckError
        When a box runs past the end of the file or the file has no ``moov`` box.
    """
    file_size = path.stat().st_size
    moov: bytes | None = None

    with path.open("rb") as stream:
        offset = 0
        while offset < file_size:
            stream.seek(offset)
            header = stream.read(16)
            if len(header) < HEADER_BYTES:
                raise OutputCheckError(f"{path}: {file_size - offset} stray bytes at the end; the file is cut short")

            kind, header_size, size = _box_header(header, offset, file_size)
            if size < header_size or offset + size > file_size:
                raise OutputCheckError(
                    f"{path}: box {kind.decode('latin-1')!r} at byte {offset} needs {size} bytes "
                    f"but the file ends after {file_size - offset}; the file is cut short"
                )

            if kind == b"moov":
                if size > MOOV_LIMIT_BYTES:
                    raise OutputCheckError(f"{path}: moov box of {size} bytes is larger than {MOOV_LIMIT_BYTES}")
                stream.seek(offset)
                moov = stream.read(size)
            offset += size

    if moov is None:
        raise OutputCheckError(f"{path}: no moov box; the file is not a finished MP4")
    return moov


def _audio_track_length(moov: bytes) -> TrackLength | None:
    """Return the length of the first track whose handler is ``soun``, if any."""
    header = 16 if struct.unpack_from(">I", moov)[0] == 1 else HEADER_BYTES

    for kind, payload, end in _boxes(moov, header, len(moov)):
        if kind != b"trak":
            continue
        media = _child(moov, payload, end, b"mdia")
        if media is None:
            continue
        handler = _child(moov, *media, b"hdlr")
        if handler is None or moov[handler[0] + 8 : handler[0] + 12] != b"soun":
            continue

        media_header = _child(moov, *media, b"mdhd")
        if media_header is None:
            return None
        version = moov[media_header[0]]
        if version == 1:
            timescale, duration = struct.unpack_from(">IQ", moov, media_header[0] + 20)
        else:
            timescale, duration = struct.unpack_from(">II", moov, media_header[0] + 12)

        return TrackLength(timescale=timescale, samples=duration - _skipped_at_start(moov, payload, end))
    return None


def _skipped_at_start(moov: bytes, track_start: int, track_end: int) -> int:
    """Return the media time where the track's first non-empty edit starts, 0 without edits."""
    edits = _child(moov, track_start, track_end, b"edts")
    if edits is None:
        return 0
    edit_list = _child(moov, *edits, b"elst")
    if edit_list is None:
        return 0

    version = moov[edit_list[0]]
    (count,) = struct.unpack_from(">I", moov, edit_list[0] + 4)
    entry_format, entry_size = (">Qq", 20) if version == 1 else (">Ii", 12)
    for index in range(count):
        _, media_time = struct.unpack_from(entry_format, moov, edit_list[0] + 8 + index * entry_size)
        if media_time >= 0:
            return media_time
    return 0


def audio_track_length(path: str) -> TrackLength:
    """Return the playable length of the audio track of the MP4 file at ``path``.

    Raises
    ------
    OutputCheckError
        When the file is cut short, has no ``moov`` box or no audio track, or its boxes are
        invalid.
    """
    moov = _read_moov(Path(path))
    try:
        length = _audio_track_length(moov)
    except (ValueError, struct.error) as err:
        raise OutputCheckError(f"{path}: invalid moov box ({err}); the written file is damaged") from err
    if length is None:
        raise OutputCheckError(f"{path}: no audio track in the moov box; the written file is invalid")

    logger.debug("%s: audio track of %d samples at %d per second", path, length.samples, length.timescale)
    return length
