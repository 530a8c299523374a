"""Real ``dask scheduler`` and ``dask worker`` processes: attach, lose a worker, fail, survey."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from distributed import Client

from tests.checks import build, chapters_of, decoded, expected_silence, inspect_json, run_cli
from tests.cluster import environment, real_cluster
from tests.engines import ABORT_MARK, FAIL_MARK
from tests.fixtures.books import make_text_book

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def story(path: Path, chapters: int, sentences: int, marked: tuple[int, int, str] | None = None) -> Path:
    """A text book of ``chapters`` chapters with ``sentences`` sentences each.

    ``marked`` puts a word into one sentence: (chapter, sentence, word), both from 1.
    """
    specs = []
    for chapter in range(1, chapters + 1):
        lines = []
        for sentence in range(1, sentences + 1):
            word = marked[2] if marked and marked[:2] == (chapter, sentence) else "lantern"
            lines.append(f"Sentence {sentence} of chapter {chapter} tells of a {word} by the sea.")
        specs.append((f"Chapter {chapter}", [" ".join(lines)]))
    return make_text_book(path, specs, title="Cluster Story")


def worker_pids(scheduler_file: Path) -> dict[str, int]:
    with Client(scheduler_file=str(scheduler_file)) as client:
        return client.run(os.getpid)


def test_build_on_real_cluster_with_piper(tmp_path: Path) -> None:
    book = story(tmp_path / "story.txt", chapters=3, sentences=3)

    with real_cluster(tmp_path) as cluster:
        outcome = build(book, tmp_path / "story.m4b", "--scheduler", cluster.address, env=environment())

    assert outcome.returncode == 0, outcome.stderr
    assert [marker.title for marker in chapters_of(tmp_path / "story.m4b")] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert len(decoded(tmp_path / "story.m4b")) == outcome.report["audio_samples"]
    assert outcome.report["voice"] == "piper/en_US-joe-medium"


@pytest.mark.skipif(not (CORPUS / "wasteland.epub").exists(), reason="corpus not present")
def test_build_corpus_book_on_real_cluster(tmp_path: Path) -> None:
    output = tmp_path / "wasteland.m4b"

    with real_cluster(tmp_path) as cluster:
        outcome = build(
            CORPUS / "wasteland.epub", output, "--engine", "espeak", "--scheduler-file", str(cluster.scheduler_file),
            env=environment(),
        )

    assert outcome.returncode == 0, outcome.stderr
    markers = chapters_of(output)
    assert [marker.title for marker in markers] == [chapter["title"] for chapter in outcome.report["chapters"]]
    assert len(markers) == 6
    assert markers[0].title == "I. THE BURIAL OF THE DEAD"
    assert markers[-1].title == 'NOTES ON "THE WASTE LAND"'
    assert len(decoded(output)) == outcome.report["audio_samples"]


def synthesizing(dask_scheduler, address: str) -> int:  # noqa: ANN001
    """Run on the scheduler: synthesize tasks the worker at ``address`` is running."""
    worker = dask_scheduler.workers.get(address)
    return sum(str(task.key).startswith("synthesize-") for task in worker.processing) if worker else 0


def kill_when_busy(scheduler_file: Path, address: str, pid: int, killed: list[float]) -> None:
    """SIGKILL the worker ``pid`` once it has had synthesize tasks in flight for 2 s."""
    with Client(scheduler_file=str(scheduler_file)) as client:
        first_seen = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if client.run_on_scheduler(synthesizing, address=address):
                first_seen = first_seen or time.monotonic()
                if time.monotonic() - first_seen >= 2.0:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(time.monotonic())
                    return
            time.sleep(0.1)


def test_build_survives_killed_worker(tmp_path: Path) -> None:
    book = story(tmp_path / "story.txt", chapters=4, sentences=10)
    output = tmp_path / "story.m4b"
    env = environment() | {"SLOW_ENGINE_SECONDS": "0.3"}

    with real_cluster(tmp_path) as cluster:
        address, victim = sorted(worker_pids(cluster.scheduler_file).items())[0]
        killed: list[float] = []
        killer = threading.Thread(target=kill_when_busy, args=(cluster.scheduler_file, address, victim, killed))
        killer.start()
        outcome = build(book, output, "--scheduler", cluster.address, "--engine", "tests.engines:SlowEngine", env=env)
        killer.join()

    assert killed, "the worker was never seen running a synthesize task"
    assert outcome.returncode == 0, outcome.stderr
    report = outcome.report
    assert report["total_sentences"] == 44  # 10 sentences and the spoken heading per chapter
    assert [chapter["sentences"] for chapter in report["chapters"]] == [11, 11, 11, 11]
    rate = report["sample_rate"]
    layout = inspect_json(book)
    for chapter, inspected in zip(report["chapters"], layout["chapters"]):
        silence = expected_silence(inspected["sentences"], report, rate)
        assert chapter["samples"] == chapter["speech_samples"] + silence + chapter["padding_samples"]
    assert len(decoded(output)) == sum(chapter["samples"] for chapter in report["chapters"])


def test_build_reports_failing_sentence(tmp_path: Path) -> None:
    book = story(tmp_path / "story.txt", chapters=2, sentences=4, marked=(2, 3, FAIL_MARK))
    output = tmp_path / "story.m4b"

    with real_cluster(tmp_path) as cluster:
        outcome = build(book, output, "--scheduler", cluster.address, "--engine", "tests.engines:FailingEngine",
                        env=environment())

    assert outcome.returncode == 1
    assert "chapter 2 'Chapter 2'" in outcome.stderr
    assert "sentence 4 " in outcome.stderr  # the spoken heading is sentence 1
    assert f"Sentence 3 of chapter 2 tells of a {FAIL_MARK}" in outcome.stderr
    assert "injected failure" in outcome.stderr
    assert not output.exists()


def test_build_isolates_aborting_engine(tmp_path: Path) -> None:
    book = story(tmp_path / "story.txt", chapters=2, sentences=4, marked=(1, 2, ABORT_MARK))
    output = tmp_path / "story.m4b"

    with real_cluster(tmp_path) as cluster:
        before = worker_pids(cluster.scheduler_file)
        outcome = build(book, output, "--scheduler", cluster.address, "--engine", "tests.engines:AbortingEngine",
                        env=environment())
        after = worker_pids(cluster.scheduler_file)

    assert outcome.returncode == 1
    assert "chapter 1 'Chapter 1'" in outcome.stderr
    assert "sentence 3 " in outcome.stderr  # the spoken heading is sentence 1
    assert "SIGABRT" in outcome.stderr
    assert before == after
    assert not output.exists()


def test_workers_command_lists_both(tmp_path: Path) -> None:
    with real_cluster(tmp_path) as cluster:
        completed = run_cli("workers", "--scheduler-file", str(cluster.scheduler_file), env=environment())

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    addresses = [line.split()[0] for line in lines if line.startswith("tcp://127.0.0.1:")]
    assert len(addresses) == 2
    assert completed.stdout.count("piper   ok") == 2
    assert completed.stdout.count("espeak  ok") == 2
    assert "device=CPU" in completed.stdout
