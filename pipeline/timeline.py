"""Place chapters on the book's timeline from their measured lengths."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.records import ChapterAudio, ChapterMark, ChapterTiming

logger = logging.getLogger(__name__)


def chapter_timing(chapter: ChapterAudio) -> ChapterTiming:
    """Strip a chapter's audio bytes, keeping what the timeline needs."""
    return ChapterTiming(
        index=chapter.index,
        title=chapter.title,
        samples=chapter.samples,
        sample_rate=chapter.sample_rate,
        sentence_count=len(chapter.sentences),
        speech_samples=sum(sentence.length for sentence in chapter.sentences),
        padding=chapter.padding,
        reused=chapter.reused,
        sentences=chapter.sentences,
    )


def build_timeline(timings: Sequence[ChapterTiming]) -> tuple[ChapterMark, ...]:
    """Lay chapters end to end in index order and return one marker per chapter.

    Raises
    ------
    ValueError
        When chapters disagree on the sample rate, since one timeline needs one rate.
    """
    ordered = sorted(timings, key=lambda timing: timing.index)
    rates = {timing.sample_rate for timing in ordered}
    if len(rates) > 1:
        raise ValueError(f"chapters have different sample rates {sorted(rates)}; use one voice per book")

    marks: list[ChapterMark] = []
    start = 0
    for timing in ordered:
        marks.append(
            ChapterMark(
                index=timing.index,
                title=timing.title,
                start=start,
                samples=timing.samples,
                sample_rate=timing.sample_rate,
                sentence_count=timing.sentence_count,
                speech_samples=timing.speech_samples,
                padding=timing.padding,
                reused=timing.reused,
                sentences=timing.sentences,
            )
        )
        start += timing.samples
    return tuple(marks)
