"""Concatenation: FFMETADATA escaping, concat list quoting, chapter starts to the sample."""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.audio import encode_aac
from pipeline.ffmpeg import decode_to_pcm
from pipeline.probe import read_metadata
from pipeline.publish import concatenate_chapters, escape_ffmetadata, render_concat_list
from pipeline.records import Book, ChapterMark

RATE = 22050


def test_escape_ffmetadata_special_characters() -> None:
    assert escape_ffmetadata("A=B; #1 \\ end") == "A\\=B\\; \\#1 \\\\ end"


def test_render_concat_list_quotes_single_quotes(tmp_path: Path) -> None:
    path = tmp_path / "it's a chapter é.m4a"

    listing = render_concat_list([path])

    assert "file '" + str(path).replace("'", "'\\''") + "'" in listing
    assert "inpoint 0" in listing


def burst_chapter(frames: int, frequency: float) -> bytes:
    """A chapter of silence with a tone between its second and second-to-last frame."""
    samples = []
    for i in range(frames * 1024):
        inside = 2048 <= i < (frames - 2) * 1024
        value = int(9000 * math.sin(2 * math.pi * frequency * i / RATE)) if inside else 0
        samples.append(value.to_bytes(2, "little", signed=True))
    return b"".join(samples)


def onsets(pcm: bytes, threshold: int = 3000, quiet_run: int = 1500) -> list[int]:
    values = memoryview(pcm).cast("h")
    found, quiet = [], quiet_run
    for index, value in enumerate(values):
        if abs(value) > threshold:
            if quiet >= quiet_run:
                found.append(index)
            quiet = 0
        else:
            quiet += 1
    return found


def test_concatenate_chapters_lands_on_markers(tmp_path: Path) -> None:
    folder = tmp_path / "a 'quoted' folder ü"
    folder.mkdir()
    frames = [12, 30, 7]
    paths = []
    for number, count in enumerate(frames, start=1):
        path = folder / f"chapter {number}.m4a"
        path.write_bytes(encode_aac(burst_chapter(count, 440 * number), RATE, "64k"))
        paths.append(path)
    starts = [0, 12 * 1024, 42 * 1024]
    marks = [
        ChapterMark(index, f"Part {index}: \"x\"; y", start, count * 1024, RATE, 1)
        for index, (start, count) in enumerate(zip(starts, frames), start=1)
    ]
    book = Book("b.epub", "Titled = Book", ("Ann Author",), "en-GB", ())
    output = folder / "book.m4b"

    concatenate_chapters(paths, book, marks, "test voice", output, folder)

    pcm = decode_to_pcm(str(output))
    assert len(pcm) // 2 == sum(frames) * 1024
    for found, start in zip(onsets(pcm), starts):
        assert abs(found - (start + 2048)) <= 4
    tags, chapters = read_metadata(str(output))
    assert tags["title"] == "Titled = Book"
    assert tags["artist"] == "Ann Author"
    assert [chapter.title for chapter in chapters] == [mark.title for mark in marks]
    assert [round(chapter.start * RATE) for chapter in chapters] == starts
    assert not list(folder.glob("*.partial*"))
