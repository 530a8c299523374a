"""The real ``audiobook build`` CLI for every output format, split chapters, captions, loudness."""

from __future__ import annotations

import os
import stat
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from mutagen.id3 import ID3
from mutagen.oggopus import OggOpus

from pipeline.ffmpeg import describe_input, ffmpeg_path
from pipeline.formats import FORMATS
from pipeline.probe import read_metadata, read_stream
from pipeline.records import SynthesisSettings
from pipeline.speech import load_engine
from tests.checks import build, chapters_of, decoded
from tests.cluster import environment
from tests.fixtures.books import make_epub

pytestmark = pytest.mark.slow

CHAPTERS = (
    ("Anna's Morning", ("Anna opened the window.", "Every bird was singing in the garden.")),
    ("The Market", ("Oranges were cheap that day.", "Lemons were not.")),
    ("Evening", ("All the lamps were lit.",)),
)
TITLES = [title for title, _ in CHAPTERS]
ESPEAK = ("--engine", "espeak", "--workers", "1")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("books")
    return make_epub(folder / "formats.epub", CHAPTERS, title="Formats Book", authors=("Ann Author",), cover=True)


def check_id3_chapters(output: Path, report: dict) -> None:
    """Read the MP3's CHAP and CTOC frames with mutagen and compare them with the report."""
    tags = ID3(str(output))
    toc = tags.getall("CTOC")
    chapters = sorted(tags.getall("CHAP"), key=lambda frame: frame.start_time)
    rate = report["sample_rate"]

    assert len(toc) == 1
    assert toc[0].flags == 3  # top level and ordered
    assert toc[0].child_element_ids == [frame.element_id for frame in chapters]
    assert [frame.sub_frames["TIT2"].text[0] for frame in chapters] == TITLES
    for frame, chapter in zip(chapters, report["chapters"]):
        assert abs(frame.start_time - chapter["start_samples"] * 1000 / rate) <= 0.5


@pytest.mark.parametrize(
    ("name", "options"),
    [("m4b", ()), ("m4b", ("--sample-rate", "44100")), ("mp3", ()), ("opus", ()), ("flac", ()), ("wav", ())],
)
def test_build_format_chapters(book: Path, tmp_path: Path, name: str, options: tuple[str, ...]) -> None:
    fmt = FORMATS[name]
    output = tmp_path / f"book{fmt.suffix}"

    outcome = build(book, output, *ESPEAK, "--format", name, *options)

    assert outcome.returncode == 0, outcome.stderr
    report = outcome.report
    rate = report["sample_rate"]
    decoded_rate = fmt.decoded_rate or rate
    stream = read_stream(str(output))
    assert stream.codec == fmt.codec
    assert stream.sample_rate == decoded_rate
    if "--sample-rate" in options:
        assert rate == 44100

    frame = fmt.frame_samples / decoded_rate
    samples = len(decoded(output))
    assert abs(samples / decoded_rate - report["audio_duration"]) <= frame * len(TITLES)

    markers = chapters_of(output)
    if name == "wav":
        assert markers == []
        return
    assert [marker.title for marker in markers] == TITLES
    for marker, chapter in zip(markers, report["chapters"]):
        # Chapter comments and ID3 frames store milliseconds, so allow 1 ms beyond a frame.
        assert abs(marker.start - chapter["start_samples"] / rate) <= frame + 0.001
    if name == "mp3":
        check_id3_chapters(output, report)


def png_image(width: int = 4, height: int = 3) -> bytes:
    """A valid red RGB PNG image."""
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("name", ["m4b", "mp3", "opus", "flac"])
def test_build_format_tags_and_cover(book: Path, tmp_path: Path, name: str) -> None:
    output = tmp_path / f"tagged{FORMATS[name].suffix}"
    cover = tmp_path / "cover.png"
    cover.write_bytes(png_image())

    outcome = build(
        book, output, *ESPEAK, "--format", name, "--title", "New Title", "--author", "A. One",
        "--author", "B. Two", "--narrator", "Nora Reader", "--year", "1999", "--description", "A short story.",
        "--cover", str(cover),
    )

    assert outcome.returncode == 0, outcome.stderr
    tags, _ = read_metadata(str(output))
    if name == "opus":
        # ffmpeg reads Ogg comments as stream tags, which FFMETADATA output leaves out.
        tags = {key: values[0] for key, values in OggOpus(str(output)).tags.items()}
    assert tags["title"] == "New Title"
    assert tags["artist"] == "A. One, B. Two"
    assert tags["composer"] == "Nora Reader"
    assert tags["date"].startswith("1999")
    if name == "opus":
        assert "metadata_block_picture" in OggOpus(str(output)).tags
    else:
        assert "Video: png" in describe_input(str(output))


def test_build_split_chapters(book: Path, tmp_path: Path) -> None:
    folder = tmp_path / "chapters"

    outcome = build(book, folder, *ESPEAK, "--format", "mp3", "--split-chapters", "--captions", "vtt")

    assert outcome.returncode == 0, outcome.stderr
    names = sorted(path.name for path in folder.iterdir())
    assert names == [
        "001 - Anna's Morning.mp3", "001 - Anna's Morning.vtt",
        "002 - The Market.mp3", "002 - The Market.vtt",
        "003 - Evening.mp3", "003 - Evening.vtt",
        "Formats Book.m3u8",
    ]
    playlist = (folder / "Formats Book.m3u8").read_text(encoding="utf-8").splitlines()
    assert playlist[0] == "#EXTM3U"
    assert playlist[1] == f"#EXTINF:{round(outcome.report['chapters'][0]['duration'])},Anna's Morning"
    assert playlist[2] == "001 - Anna's Morning.mp3"
    for chapter, mp3 in zip(outcome.report["chapters"], sorted(folder.glob("*.mp3"))):
        tags, markers = read_metadata(str(mp3))
        assert tags["title"] == chapter["title"]
        assert tags["track"] == f"{chapter['index']}/3"
        assert markers == []
        assert abs(len(decoded(mp3)) - chapter["samples"]) <= 1152
    assert (folder / "001 - Anna's Morning.vtt").read_text(encoding="utf-8").startswith("WEBVTT\n\n00:00:01.000 --> ")
    assert stat.S_IMODE(folder.stat().st_mode) & 0o055 == 0o055


