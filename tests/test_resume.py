"""Resume after a killed coordinator, reuse after an edit, and the sentence cache on S3."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.checks import build, chapters_of, decoded
from tests.cluster import environment
from tests.fixtures.books import make_text_book

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SLOW = "tests.engines:SlowEngine"


def cache_entries(cache: Path) -> int:
    return sum(1 for _ in cache.rglob("*.pcm")) if cache.exists() else 0


def start_build(book: Path, output: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "audiobook", "build", str(book), "-o", str(output), "--engine", SLOW, "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


@pytest.mark.skipif(not (CORPUS / "wasteland.epub").exists(), reason="corpus not present")
def test_rerun_after_killed_coordinator(tmp_path: Path, isolated_cache: Path) -> None:
    book = CORPUS / "wasteland.epub"
    cache = isolated_cache / "sentences"
    env = environment() | {"SLOW_ENGINE_SECONDS": "0.05"}
    output = tmp_path / "resumed.m4b"
    total = 664

    coordinator = start_build(book, output, env)
    deadline = time.monotonic() + 300
    while cache_entries(cache) < total // 2 and time.monotonic() < deadline and coordinator.poll() is None:
        time.sleep(0.05)
    done_at_kill = cache_entries(cache)
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait()
    time.sleep(3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(coordinator.pid, signal.SIGKILL)  # the embedded cluster's orphaned workers, if any

    assert total // 2 <= done_at_kill < total
    assert not output.exists()
    resumed = build(book, output, "--engine", SLOW, "--workers", "2", env=env)
    uninterrupted = build(book, tmp_path / "whole.m4b", "--engine", SLOW, "--workers", "2", "--fresh", env=env)

    assert resumed.returncode == 0, resumed.stderr
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    report = resumed.report
    assert report["total_sentences"] == total
    assert report["sentences_synthesized"] <= total - done_at_kill + 2
    assert report["sentences_reused"] + report["sentences_synthesized"] == total
    assert uninterrupted.report["sentences_synthesized"] == total
    whole = uninterrupted.report["chapters"]
    assert [chapter["title"] for chapter in report["chapters"]] == [chapter["title"] for chapter in whole]
    assert [chapter["sentences"] for chapter in report["chapters"]] == [chapter["sentences"] for chapter in whole]
    # espeak-ng output length varies by up to 430 samples a sentence (measured) with the previous
    # sentences, so the speech gets that margin. The gaps must match, because they count the sentences.
    for resumed_chapter, whole_chapter in zip(report["chapters"], whole):
        resumed_gaps = resumed_chapter["samples"] - resumed_chapter["speech_samples"]
        whole_gaps = whole_chapter["samples"] - whole_chapter["speech_samples"]
        speech_drift = abs(resumed_chapter["speech_samples"] - whole_chapter["speech_samples"])
        assert abs(resumed_gaps - whole_gaps) < 1024, resumed_chapter["title"]
        assert speech_drift <= 512 * resumed_chapter["sentences"], resumed_chapter["title"]
    assert len(decoded(output)) == report["audio_samples"]
    assert [marker.title for marker in chapters_of(output)] == [chapter["title"] for chapter in whole]


def test_failed_run_keeps_chapters_for_rerun(tmp_path: Path, isolated_cache: Path) -> None:
    chapters = [(f"Chapter {n}", [f"Chapter {n} has a quiet sentence.", "And another one."]) for n in (1, 2, 3)]
    chapters[2] = ("Chapter 3", ["This one says Zebrafail and breaks."])
    book = make_text_book(tmp_path / "story.txt", chapters)

    # With loudness normalization every chapter waits for the book's gain, so a failed
    # chapter stops the others before their encode; without it they finish on their own.
    failed = build(book, tmp_path / "story.m4b", "--engine", "tests.engines:FailingEngine", "--workers", "1",
                   "--loudness", "off", env=environment())
    kept = sorted(path.name for path in (isolated_cache / "work").rglob("chapter-*.json"))

    assert failed.returncode == 1
    assert [name[:12] for name in kept] == ["chapter-0001", "chapter-0002"]
    assert not (tmp_path / "story.m4b").exists()


def test_edited_paragraph_resynthesizes_only_its_sentences(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {n} begins here. Middle {n} follows. End {n} is near." for n in range(1, 7)]
    book = make_text_book(tmp_path / "book.txt", [("Chapter 1", paragraphs[:3]), ("Chapter 2", paragraphs[3:])])
    first = build(book, tmp_path / "first.m4b", "--engine", "espeak", "--workers", "1")
    paragraphs[4] = "Paragraph 5 begins here. Middle 5 has changed. End 5 is near."
    make_text_book(tmp_path / "book.txt", [("Chapter 1", paragraphs[:3]), ("Chapter 2", paragraphs[3:])])

    second = build(book, tmp_path / "second.m4b", "--engine", "espeak", "--workers", "1")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.report["sentences_synthesized"] == 20  # 18 sentences and two spoken headings
    assert second.report["sentences_synthesized"] == 1
    assert second.report["sentences_reused"] == 19


def test_changed_voice_reuses_nothing(tmp_path: Path) -> None:
    book = make_text_book(tmp_path / "book.txt", [("Chapter 1", ["One sentence. Two sentences."])])
    build(book, tmp_path / "a.m4b", "--engine", "espeak", "--workers", "1")

    other_voice = build(book, tmp_path / "b.m4b", "--engine", "espeak", "--voice", "en-us", "--workers", "1")

    assert other_voice.returncode == 0, other_voice.stderr
    assert other_voice.report["sentences_reused"] == 0


def test_other_book_with_same_name_reuses_nothing(tmp_path: Path) -> None:
    book = make_text_book(tmp_path / "book.txt", [("Chapter 1", ["The first book speaks."])])
    build(book, tmp_path / "a.m4b", "--engine", "espeak", "--workers", "1")
    make_text_book(tmp_path / "book.txt", [("Chapter 1", ["A different book entirely."])])

    second = build(book, tmp_path / "b.m4b", "--engine", "espeak", "--workers", "1")

    assert second.returncode == 0, second.stderr
    assert second.report["sentences_reused"] == 1  # only the identical spoken heading "Chapter 1"
    assert second.report["sentences_synthesized"] == 1


def test_sentence_cache_on_s3(tmp_path: Path) -> None:
    moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        client = boto3.client("s3", endpoint_url=endpoint, **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"})
        client.create_bucket(Bucket="audiobook-cache")
        env = environment() | credentials | {"FSSPEC_S3_ENDPOINT_URL": endpoint}
        book = make_text_book(tmp_path / "book.txt", [("Chapter 1", ["Cached in a bucket. Twice over."])])

        first = build(book, tmp_path / "a.m4b", "--engine", "espeak", "--cache", "s3://audiobook-cache/sentences",
                      "--workers", "1", env=env)
        second = build(book, tmp_path / "b.m4b", "--engine", "espeak", "--cache", "s3://audiobook-cache/sentences",
                       "--workers", "1", env=env)
        objects = client.list_objects_v2(Bucket="audiobook-cache").get("Contents", [])
    finally:
        server.stop()

    assert first.returncode == 0, first.stderr
    assert first.report["sentences_synthesized"] == 3
    assert len([item for item in objects if item["Key"].endswith(".pcm")]) == 3
    assert second.returncode == 0, second.stderr
    assert second.report["sentences_reused"] == 3
