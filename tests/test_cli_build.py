"""The real ``audiobook build`` CLI with the Piper voice, real Dask and real ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.checks import SILENT, build, chapters_of, decoded, expected_silence, inspect_json, peak
from tests.fixtures.books import make_epub, make_text_book

pytestmark = pytest.mark.slow

CHAPTERS = (
    ("The Ladder", ("Marta carried her ladder through the streets.", "Tomas followed her. He asked why.")),
    ("The Harbour", ("The last lamp stood at the end of the pier.",)),
    ("The Morning", ("When Tomas woke, the lamps were cold.", "The fog was grey. The boats were home.")),
)
TITLES = [title for title, _ in CHAPTERS]


def check_audiobook(book: Path, output: Path, titles: list[str], *options: str) -> dict:
    """Build ``book`` and check titles, markers and lengths to the sample; return the report."""
    outcome = build(book, output, "--workers", "2", *options)
    assert outcome.returncode == 0, outcome.stderr
    report = outcome.report
    rate = report["sample_rate"]
    samples = decoded(output)
    markers = chapters_of(output)

    assert [marker.title for marker in markers] == titles
    assert [chapter["title"] for chapter in report["chapters"]] == titles
    assert len(samples) == report["audio_samples"]
    assert abs(len(samples) / rate - report["audio_duration"]) <= 0.05 * len(titles)

    layout = inspect_json(book, *[option for option in options if option.startswith("--engine")])
    lead = round(report["silence"]["chapter"] * rate)
    for marker, chapter, inspected in zip(markers, report["chapters"], layout["chapters"]):
        start = chapter["start_samples"]
        assert round(marker.start * rate) == start
        assert chapter["sentences"] == inspected["sentence_count"]
        silence = expected_silence(inspected["sentences"], report, rate)
        assert chapter["samples"] == chapter["speech_samples"] + silence + chapter["padding_samples"]
        assert peak(samples, start - lead + 1200, start + lead - 1200) < SILENT
        assert peak(samples, start + lead, start + lead + rate // 2) > 10 * SILENT
    return report


def test_build_epub_with_nav(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "nav book.epub", CHAPTERS, toc="nav", title="Nav Book", cover=True)

    report = check_audiobook(book, tmp_path / "nav book.m4b", TITLES)

    assert report["voice"] == "piper/en_US-joe-medium"
    assert report["total_sentences"] == 10  # 7 sentences and 3 spoken headings


def test_build_epub_with_ncx_only(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "ncx.epub", CHAPTERS, toc="ncx")

    check_audiobook(book, tmp_path / "ncx.m4b", TITLES)


def test_build_epub_with_fragment_toc(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "fragments.epub", CHAPTERS, toc="fragments")

    check_audiobook(book, tmp_path / "l'été «fragments».m4b", TITLES)


def test_build_epub_without_toc(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "spine.epub", CHAPTERS, toc="none")

    check_audiobook(book, tmp_path / "spine.m4b", TITLES)


def test_build_text_book(tmp_path: Path) -> None:
    chapters = [(f"Chapter {number}", paragraphs) for number, (_, paragraphs) in enumerate(CHAPTERS, 1)]
    book = make_text_book(tmp_path / "story.txt", chapters, title="Story", gutenberg=True)

    report = check_audiobook(book, tmp_path / "story.m4b", ["Chapter 1", "Chapter 2", "Chapter 3"])

    assert report["title"] == "Story"


def test_build_keeps_existing_output(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "book.epub", CHAPTERS)
    output = tmp_path / "book.m4b"
    output.write_bytes(b"precious")

    outcome = build(book, output, "--engine", "espeak")

    assert outcome.returncode == 2
    assert "already exists" in outcome.stderr
    assert "--overwrite" in outcome.stderr
    assert output.read_bytes() == b"precious"
    assert "Traceback" not in outcome.stderr


def test_build_leaves_no_temporary_files(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "book.epub", CHAPTERS)

    outcome = build(book, tmp_path / "book.m4b", "--engine", "espeak", "--workers", "1")

    assert outcome.returncode == 0, outcome.stderr
    leftovers = sorted(path.name for path in tmp_path.iterdir())
    assert leftovers == ["book.epub", "book.m4b", "book.report.json"]


def test_build_repeated_lines_from_cache(tmp_path: Path) -> None:
    # Several tasks speak the repeated lines at once. The cache keeps one take of each, so the
    # chapters laid out again from it must match the audio they were measured on.
    refrain = "Weialala leia. Wallala leialala."
    chapters = [
        (f"Song {number}", tuple(f"{refrain} The river sweats oil and tar, verse {number}.{line}. {refrain}" for line in range(3)))
        for number in (1, 2, 3)
    ]
    book = make_epub(tmp_path / "songs.epub", chapters)
    work_dir = tmp_path / "work"

    outcome = build(
        book, tmp_path / "songs.m4b", "--engine", "espeak", "--workers", "2",
        "--cache", str(tmp_path / "sentences"), "--work-dir", str(work_dir),
    )

    assert outcome.returncode == 0, outcome.stderr
    report = outcome.report
    assert [chapter["title"] for chapter in report["chapters"]] == ["Song 1", "Song 2", "Song 3"]
    assert report["sentences_synthesized"] + report["sentences_reused"] == report["total_sentences"]
    assert len(decoded(tmp_path / "songs.m4b")) == report["audio_samples"]
    assert work_dir.is_dir()
    assert list(work_dir.iterdir()) == []


def test_build_rejects_file_as_work_dir(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "book.epub", CHAPTERS)
    not_a_folder = tmp_path / "work.txt"
    not_a_folder.write_text("notes")

    outcome = build(book, tmp_path / "book.m4b", "--engine", "espeak", "--work-dir", str(not_a_folder))

    assert outcome.returncode == 2
    assert outcome.stderr.strip().splitlines() == [f"Error: work folder {str(not_a_folder)!r} is a file; give --work-dir a folder"]
    assert not (tmp_path / "book.m4b").exists()
    assert not_a_folder.read_text() == "notes"
