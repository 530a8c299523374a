"""The book graph: task keys, dependencies, batching, and a run on an in-process cluster."""

from __future__ import annotations

import pytest
from dask.core import get_dependencies
from distributed import Client, LocalCluster

from audiobook.coordinator import _collect_chapters
from audiobook.progress import Progress
from graphs.book_graph import compile_book_graph
from pipeline.checkpoints import ChapterCheckpoints
from pipeline.records import Book, CacheSettings, Chapter, ChapterTiming, SynthesisSettings
from pipeline.text import split_chapter

BOOK = Book(
    "book.txt", "Graph Book", ("Someone",), "en",
    (
        Chapter(1, "One", ("First sentence. Second sentence.", "Third sentence.")),
        Chapter(2, "Two", ("Only sentence.",)),
    ),
)
SETTINGS = SynthesisSettings(engine="piper", language="en")


def sentences_of(book: Book):
    return [split_chapter(chapter, "en", 400) for chapter in book.chapters]


def test_compile_book_graph_keys() -> None:
    graph = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS)
    token = graph.token

    keys = set(graph.timeline.dask.keys())

    assert {f"synthesize-c001-s000{i}-{token}" for i in (1, 2, 3)} <= keys
    assert f"synthesize-c002-s0001-{token}" in keys
    assert {f"chapter-c001-{token}", f"chapter-c002-{token}", f"book-{token}"} <= keys
    assert [node.key for node in graph.chapters] == [f"chapter-c001-{token}", f"chapter-c002-{token}"]


def test_compile_book_graph_dependencies() -> None:
    graph = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS)
    token = graph.token
    tasks = dict(graph.timeline.__dask_graph__())
    dependencies = {key: get_dependencies(tasks, key) for key in tasks}

    assert dependencies[f"layout-c001-{token}"] == {f"synthesize-c001-s000{i}-{token}" for i in (1, 2, 3)}
    assert dependencies[f"loudness-c001-{token}"] == {f"layout-c001-{token}"}
    assert dependencies[f"gain-{token}"] == {f"loudness-c001-{token}", f"loudness-c002-{token}"}
    assert dependencies[f"chapter-c001-{token}"] == {f"layout-c001-{token}", f"gain-{token}"}
    assert dependencies[f"book-{token}"] == {f"timing-c001-{token}", f"timing-c002-{token}"}
    assert dependencies[f"timing-c002-{token}"] == {f"chapter-c002-{token}"}


def test_compile_book_graph_batches() -> None:
    graph = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS, batch_size=2)
    token = graph.token

    assert [(node.key, count) for node, count in graph.batches] == [
        (f"synthesize-c001-s0001-{token}", 2),
        (f"synthesize-c001-s0003-{token}", 1),
        (f"synthesize-c002-s0001-{token}", 1),
    ]


@pytest.mark.parametrize(("read", "drops"), [(True, True), (False, False)])
def test_layout_drops_audio_when_cache_read(read: bool, drops: bool) -> None:
    cache = CacheSettings(url="/tmp/audiobook-graph-test-cache", read=read)
    graph = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS, cache=cache)
    tasks = dict(graph.timeline.__dask_graph__())

    layout = tasks[f"layout-c001-{graph.token}"]

    assert layout.args[-1] is drops


def test_compile_book_graph_token_follows_settings() -> None:
    first = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS)
    slower = compile_book_graph(
        BOOK, sentences_of(BOOK), SynthesisSettings(engine="piper", language="en", length_scale=1.2)
    )

    assert first.token != slower.token


def test_compile_book_graph_rejects_zero_batch() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS, batch_size=0)


@pytest.mark.slow
def test_book_graph_runs_on_in_process_cluster(tmp_path) -> None:
    graph = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS, batch_size=2)

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cluster:
        with Client(cluster) as client:
            paths, marks = _collect_chapters(
                client, graph, BOOK, ChapterCheckpoints(tmp_path), {1: "a", 2: "b"}, Progress("g", 4, 2, 60), 0
            )

    assert [mark.title for mark in marks] == ["One", "Two"]
    assert marks[0].start == 0
    assert marks[1].start == marks[0].samples
    assert [mark.sentence_count for mark in marks] == [3, 1]
    assert sorted(paths) == [1, 2]
    assert all(path.stat().st_size > 1000 for path in paths.values())


def test_compile_book_graph_skips_finished_chapters() -> None:
    kept = ChapterTiming(index=1, title="One", samples=4096, sample_rate=22050, sentence_count=3)

    graph = compile_book_graph(BOOK, sentences_of(BOOK), SETTINGS, finished={1: kept})
    keys = set(dict(graph.timeline.__dask_graph__()))

    assert [node.key for node in graph.chapters] == [f"chapter-c002-{graph.token}"]
    assert not any(str(key).startswith("synthesize-c001") for key in keys)
    assert f"synthesize-c002-s0001-{graph.token}" in keys
    assert graph.timeline.compute(scheduler="sync")[0].samples == 4096
