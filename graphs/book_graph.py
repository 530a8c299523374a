"""Compile a parsed book into a dask.delayed graph: sentences, layouts, gain, chapters, book."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dask
from dask.delayed import Delayed
from distributed import Client, Future

from graphs.tasks import (
    chapter_loudness,
    encode_chapter_task,
    lay_out_chapter_task,
    plan_book_gain,
    synthesize_sentences,
)
from pipeline.loudness import GainPlan
from pipeline.records import Book, CacheSettings, ChapterTiming, Sentence, SynthesisSettings
from pipeline.timeline import build_timeline, chapter_timing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BookGraph:
    """The delayed nodes of one book; only the coordinator keeps it."""

    token: str
    """Eight hex digits that make the keys unique to this book and these settings."""

    chapters: tuple[Delayed, ...]
    """One node per chapter still to build, in chapter order; each computes a ChapterAudio."""

    batches: tuple[tuple[Delayed, int], ...]
    """Every synthesize node with the number of sentences it speaks, for progress."""

    timeline: Delayed
    """The book node; it computes the tuple of ChapterMark from the chapter timings only."""

    speech_resources: dict[str, float] | None = None
    """Worker resources every synthesize node needs, or None."""

    gain: Delayed | None = None
    """The gain node, which computes the book's GainPlan; None when the plan was given."""


AUDIO_NEUTRAL_FIELDS = frozenset({"engine_threads", "use_cuda", "isolate"})
"""SynthesisSettings fields that change how fast audio is made, never the audio."""


def graph_token(
    book: Book,
    settings: SynthesisSettings,
    sentences: Sequence[Sequence[Sentence]] = (),
    output: str = "",
) -> str:
    """Hash the book's text and everything that shapes its audio into eight hex digits.

    That is the chapter titles and texts, the spoken form of each sentence (which a
    lexicon changes), the settings that shape the audio, and ``output``, a description
    of the output format. The path is not part of it, so a different book under the same
    file name gets a different token, and the same book moved elsewhere keeps its token.
    """
    audio_fields = {
        name: value for name, value in dataclasses.asdict(settings).items()
        if name not in AUDIO_NEUTRAL_FIELDS
    }
    digest = hashlib.sha256(repr(sorted(audio_fields.items())).encode())
    digest.update(output.encode())
    for chapter in book.chapters:
        digest.update(chapter.title.encode())
        digest.update(chapter.text.encode())
    for chapter_sentences in sentences:
        for sentence in chapter_sentences:
            digest.update(sentence.speech_text.encode() + (b"P" if sentence.paragraph_end else b"S"))
    return digest.hexdigest()[:8]


def sentence_key(chapter_index: int, sentence_index: int, token: str) -> str:
    """Key of the synthesize node whose batch starts at this sentence."""
    return f"synthesize-c{chapter_index:03d}-s{sentence_index:04d}-{token}"


def chapter_key(chapter_index: int, token: str) -> str:
    """Key of a chapter node."""
    return f"chapter-c{chapter_index:03d}-{token}"


def layout_key(chapter_index: int, token: str) -> str:
    """Key of a chapter's layout node, whose result is the lossless audio and loudness statistics."""
    return f"layout-c{chapter_index:03d}-{token}"


def _gain_node(layouts: Mapping[int, Delayed], settings: SynthesisSettings, book: Book, token: str) -> Delayed:
    """Build one loudness node per layout and the gain node that combines their statistics.

    The loudness nodes run next to their layouts and pass on only the statistics, so no
    chapter audio travels to the gain node.
    """
    measurements = [
        dask.delayed(chapter_loudness, pure=True)(node, dask_key_name=f"loudness-c{index:03d}-{token}")
        for index, node in layouts.items()
    ]
    return dask.delayed(plan_book_gain, pure=True)(
        measurements, settings, book.title, dask_key_name=f"gain-{token}"
    )


