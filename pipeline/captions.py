"""Caption sidecars (SRT and WebVTT) with one cue per sentence, timed from exact sample positions."""

from __future__ import annotations

import html
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.records import ChapterMark

logger = logging.getLogger(__name__)

CAPTION_KINDS = ("srt", "vtt")
"""Values of ``--captions``, which are also the sidecar suffixes."""


@dataclass(frozen=True)
class Cue:
    """One caption: a sentence and when it is spoken."""

    start_ms: int
    """Start in milliseconds from the start of the audio file."""

    end_ms: int
    """End of the sentence's speech in milliseconds from the start of the audio file."""

    text: str
    """The sentence as the book prints it, on one line."""


def _milliseconds(samples: int, sample_rate: int) -> int:
    return (samples * 1000 + sample_rate // 2) // sample_rate


def sentence_cues(
    marks: Sequence[ChapterMark],
    texts: Mapping[tuple[int, int], str],
    origin: int = 0,
) -> list[Cue]:
    """Return one cue per sentence of ``marks``, in order.

    Parameters
    ----------
    marks
        Chapter markers with their sentence timings.
    texts
        Printed text of each sentence by ``(chapter index, sentence index)``.
    origin
        Sample position that becomes time zero: 0 for the whole book, a chapter's
        ``start`` for that chapter's own file.
    """
    cues = []
    for mark in marks:
        for timing in mark.sentences:
            start = mark.start + timing.start - origin
            cues.append(
                Cue(
                    start_ms=_milliseconds(start, mark.sample_rate),
                    end_ms=_milliseconds(start + timing.length, mark.sample_rate),
                    text=" ".join(texts.get((mark.index, timing.index), "").split()),
                )
            )
    return cues


def format_timestamp(milliseconds: int, decimal_separator: str) -> str:
    """Format ``HH:MM:SS,mmm`` (SRT, with ``,``) or ``HH:MM:SS.mmm`` (WebVTT, with ``.``)."""
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_separator}{millis:03d}"


def render_srt(cues: Sequence[Cue]) -> str:
    """Write SubRip captions: a counter, the times and the text, with a blank line after each cue."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        times = f"{format_timestamp(cue.start_ms, ',')} --> {format_timestamp(cue.end_ms, ',')}"
        blocks.append(f"{number}\n{times}\n{cue.text}\n")
    return "\n".join(blocks)


def render_vtt(cues: Sequence[Cue]) -> str:
    """Write WebVTT captions; ``&``, ``<`` and ``>`` in the text are escaped as the format requires."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        times = f"{format_timestamp(cue.start_ms, '.')} --> {format_timestamp(cue.end_ms, '.')}"
        blocks.append(f"{times}\n{html.escape(cue.text, quote=False)}\n")
    return "\n".join(blocks)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_captions(path: Path, cues: Sequence[Cue], kind: str) -> None:
    """Write ``cues`` to ``path`` as ``kind`` (``srt`` or ``vtt``) in UTF-8, atomically."""
    if kind not in CAPTION_KINDS:
        raise ValueError(f"unknown caption format {kind!r}; use srt or vtt")
    text = render_srt(cues) if kind == "srt" else render_vtt(cues)

    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.chmod(partial, 0o666 & ~_umask())
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    logger.info("wrote %d %s captions to %s", len(cues), kind, path)
