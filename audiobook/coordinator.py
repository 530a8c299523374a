"""Run one book's graph on a cluster, write chapters as they arrive, publish the book."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from distributed import Client, as_completed

from graphs.book_graph import BookGraph, compile_book_graph, graph_token, submit_book_graph
import pipeline.ingest
from pipeline.checkpoints import ChapterCheckpoints, chapter_fingerprint, default_work_root
from pipeline.normalize import load_lexicon, normalize_for_speech
from pipeline.loudness import GainPlan, load_gain_plan, save_gain_plan
from pipeline.records import (
    Book,
    CacheSettings,
    ChapterAudio,
    ChapterMark,
    ChapterTiming,
    Sentence,
    SynthesisSettings,
)
from pipeline.speech import engine_class
from pipeline.text import split_chapter
from pipeline.timeline import chapter_timing
from audiobook.outputs import MetadataOverrides, OutputRequest, apply_overrides, publish_outputs
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
    """The audiobook to write, or the folder of chapter files with ``split_chapters``."""

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

    lexicon: Path | None = None
    """Pronunciation lexicon file (see :func:`pipeline.normalize.load_lexicon`), or None."""

    cache: CacheSettings | None = None
    """The sentence cache, or None to synthesize every sentence."""

    work_root: Path = field(default_factory=default_work_root)
    """Folder holding each unfinished book's work folder of finished chapters."""

    fresh: bool = False
    """Ignore finished chapters of an earlier run (the sentence cache is set separately)."""

    progress_bar: bool = True
    """Draw a progress bar when stderr is a terminal; batch runs turn it off."""

    split_chapters: bool = False
    """Write one file per chapter and an M3U playlist into the folder ``output``."""

    captions: str = ""
    """Caption sidecar format, ``srt`` or ``vtt``; empty for none."""

    metadata: MetadataOverrides = MetadataOverrides()
    """Book metadata from the command line, replacing the book's own."""


@dataclass(frozen=True)
class BuildResult:
    """The outcome of a finished run, for the report."""

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

    gain: GainPlan | None = None
    """The loudness gain plan the chapters were encoded with."""

    written: tuple[Path, ...] = ()
    """Every file the run wrote: the audiobook or chapter files, and caption sidecars."""


def prepare_book(
    path: Path, settings: SynthesisSettings, lexicon: Path | None = None
) -> tuple[Book, SynthesisSettings, list[tuple[Sentence, ...]]]:
    """Read and split a book; return it, the settings with the language resolved, and its sentences.

    Each sentence whose spoken form differs from its printed text (numbers as words,
    abbreviations expanded, ``lexicon`` applied) gets that form in ``spoken``. Chapters
    that split into no sentences are dropped, so no chapter makes empty audio.

    Raises
    ------
    InvalidBookError
        When the book cannot be read.
    LexiconError
        When ``lexicon`` is missing or has an invalid line.
    """
    speech_lexicon = load_lexicon(lexicon) if lexicon else None
    book = pipeline.ingest.read_book(path)
    if not settings.language:
        settings = replace(settings, language=book.language or "en")

    # NOTE: max_chars bounds the printed text. A spoken form full of numbers can be longer.
    max_chars = engine_class(settings.engine).max_chars
    chapters, sentences = [], []
    for chapter in book.chapters:
        spoken_sentences = []
        for sentence in split_chapter(chapter, settings.language, max_chars):
            spoken = normalize_for_speech(sentence.text, settings.language, speech_lexicon)
            if spoken and spoken != sentence.text:
                sentence = replace(sentence, spoken=spoken)
            spoken_sentences.append(sentence)

        chapter_sentences = tuple(spoken_sentences)
        if chapter_sentences:
            chapters.append(chapter)
            sentences.append(chapter_sentences)
        else:
            logger.warning("book %s: chapter c%03d %r has no sentences; skipped", book.title, chapter.index, chapter.title)
    return replace(book, chapters=tuple(chapters)), settings, sentences


def _collect_chapters(
    client: Client,
    graph: BookGraph,
    book: Book,
    checkpoints: ChapterCheckpoints,
    fingerprints: dict[int, str],
    progress: Progress,
    retries: int,
) -> tuple[dict[int, Path], tuple[ChapterMark, ...]]:
    """Compute the graph, keeping each chapter in the work folder as soon as it arrives.

    The synthesize futures are held only to count progress and are released as each
    finishes; the chapter node keeps its inputs alive on the cluster until it has run.
    Each chapter future is released once its file is written, so the coordinator holds
    at most the chapters that arrive together.
    """
    futures = submit_book_graph(client, graph, retries)
    batch_sentences = {
        future.key: count for future, (_, count) in zip(futures.batches, graph.batches)
    }
    timeline_future = futures.timeline
    gain_future = futures.gain
    pending = as_completed([*futures.chapters, *futures.batches])
    del futures

    paths: dict[int, Path] = {}
    failures: dict[int, str] = {}
    for future in pending:
        if future.status == "error":
            _record_failure(future, book, failures)
            continue
        if future.key in batch_sentences:
            progress.sentences_finished(batch_sentences[future.key])
            future.release()
            continue

        chapter: ChapterAudio = future.result()
        if gain_future is not None:
            # Kept before the first chapter, so a rerun encodes the rest with the same gain.
            save_gain_plan(gain_future.result(), checkpoints.folder)
            gain_future = None
        timing = chapter_timing(chapter)
        paths[chapter.index] = checkpoints.save(chapter, timing, fingerprints[chapter.index])
        progress.chapter_finished()
        logger.info(
            "book %s: chapter c%03d %r written (%.1f s, %d of %d sentences reused)",
            book.title, chapter.index, chapter.title, chapter.duration,
            chapter.reused, len(chapter.sentences),
        )
        future.release()
        del chapter

    if failures:
        raise RunFailedError("; ".join(failures[index] for index in sorted(failures)))
    return paths, timeline_future.result()


