"""Run one book's graph on a cluster, write chapters as they arrive, publish the book."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from distributed import Client, as_completed

from graphs.book_graph import BookGraph, compile_book_graph, submit_book_graph
import pipeline.ingest
from pipeline.publish import concatenate_chapters
from pipeline.records import Book, ChapterAudio, ChapterMark, Sentence, SynthesisSettings
from pipeline.speech import engine_class
from pipeline.text import split_chapter
from audiobook.progress import Progress

logger = logging.getLogger(__name__)


class OutputExistsError(FileExistsError):
    """The output file exists and ``--overwrite`` was not given."""


class RunFailedError(RuntimeError):
    """A task still failed after its retries; the message names the chapter and sentence."""


@dataclass(frozen=True)
class BuildRequest:
    """One book to convert and how."""

    input: Path
    """The e-book to read."""

    output: Path
    """The audiobook to write (.m4b)."""

    settings: SynthesisSettings
    """Voice and layout; ``language`` empty means the book's own language."""

    batch_size: int = 1
    """Sentences per synthesize task."""

    retries: int = 3
    """Times a failed task is retried before the run fails."""

    overwrite: bool = False
    """Replace an existing output file."""

    progress_interval: float = 10.0
    """Seconds between progress log lines when stderr is not a terminal."""

    speech_resources: dict[str, float] | None = None
    """Worker resources each synthesize task needs (``{"GPU": 1}`` for ``--gpu``)."""


@dataclass(frozen=True)
class BuildResult:
    """What a finished run produced, for the report."""

    book: Book
    """The parsed book."""

    settings: SynthesisSettings
    """The settings the run used, language resolved."""

    marks: tuple[ChapterMark, ...]
    """The chapter markers written into the output."""

    voice_id: str
    """Identity of the voice that spoke."""

    wall_time: float
    """Seconds from reading the book to the renamed output."""


def prepare_book(
    path: Path, settings: SynthesisSettings
) -> tuple[Book, SynthesisSettings, list[tuple[Sentence, ...]]]:
    """Read and split a book; return it, the settings with the language resolved, and its sentences.

    Chapters that split into no sentences are dropped, so no chapter makes empty audio.
    """
    book = pipeline.ingest.read_book(path)
    if not settings.language:
        settings = replace(settings, language=book.language or "en")

    max_chars = engine_class(settings.engine).max_chars
    chapters, sentences = [], []
    for chapter in book.chapters:
        chapter_sentences = split_chapter(chapter, settings.language, max_chars)
        if chapter_sentences:
            chapters.append(chapter)
            sentences.append(chapter_sentences)
        else:
            logger.warning("book %s: chapter c%03d %r has no sentences; skipped", book.title, chapter.index, chapter.title)
    return replace(book, chapters=tuple(chapters)), settings, sentences


def _write_chapter(chapter: ChapterAudio, work_dir: Path) -> Path:
    path = work_dir / f"chapter-{chapter.index:04d}{chapter.suffix}"
    partial = path.with_suffix(".partial")
    partial.write_bytes(chapter.encoded)
    partial.replace(path)
    return path


def _collect_chapters(
    client: Client, graph: BookGraph, book: Book, work_dir: Path, progress: Progress, retries: int
) -> tuple[dict[int, Path], tuple[ChapterMark, ...]]:
    """Compute the graph, writing each chapter to ``work_dir`` as soon as it arrives.

    The synthesize futures are held only to count progress and are released as each
    finishes; the chapter node keeps its inputs alive on the cluster until it has run.
    """
    futures = submit_book_graph(client, graph, retries)
    batch_sentences = {
        future.key: count for future, (_, count) in zip(futures.batches, graph.batches)
    }
    timeline_future = futures.timeline
    pending = as_completed([*futures.chapters, *futures.batches])
    del futures

    paths: dict[int, Path] = {}
    for future in pending:
        if future.status == "error":
            _raise_task_error(future, book)
        if future.key in batch_sentences:
            progress.sentences_finished(batch_sentences[future.key])
            future.release()
            continue

        chapter: ChapterAudio = future.result()
        paths[chapter.index] = _write_chapter(chapter, work_dir)
        progress.chapter_finished()
        logger.info(
            "book %s: chapter c%03d %r written (%.1f s)",
            book.title, chapter.index, chapter.title, chapter.duration,
        )
        future.release()
        del chapter

    return paths, timeline_future.result()


def _raise_task_error(future, book: Book) -> None:  # noqa: ANN001
    """Raise RunFailedError naming the chapter (index and title) of a failed task."""
    error = future.exception()
    key = str(future.key)
    chapter_index = int(key.split("-")[1][1:])
    title = next((chapter.title for chapter in book.chapters if chapter.index == chapter_index), "")
    logger.error("book %s: task %s failed after its retries: %s", book.title, key, error)
    raise RunFailedError(
        f"book {book.title!r}, chapter {chapter_index} {title!r}: {error}"
    ) from error


def build_audiobook(request: BuildRequest, client: Client) -> BuildResult:
    """Convert ``request.input`` to ``request.output`` on ``client``'s cluster.

    Raises
    ------
    InvalidBookError
        When the book cannot be read.
    OutputExistsError
        When the output exists and ``overwrite`` is False.
    """
    started = time.monotonic()
    if request.output.exists() and not request.overwrite:
        raise OutputExistsError(f"{request.output} already exists; pass --overwrite to replace it")

    book, settings, sentences = prepare_book(request.input, request.settings)
    graph = compile_book_graph(
        book, sentences, settings, request.batch_size, request.speech_resources
    )
    progress = Progress(book.title, sum(map(len, sentences)), len(book.chapters), request.progress_interval)
    work_dir = Path(tempfile.mkdtemp(prefix=f".audiobook-{graph.token}-", dir=request.output.parent))

    try:
        paths, marks = _collect_chapters(client, graph, book, work_dir, progress, request.retries)
        progress.close()
        voice_id = client.submit(_voice_id, settings, pure=False).result()
        ordered = [paths[mark.index] for mark in marks]
        concatenate_chapters(ordered, book, marks, voice_id, request.output, work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    wall_time = time.monotonic() - started
    logger.info("book %s: finished in %.1f s", book.title, wall_time)
    return BuildResult(book, settings, marks, voice_id, wall_time)


def _voice_id(settings: SynthesisSettings) -> str:
    from pipeline.speech import load_engine

    return load_engine(settings).voice_id