def compile_book_graph(
    book: Book,
    sentences: Sequence[Sequence[Sentence]],
    settings: SynthesisSettings,
    batch_size: int = 1,
    speech_resources: dict[str, float] | None = None,
    cache: CacheSettings | None = None,
    finished: Mapping[int, ChapterTiming] | None = None,
    gain: GainPlan | None = None,
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
    cache
        The sentence cache the synthesize nodes read and write, or None. When chapters
        wait for the book's gain and the cache is read (not ``--fresh``), their layouts
        keep no audio and the chapter nodes lay them out again from this cache, so the
        cluster does not hold the whole book.
    finished
        Timings of chapters kept from an earlier run, by chapter index. These chapters
        get no nodes; the book node takes their timings as they are.
    gain
        The gain plan of an earlier run, or None to plan the gain from the layouts. Pass
        it whenever ``finished`` is not empty, because finished chapters were encoded
        with that plan and the layouts of the others cannot reproduce it.

    Returns
    -------
    BookGraph
        One synthesize node per batch. Per chapter, a layout node (lossless audio and
        loudness statistics), a loudness node and a chapter node that encodes the layout
        with the gain plan. One gain node that depends on the loudness nodes only, a
        timing node per chapter, and one book node that depends on the timings only, so
        chapter audio never travels to the gain or book node.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    if len(sentences) != len(book.chapters):
        raise ValueError(f"{len(book.chapters)} chapters but {len(sentences)} sentence lists")

    token = graph_token(book, settings, sentences)
    chapter_nodes = []
    timing_nodes = []
    batch_nodes = []

    finished = finished or {}
    layouts: dict[int, Delayed] = {}
    chapter_sentences_of: dict[int, tuple[Sentence, ...]] = {}
    # With a sentence cache a layout drops its audio, so chapters waiting for the gain hold none.
    # --fresh replaces entries, and a repeated sentence's entry could then differ from the take measured.
    drop_audio = (
        gain is None and settings.loudness_target is not None and bool(cache and cache.url and cache.read)
    )
    for chapter, chapter_sentences in zip(book.chapters, sentences):
        if chapter.index in finished:
            continue

        batches = [
            dask.delayed(synthesize_sentences, pure=True)(
                tuple(chapter_sentences[start : start + batch_size]),
                settings,
                cache,
                dask_key_name=sentence_key(chapter.index, chapter_sentences[start].index, token),
            )
            for start in range(0, len(chapter_sentences), batch_size)
        ]
        batch_nodes += [
            (node, len(chapter_sentences[start : start + batch_size]))
            for node, start in zip(batches, range(0, len(chapter_sentences), batch_size))
        ]
        chapter_sentences_of[chapter.index] = tuple(chapter_sentences)
        layouts[chapter.index] = dask.delayed(lay_out_chapter_task, pure=True)(
            chapter.index, chapter.title, tuple(chapter_sentences), batches, settings, drop_audio,
            dask_key_name=layout_key(chapter.index, token),
        )

    if gain is None and settings.loudness_target is None:
        # Without a loudness target the gain is 0 dB, so chapters need not wait for each other.
        gain = GainPlan(target=None, measured=-math.inf, gain_db=0.0)
    gain_node = _gain_node(layouts, settings, book, token) if gain is None else None
    for chapter in book.chapters:
        if chapter.index in finished:
            timing_nodes.append(finished[chapter.index])
            continue

        chapter_node = dask.delayed(encode_chapter_task, pure=True)(
            layouts[chapter.index], gain_node if gain is None else gain, settings,
            chapter_sentences_of[chapter.index] if drop_audio else (), cache if drop_audio else None,
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
        gain=gain_node,
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

    gain: Future | None = None
    """The gain node's future; None when the graph was given its gain plan."""


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
    extra = [graph.gain] if graph.gain is not None else []
    futures = client.compute([*graph.chapters, graph.timeline, *extra], retries=retries)
    chapters = futures[: len(graph.chapters)]
    timeline = futures[len(graph.chapters)]
    gain = futures[-1] if extra else None
    return BookFutures(chapters=chapters, batches=batches, timeline=timeline, gain=gain)