def parse_srt(text: str) -> list[tuple[float, str]]:
    """Return each cue's start in seconds and its text."""
    cues = []
    for block in text.strip().split("\n\n"):
        _, times, cue_text = block.split("\n", 2)
        start = times.split(" --> ")[0]
        hours, minutes, rest = start.split(":")
        seconds, millis = rest.split(",")
        cues.append((int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000, cue_text))
    return cues


def test_captions_match_speech_onsets(book: Path, tmp_path: Path) -> None:
    output = tmp_path / "captioned.m4b"
    threshold = 1000

    outcome = build(book, output, *ESPEAK, "--captions", "srt", "--loudness", "off")

    assert outcome.returncode == 0, outcome.stderr
    rate = outcome.report["sample_rate"]
    samples = np.asarray(decoded(output), dtype=np.int32)
    cues = parse_srt(output.with_suffix(".srt").read_text(encoding="utf-8"))
    assert [text for _, text in cues][:3] == ["Anna's Morning", "Anna opened the window.", "Every bird was singing in the garden."]
    assert len(cues) == outcome.report["total_sentences"]

    engine = load_engine(SynthesisSettings(engine="espeak", language="en"))
    for start, text in cues:
        # Some words begin with a closure (the "Ch" of "Chapter"), so the speech in the
        # engine's own output starts a little after its first sample.
        spoken = np.frombuffer(engine.synthesize(text), dtype="<i2").astype(np.int32)
        lead = int(np.flatnonzero(np.abs(spoken) > threshold)[0])
        search_from = round((start - 0.03) * rate)
        onset = search_from + int(np.flatnonzero(np.abs(samples[search_from:]) > threshold)[0])
        assert abs(onset - (round(start * rate) + lead)) <= 0.020 * rate, text


def test_loudness_levels_chapters(tmp_path: Path) -> None:
    chapters = (
        ("Whisper One", ("Whisper the first line, Anna.", "Whisper the second line as well.")),
        ("Murmur Two", ("Murmur the answer to every question.", "Murmur it once more.")),
        ("Plain Three", ("All the lamps were lit at once.", "Every window was bright.")),
    )
    book = make_epub(tmp_path / "volumes.epub", chapters)
    output = tmp_path / "volumes.m4b"

    outcome = build(
        book, output, "--engine", "tests.engines:VolumeEngine", "--workers", "1", "--loudness", "-24",
        env=environment(),
    )

    assert outcome.returncode == 0, outcome.stderr
    report = outcome.report
    assert report["loudness"]["leveled_chapters"]
    samples = np.asarray(decoded(output), dtype=np.float64) / 32768
    meter = pyloudnorm.Meter(report["sample_rate"])
    levels = [
        meter.integrated_loudness(samples[chapter["start_samples"] : chapter["start_samples"] + chapter["samples"]])
        for chapter in report["chapters"]
    ]
    assert max(levels) - min(levels) <= 1.0, levels
    assert all(abs(level + 24) <= 1.0 for level in levels), levels


def truncating_ffmpeg(folder: Path) -> Path:
    """Write an ffmpeg wrapper that cuts every finished ``.partial`` output to half its size."""
    script = folder / "truncating-ffmpeg"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, subprocess, sys\n"
        f"code = subprocess.call([{ffmpeg_path()!r}, *sys.argv[1:]])\n"
        "target = sys.argv[-1]\n"
        "if code == 0 and '.partial' in os.path.basename(target):\n"
        "    os.truncate(target, os.path.getsize(target) // 2)\n"
        "sys.exit(code)\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("name", ["m4b", "wav"])
def test_truncated_write_fails(book: Path, tmp_path: Path, name: str) -> None:
    output = tmp_path / f"cut{FORMATS[name].suffix}"
    env = dict(os.environ, AUDIOBOOK_FFMPEG=str(truncating_ffmpeg(tmp_path)))

    outcome = build(book, output, *ESPEAK, "--format", name, env=env)

    assert outcome.returncode == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not output.exists()
    assert not list(tmp_path.glob(".cut*"))
    assert "Error:" in outcome.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("-o", "{tmp}/book.mp3"), "does not end in .m4b, the suffix of --format m4b"),
        (("--format", "opus", "-o", "{tmp}/book.m4b"), "does not end in .opus"),
        (("--format", "flac", "--bitrate", "64k"), "does not apply to lossless flac"),
        (("--format", "opus", "--sample-rate", "22050"), "opus cannot use 22050 Hz"),
        (("--loudness", "loud"), "invalid --loudness 'loud'"),
        (("--cover", "{tmp}/cover.gif"), "is not a JPEG or PNG image"),
        (("--split-chapters", "-o", "{tmp}/book.m4b"), "--split-chapters writes a folder"),
    ],
)
def test_build_rejects_invalid_output_options(book: Path, tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    (tmp_path / "cover.gif").write_bytes(b"GIF89a" + bytes(20))
    arguments = [option.format(tmp=tmp_path) for option in options]
    if "-o" not in arguments:
        arguments += ["-o", str(tmp_path / "book.m4b")]

    from tests.checks import run_cli

    completed = run_cli("build", str(book), "--engine", "espeak", *arguments)

    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cover.gif"]
