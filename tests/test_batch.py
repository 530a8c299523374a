"""``audiobook batch``: a folder of books, a broken one, reruns, the lock."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from audiobook.batch import batch_lock
from tests.checks import chapters_of, run_cli
from tests.fixtures.books import make_epub, make_text_book

pytestmark = pytest.mark.slow


def fill_inbox(inbox: Path) -> None:
    inbox.mkdir()
    make_epub(inbox / "first.epub", [("Opening", ["The first book begins."]), ("Closing", ["It ends."])])
    make_text_book(inbox / "second.txt", [("Chapter 1", ["The second book speaks."])])
    make_text_book(inbox / "third.md", [("Only Part", ["The third book is Markdown."])], markdown=True, title="Third")
    (inbox / "broken.epub").write_bytes(b"this is not a zip archive at all")
    (inbox / "notes.jpg").write_bytes(b"\xff\xd8 not a book")


def run_batch(inbox: Path, outdir: Path, *options: str):
    return run_cli("batch", str(inbox), str(outdir), "--engine", "espeak", "--workers", "2", *options)


def test_batch_converts_good_books_and_reports_broken(tmp_path: Path) -> None:
    inbox, outdir = tmp_path / "inbox", tmp_path / "out"
    fill_inbox(inbox)

    first = run_batch(inbox, outdir)
    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    second = run_batch(inbox, outdir)
    assert second.returncode == 0, second.stderr
    rerun = json.loads(second.stdout)

    assert (summary["converted"], summary["failed"]) == (3, 1)
    failed = [book for book in summary["books"] if book["status"] == "failed"]
    assert failed[0]["input"].endswith("broken.epub")
    assert "not a zip" in failed[0]["error"]
    assert failed[0]["error"].startswith(failed[0]["input"] + ":")
    assert "audiobook-batch-" not in failed[0]["error"]
    assert sorted(path.name for path in outdir.glob("*.m4b")) == ["first.m4b", "second.m4b", "third.m4b"]
    assert [marker.title for marker in chapters_of(outdir / "first.m4b")] == ["Opening", "Closing"]
    converted = [book for book in summary["books"] if book["status"] == "converted"]
    assert all(book["audio_seconds"] > 1 and book["wall_time"] > 0 for book in converted)
    assert rerun["converted"] == 0
    assert (rerun["up-to-date"], rerun["skipped"], rerun["failed"]) == (3, 1, 0)


def test_batch_converts_changed_book_again(tmp_path: Path) -> None:
    inbox, outdir = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    make_text_book(inbox / "book.txt", [("Chapter 1", ["Version one."])])
    run_batch(inbox, outdir)
    make_text_book(inbox / "book.txt", [("Chapter 1", ["Version two, longer than before."])])

    again = run_batch(inbox, outdir)

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["converted"] == 1


def test_batch_exits_while_locked(tmp_path: Path, isolated_cache: Path) -> None:
    inbox, outdir = tmp_path / "inbox", tmp_path / "out"
    fill_inbox(inbox)

    with batch_lock(str(outdir), isolated_cache / "locks", wait=False):
        locked = run_batch(inbox, outdir)

    assert locked.returncode == 0
    assert "in progress" in locked.stderr
    assert not list(outdir.glob("*.m4b")) if outdir.exists() else True


def test_batch_waits_for_lock(tmp_path: Path, isolated_cache: Path) -> None:
    inbox, outdir = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    make_text_book(inbox / "book.txt", [("Chapter 1", ["Patience pays."])])
    released = []

    def hold_lock() -> None:
        with batch_lock(str(outdir), isolated_cache / "locks", wait=False):
            time.sleep(4)
            released.append(time.monotonic())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    time.sleep(0.5)
    waited = run_batch(inbox, outdir, "--wait")
    holder.join()

    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["converted"] == 1
    assert released
