"""Output formats, safe file names, M3U playlists and caption files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.captions import Cue, format_timestamp, render_srt, render_vtt, sentence_cues, write_captions
from pipeline.filenames import safe_file_name, unique_file_names
from pipeline.formats import (
    FORMATS,
    chapter_format,
    check_bitrate,
    check_sample_rate,
    encoder_arguments,
    get_format,
    output_rate,
)
from pipeline.records import ChapterMark, SentenceTiming
from pipeline.split import PlaylistEntry, chapter_file_names, render_m3u


def test_formats_suffixes_and_codecs() -> None:
    table = {name: (fmt.suffix, fmt.codec, fmt.chapters) for name, fmt in FORMATS.items()}

    assert table == {
        "m4b": (".m4b", "aac", "mp4"),
        "mp3": (".mp3", "mp3", "id3"),
        "opus": (".opus", "opus", "vorbis"),
        "flac": (".flac", "flac", "vorbis"),
        "wav": (".wav", "pcm_s16le", ""),
    }


def test_only_m4b_joins_by_stream_copy() -> None:
    assert [name for name, fmt in FORMATS.items() if fmt.stream_copy] == ["m4b"]
    assert chapter_format(FORMATS["mp3"]).name == "flac"
    assert chapter_format(FORMATS["m4b"]).name == "m4b"
    assert FORMATS["m4b"].chapter_frame == 1024


def test_get_format_rejects_unknown() -> None:
    assert get_format("MP3").name == "mp3"
    with pytest.raises(ValueError, match="unknown output format 'ogg'; use one of m4b, mp3"):
        get_format("ogg")


def test_output_rate_choices() -> None:
    assert output_rate(FORMATS["m4b"], 0, 22050) == 22050
    assert output_rate(FORMATS["opus"], 0, 22050) == 48000
    assert output_rate(FORMATS["opus"], 16000, 22050) == 16000
    assert output_rate(FORMATS["flac"], 0, 22050) == 22050


def test_check_sample_rate_rejects_unusable() -> None:
    check_sample_rate(FORMATS["mp3"], 44100)
    check_sample_rate(FORMATS["flac"], 22050)
    with pytest.raises(ValueError, match="opus cannot use 22050 Hz; use one of 8000"):
        check_sample_rate(FORMATS["opus"], 22050)
    with pytest.raises(ValueError, match="out of range"):
        check_sample_rate(FORMATS["wav"], 100)


def test_check_bitrate_rules() -> None:
    check_bitrate(FORMATS["mp3"], "96k")
    check_bitrate(FORMATS["opus"], "24000")
    check_bitrate(FORMATS["flac"], "")
    with pytest.raises(ValueError, match="does not apply to lossless flac"):
        check_bitrate(FORMATS["flac"], "64k")
    with pytest.raises(ValueError, match="invalid bitrate 'fast'"):
        check_bitrate(FORMATS["m4b"], "fast")


def test_encoder_arguments_defaults() -> None:
    assert encoder_arguments(FORMATS["m4b"]) == ["-c:a", "aac", "-b:a", "64k"]
    assert encoder_arguments(FORMATS["mp3"], "96k") == ["-c:a", "libmp3lame", "-b:a", "96k"]
    assert encoder_arguments(FORMATS["flac"]) == ["-c:a", "flac"]
    assert encoder_arguments(FORMATS["opus"])[:4] == ["-c:a", "libopus", "-b:a", "32k"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Chapter 1: The Start", "Chapter 1_ The Start"),
        ('a/b\\c*d?e"f<g>h|i', "a_b_c_d_e_f_g_h_i"),
        ("line\nbreak\ttab", "line break tab"),
        ("bell\x07and\x00nul", "bell_and_nul"),
        ("...hidden", "hidden"),
        ("--option", "option"),
        ("trailing dots... ", "trailing dots"),
        ("CON", "_CON"),
        ("com1.txt", "_com1.txt"),
        ("Lpt9", "_Lpt9"),
        ("Console", "Console"),
        ("", "untitled"),
        ("///", "untitled"),
        ("   ", "untitled"),
        ("Éte\u0301 à Noël", "Été à Noël"),
    ],
)
def test_safe_file_name_cases(title: str, expected: str) -> None:
    assert safe_file_name(title) == expected


def test_safe_file_name_limits_utf8_bytes() -> None:
    name = safe_file_name("é" * 200, max_bytes=101)

    assert len(name.encode("utf-8")) <= 101
    assert name == "é" * 50


def test_unique_file_names_ignore_case() -> None:
    names = unique_file_names(["Intro.mp3", "intro.mp3", "INTRO.mp3", "Other.mp3", "noext", "noext"])

    assert names == ["Intro.mp3", "intro (2).mp3", "INTRO (3).mp3", "Other.mp3", "noext", "noext (2)"]


def mark(index: int, title: str, start: int, samples: int, sentences=()) -> ChapterMark:
    return ChapterMark(index, title, start, samples, 22050, len(sentences), sentences=tuple(sentences))


def test_chapter_file_names_are_numbered_and_safe() -> None:
    marks = [mark(1, "Intro: Part?", 0, 10), mark(2, "CON", 10, 10), mark(3, "", 20, 10)]

    names = chapter_file_names(marks, ".mp3")

    assert names == ["001 - Intro_ Part_.mp3", "002 - _CON.mp3", "003 - untitled.mp3"]


def test_render_m3u_lines() -> None:
    entries = [PlaylistEntry("001 - One.mp3", "One, the first", 61.6), PlaylistEntry("002 - Two.mp3", "Two\nlines", 2.4)]

    text = render_m3u(entries)

    assert text == (
        "#EXTM3U\n"
        "#EXTINF:62,One, the first\n001 - One.mp3\n"
        "#EXTINF:2,Two lines\n002 - Two.mp3\n"
    )


def test_format_timestamp_to_the_millisecond() -> None:
    assert format_timestamp(0, ",") == "00:00:00,000"
    assert format_timestamp(3_723_456, ",") == "01:02:03,456"
    assert format_timestamp(36_000_001, ".") == "10:00:00.001"


def test_sentence_cues_from_sample_positions() -> None:
    first = mark(1, "One", 0, 44100, [SentenceTiming(1, 22050, 11025), SentenceTiming(2, 33076, 100)])
    second = mark(2, "Two", 44100, 22050, [SentenceTiming(1, 11, 22050)])
    texts = {(1, 1): "Hello  there.", (1, 2): "Bye.", (2, 1): "Again\nhere."}

    cues = sentence_cues([first, second], texts)
    alone = sentence_cues([second], texts, origin=second.start)

    assert cues == [
        Cue(1000, 1500, "Hello there."),
        Cue(1500, 1505, "Bye."),
        Cue(2000, 3000, "Again here."),
    ]
    assert alone == [Cue(0, 1000, "Again here.")]


def test_render_srt_and_vtt() -> None:
    cues = [Cue(1000, 2500, "Tom & <Jerry>"), Cue(3_600_000, 3_600_001, "Late.")]

    srt = render_srt(cues)
    vtt = render_vtt(cues)

    assert srt == (
        "1\n00:00:01,000 --> 00:00:02,500\nTom & <Jerry>\n\n"
        "2\n01:00:00,000 --> 01:00:00,001\nLate.\n"
    )
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.500\nTom &amp; &lt;Jerry&gt;\n\n"
        "01:00:00.000 --> 01:00:00.001\nLate.\n"
    )


def test_write_captions_rejects_unknown_kind(tmp_path: Path) -> None:
    write_captions(tmp_path / "book.vtt", [Cue(0, 1, "x")], "vtt")

    assert (tmp_path / "book.vtt").read_text(encoding="utf-8").startswith("WEBVTT\n")
    with pytest.raises(ValueError, match="unknown caption format 'ass'"):
        write_captions(tmp_path / "book.ass", [], "ass")
