"""Finished chapters kept on the coordinator's disk, so a rerun skips them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.records import ChapterAudio, ChapterTiming, Sentence, SentenceTiming

logger = logging.getLogger(__name__)


def default_work_root() -> Path:
    """Return the folder that contains one work folder per unfinished book (in the user's cache folder)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("dask-audiobook")) / "work"


def chapter_fingerprint(title: str, sentences: Sequence[Sentence]) -> str:
    """Hash a chapter's title and spoken sentences with their paragraph ends."""
    digest = hashlib.sha256(title.encode("utf-8"))
    for sentence in sentences:
        digest.update(b"\x1e" + sentence.speech_text.encode("utf-8"))
        digest.update(b"P" if sentence.paragraph_end else b"S")
    return digest.hexdigest()[:16]


class ChapterCheckpoints:
    """The work folder of one book and one set of audio settings.

    Each finished chapter is two files: ``chapter-0003-FINGERPRINT.m4a`` with the audio
    and a ``.json`` with its timing. The JSON is written last, so a chapter counts as
    finished only when both are complete.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def media_path(self, index: int, fingerprint: str, suffix: str = ".m4a") -> Path:
        """Return the path of the kept audio of chapter ``index`` with ``fingerprint``."""
        return self.folder / f"chapter-{index:04d}-{fingerprint}{suffix}"

    def _timing_path(self, index: int, fingerprint: str) -> Path:
        return self.folder / f"chapter-{index:04d}-{fingerprint}.json"

    def load(self, index: int, fingerprint: str) -> tuple[ChapterTiming, Path] | None:
        """Return the kept timing and audio path of a finished chapter, or None."""
        timing_path = self._timing_path(index, fingerprint)
        try:
            fields = json.loads(timing_path.read_text(encoding="utf-8"))
            media = self.folder / fields.pop("media")
            sentences = tuple(SentenceTiming(**item) for item in fields.pop("sentences", ()))
            timing = ChapterTiming(**fields, sentences=sentences)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if not media.is_file():
            return None
        return timing, media

    def save(self, chapter: ChapterAudio, timing: ChapterTiming, fingerprint: str) -> Path:
        """Keep a finished chapter: audio first, then its timing, each renamed into place."""
        self.folder.mkdir(parents=True, exist_ok=True)
        media = self.media_path(chapter.index, fingerprint, chapter.suffix)
        _write_atomically(media, chapter.encoded)

        fields = dataclasses.asdict(timing) | {"media": media.name}
        _write_atomically(
            self._timing_path(chapter.index, fingerprint), json.dumps(fields).encode("utf-8")
        )
        return media


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)
