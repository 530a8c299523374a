"""Compile a parsed book into a dask.delayed graph: sentences, chapters, book."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import dask
from dask.delayed import Delayed
from distributed import Client, Future

from graphs.tasks import assemble_chapter, synthesize_sentences
from pipeline.records import Book, Sentence, SynthesisSettings
from pipeline.timeline import build_timeline, chapter_timing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BookGraph:
    """The delayed nodes of one book; only the coordinator holds this."""

    token: str
    """Eight hex digits that make the keys unique to this book and these settings."""

    chapters: tuple[Delayed, ...]
    """One node per chapter, in chapter order; each computes a ChapterAudio."""

    batches: tuple[tuple[Delayed, int], ...]
    """Every synthesize node with the number of sentences it speaks, for progress."""

    timeline: Delayed
    """The book node; it computes the tuple of ChapterMark from the chapter timings only."""

    speech_resources: dict[str, float] | None = None
    """Worker resources every synthesize node needs, or None."""


def graph_token(book: Book, settings: SynthesisSettings) -> str:
    """Hash the book's text and the settings into a short key suffix."""
    digest = hashlib.sha256(repr(settings).encode())
    digest.update(book.path.encode())
    for chapter in book.chapters:
        digest.update(chapter.title.encode())
        digest.update(chapter.text.encode())
    return digest.hexdigest()[:8]


def sentence_key(chapter_index: int, sentence_index: int, token: str) -> str:
    """Key of the synthesize node whose batch starts at this sentence."""
    return f"synthesize-c{chapter_index:03d}-s{sentence_index:04d}-{token}"


def chapter_key(chapter_index: int, token: str) -> str:
    """Key of a chapter node."""
    return f"chapter-c{chapter_index:03d}-{token}"


def compile_book_graph(
    book: Book,
    sentences: Sequence[Sequence[Sentence]],
    settings: SynthesisSettings,
    batch_size: int = 1,
    speech_resources: dict[str, float] | None = None,
) -> BookGraph:
    """Build the graph for ``book``.

    Parameters
    ----------
    book
        The parsed book.
    sentences
        For each chapter of ``book``, in the same order, its sentences.
    settings
        Voice and layout settings, shipped to every node.
    batch_size
        Sentences per synthesize node; 1 gives one node per sentence.
    speech_resources
        Worker resources each synthesize node needs, such as ``{"GPU": 1}``, matching
        ``dask worker --resources GPU=1``; ``submit_book_graph`` applies them. Chapter
        and book nodes need none.

    Returns
    -------
    BookGraph
        One synthesize node per batch, one chapter node per chapter, one timing node
        per chapter and one book node that depends on the timings only, so chapter
        audio never travels to the book node.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    if len(sentences) != len(book.chapters):
        raise ValueError(f"{len(book.chapters)} chapters but {len(sentences)} sentence lists")

    token = graph_token(book, settings)
    chapter_nodes = []
    timing_nodes = []
    batch_nodes = []

    for chapter, chapter_sentences in zip(book.chapters, sentences):
        batches = [
            dask.delayed(synthesize_sentences, pure=True)(
                tuple(chapter_sentences[start : start + batch_size]),
                settings,
                dask_key_name=sentence_key(chapter.index, chapter_sentences[start].index, token),
            )
            for start in range(0, len(chapter_sentences), batch_size)
        ]
        batch_nodes += [
            (node, len(chapter_sentences[start : start + batch_size]))
            for node, start in zip(batches, range(0, len(chapter_sentences), batch_size))
        ]
        chapter_node = dask.delayed(assemble_chapter, pure=True)(
            chapter.index, chapter.title, tuple(chapter_sentences), batches, settings,
            dask_key_name=chapter_key(chapter.index, token),
        )
        chapter_nodes.append(chapter_node)
        timing_nodes.append(
            dask.delayed(chapter_timing, pure=True)(
                chapter_node, dask_key_name=f"timing-c{chapter.index:03d}-{token}"
            )
        )

    timeline = dask.delayed(build_timeline, pure=True)(
        timing_nodes, dask_key_name=f"book-{token}"
    )
    logger.info(
        "book %s: graph %s with %d chapters and %d sentences, batch size %d",
        book.title, token, len(chapter_nodes), sum(map(len, sentences)), batch_size,
    )
    return BookGraph(
        token=token,
        chapters=tuple(chapter_nodes),
        batches=tuple(batch_nodes),
        timeline=timeline,
        speech_resources=speech_resources,
    )


@dataclass
class BookFutures:
    """The futures of a submitted book graph."""

    chapters: list[Future]
    """One per chapter, in chapter order."""

    batches: list[Future]
    """One per synthesize node, in the order of ``BookGraph.batches``."""

    timeline: Future
    """The book node's future."""


def submit_book_graph(client: Client, graph: BookGraph, retries: int) -> BookFutures:
    """Send the graph to the scheduler and return its futures.

    The synthesize nodes go first, in their own submission, because resource
    restrictions apply to a whole submission: this way only speech tasks wait for a
    worker with ``speech_resources``, and chapter encoding runs on any worker. The
    second submission names the same synthesize keys, and the scheduler keeps the
    tasks it already has.
    """
    batches = client.compute(
        [node for node, _ in graph.batches], retries=retries, resources=graph.speech_resources
    )
    *chapters, timeline = client.compute([*graph.chapters, graph.timeline], retries=retries)
    return BookFutures(chapters=chapters, batches=batches, timeline=timeline)
