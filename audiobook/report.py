"""The JSON run report and the ``inspect`` summary."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from audiobook.coordinator import BuildResult
from pipeline.records import Book, Sentence

logger = logging.getLogger(__name__)

WORDS_PER_MINUTE = 160
"""Speaking rate used to estimate audio length before synthesis (typical narration)."""


def build_report(result: BuildResult, input_path: Path, output_path: Path) -> dict[str, Any]:
    """Describe a finished run: input, output, voice, chapters with start and duration in seconds."""
    marks = result.marks
    rate = marks[0].sample_rate if marks else 0
    total_samples = sum(mark.samples for mark in marks)
    return {
        "input": str(input_path),
        "output": str(output_path),
        "title": result.book.title,
        "authors": list(result.book.authors),
        "language": result.settings.language,
        "engine": result.settings.engine,
        "voice": result.voice_id,
        "format": result.settings.output_format,
        "files": [str(path) for path in result.written],
        "sample_rate": rate,
        "loudness": _loudness_report(result),
        "silence": {
            "sentence": result.settings.sentence_silence,
            "paragraph": result.settings.paragraph_silence,
            "chapter": result.settings.chapter_silence,
        },
        "chapters": [
            {
                "index": mark.index,
                "title": mark.title,
                "sentences": mark.sentence_count,
                "start": round(mark.start_seconds, 6),
                "duration": round(mark.duration, 6),
                "start_samples": mark.start,
                "samples": mark.samples,
                "speech_samples": mark.speech_samples,
                "padding_samples": mark.padding,
                "sentences_reused": mark.reused,
            }
            for mark in marks
        ],
        "total_sentences": sum(mark.sentence_count for mark in marks),
        "sentences_reused": sum(mark.reused for mark in marks),
        "sentences_synthesized": sum(mark.sentence_count - mark.reused for mark in marks),
        "audio_duration": round(total_samples / rate, 6) if rate else 0.0,
        "audio_samples": total_samples,
        "wall_time": round(result.wall_time, 3),
    }


def _loudness_report(result: BuildResult) -> dict[str, Any] | None:
    """Describe the gain plan: levels in LUFS, gains in dB, true peak in dBTP; None without one."""
    plan = result.gain
    if plan is None:
        return None

    def number(value: float) -> float | None:
        return round(value, 2) if math.isfinite(value) else None

    return {
        "target": plan.target,
        "measured": number(plan.measured),
        "gain_db": number(plan.gain_db),
        "leveled_chapters": {str(index): number(offset) for index, offset in plan.offsets_db},
        "output": number(plan.output_loudness),
        "true_peak": number(plan.true_peak_db),
    }


def inspect_book(book: Book, sentences: list[tuple[Sentence, ...]]) -> dict[str, Any]:
    """Summarize a parsed book without synthesis; lengths are estimates from word counts."""
    chapters = []
    for chapter, chapter_sentences in zip(book.chapters, sentences):
        words = sum(len(sentence.text.split()) for sentence in chapter_sentences)
        chapters.append(
            {
                "index": chapter.index,
                "title": chapter.title,
                "sentence_count": len(chapter_sentences),
                "word_count": words,
                "estimated_seconds": round(words / WORDS_PER_MINUTE * 60, 1),
                "sentences": [
                    {"index": sentence.index, "text": sentence.text, "paragraph_end": sentence.paragraph_end}
                    # The spoken form is shown only where it differs from the printed text.
                    | ({"spoken": sentence.spoken} if sentence.spoken else {})
                    for sentence in chapter_sentences
                ],
            }
        )
    return {
        "input": book.path,
        "title": book.title,
        "authors": list(book.authors),
        "language": book.language,
        "has_cover": book.cover is not None,
        "chapters": chapters,
        "sentence_count": sum(chapter["sentence_count"] for chapter in chapters),
        "word_count": sum(chapter["word_count"] for chapter in chapters),
        "estimated_seconds": round(sum(chapter["estimated_seconds"] for chapter in chapters), 1),
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
    os.replace(partial, path)