def _load_checkpoints(
    checkpoints: ChapterCheckpoints, fingerprints: dict[int, str], book: Book
) -> dict[int, tuple[ChapterTiming, Path]]:
    """Find the chapters an earlier run of the same book and settings finished."""
    kept = {}
    for index, fingerprint in fingerprints.items():
        loaded = checkpoints.load(index, fingerprint)
        if loaded is not None:
            timing, media = loaded
            kept[index] = (replace(timing, reused=timing.sentence_count), media)
    if kept:
        logger.info(
            "book %s: reusing %d finished chapter(s) from %s", book.title, len(kept), checkpoints.folder
        )
    return kept


def _record_failure(future, book: Book, failures: dict[int, str]) -> None:  # noqa: ANN001
    """Note the first failure of each chapter, naming the chapter's index and title.

    The run goes on, so that every chapter that can finish is kept for the next run.
    """
    error = future.exception()
    key = str(future.key)
    chapter_index = int(key.split("-")[1][1:])
    future.release()
    if chapter_index in failures:
        return

    title = next((chapter.title for chapter in book.chapters if chapter.index == chapter_index), "")
    logger.error("book %s: task %s failed after its retries: %s", book.title, key, error)
    failures[chapter_index] = f"book {book.title!r}, chapter {chapter_index} {title!r}: {error}"


def build_audiobook(request: BuildRequest, client: Client) -> BuildResult:
    """Convert ``request.input`` to ``request.output`` on ``client``'s cluster.

    Finished chapters are kept in a work folder named after the book's text and the
    audio settings, under ``request.work_root``. A rerun after a crash reuses them, and
    the folder is removed once the audiobook is written.

    Raises
    ------
    InvalidBookError
        When the book cannot be read.
    OutputExistsError
        When the output exists and ``overwrite`` is False.
    RunFailedError
        When a task still fails after its retries.
    """
    started = time.monotonic()
    if request.output.exists() and not request.overwrite:
        raise OutputExistsError(f"{request.output} already exists; pass --overwrite to replace it")

    book, settings, sentences = prepare_book(request.input, request.settings, request.lexicon)
    checkpoints = ChapterCheckpoints(request.work_root / graph_token(book, settings, sentences))
    if request.fresh:
        shutil.rmtree(checkpoints.folder, ignore_errors=True)
    fingerprints = {
        chapter.index: chapter_fingerprint(chapter.title, chapter_sentences)
        for chapter, chapter_sentences in zip(book.chapters, sentences)
    }
    kept = _load_checkpoints(checkpoints, fingerprints, book)
    kept_gain = load_gain_plan(checkpoints.folder) if kept else None
    if kept and kept_gain is None and settings.loudness_target is not None:
        logger.warning("book %s: finished chapters have no gain plan beside them; rebuilding them", book.title)
        kept = {}
    graph = compile_book_graph(
        book, sentences, settings, request.batch_size, request.speech_resources,
        cache=request.cache, finished={index: timing for index, (timing, _) in kept.items()},
        gain=kept_gain,
    )
    progress = Progress(
        book.title, sum(map(len, sentences)), len(book.chapters), request.progress_interval,
        bar=request.progress_bar,
    )
    progress.sentences_finished(sum(timing.sentence_count for timing, _ in kept.values()))
    for _ in kept:
        progress.chapter_finished()

    try:
        paths, marks = _collect_chapters(
            client, graph, book, checkpoints, fingerprints, progress, request.retries
        )
        progress.close()
        paths.update({index: media for index, (_, media) in kept.items()})
        voice_id = client.submit(_voice_id, settings, pure=False).result()
        gain = load_gain_plan(checkpoints.folder)
        book = apply_overrides(book, request.metadata)
        outputs = OutputRequest(request.output, request.split_chapters, request.captions, request.metadata)
        written = publish_outputs(
            paths, book, marks, sentences, request.metadata.narrator or voice_id, settings,
            outputs, checkpoints.folder,
        )
    except BaseException:
        progress.close()
        logger.warning(
            "book %s: the run stopped; finished chapters stay in %s for the next run",
            book.title, checkpoints.folder,
        )
        raise

    shutil.rmtree(checkpoints.folder, ignore_errors=True)
    wall_time = time.monotonic() - started
    logger.info("book %s: finished in %.1f s", book.title, wall_time)
    return BuildResult(book, settings, marks, voice_id, wall_time, gain, tuple(written))


def _voice_id(settings: SynthesisSettings) -> str:
    from pipeline.speech import load_engine

    return load_engine(settings).voice_id
