"""Join the chapters into the finished audiobook with markers, tags and cover, then check it."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipeline.ffmpeg import run_ffmpeg
from pipeline.formats import FORMATS, OutputFormat, encoder_arguments
from pipeline.probe import ExpectedOutput, check_output
from pipeline.records import Book, ChapterMark
from pipeline.tags import add_ogg_cover, write_vorbis_chapters

logger = logging.getLogger(__name__)

ISO_639_2 = {
    "ar": "ara", "bg": "bul", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu",
    "el": "ell", "en": "eng", "es": "spa", "et": "est", "fa": "fas", "fi": "fin", "fr": "fra",
    "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "id": "ind", "is": "isl", "it": "ita",
    "ja": "jpn", "ko": "kor", "la": "lat", "lt": "lit", "lv": "lav", "nl": "nld", "no": "nor",
    "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sr": "srp",
    "sv": "swe", "sw": "swa", "th": "tha", "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "zho",
}
"""ISO 639-1 to 639-2 codes, because MP4 stores a stream's language as three letters."""

FFMPEG_CHAPTERS = ("mp4", "id3")
"""Values of ``OutputFormat.chapters`` whose chapters ffmpeg writes from the FFMETADATA file."""

COVER_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png"}
"""Cover types the formats can carry as attached pictures, with their file suffixes."""


def escape_ffmetadata(value: str) -> str:
    """Escape a value for an FFMETADATA file: ``= ; # \\`` and line breaks."""
    escaped = value.replace("\\", "\\\\")
    for special in ("=", ";", "#"):
        escaped = escaped.replace(special, "\\" + special)
    return escaped.replace("\r", " ").replace("\n", "\\\n")


def book_tags(book: Book, narrator: str, output: OutputFormat) -> dict[str, str]:
    """Return the book's metadata under ffmpeg's keys for ``output``; empty values left out."""
    authors = ", ".join(book.authors)
    tags = {
        "title": book.title,
        "album": book.title,
        "artist": authors,
        "album_artist": authors,
        "composer": narrator,
        "genre": "Audiobook",
        "language": book.language,
        "date": book.year,
        output.description_tag: book.description,
    }
    return {key: value for key, value in tags.items() if value}


def render_ffmetadata(tags: Mapping[str, str], marks: Sequence[ChapterMark]) -> str:
    """Write tags and one CHAPTER block per marker, timed in samples, as an FFMETADATA file."""
    lines = [";FFMETADATA1"]
    lines += [f"{key}={escape_ffmetadata(value)}" for key, value in tags.items() if value]

    for mark in marks:
        lines += [
            "",
            "[CHAPTER]",
            f"TIMEBASE=1/{mark.sample_rate}",
            f"START={mark.start}",
            f"END={mark.start + mark.samples}",
            f"title={escape_ffmetadata(mark.title)}",
        ]
    return "\n".join(lines) + "\n"


def render_concat_list(paths: Sequence[Path], inpoint: bool = True) -> str:
    """Write an ffmpeg concat-demuxer list for ``paths``.

    With ``inpoint``, each entry gets ``inpoint 0``, which drops the AAC priming packet
    that every chapter file starts with. Without it each stream-copied join adds one
    frame of silence and the markers drift. Single quotes in a path are closed, escaped
    and reopened as the concat syntax requires; spaces and non-ASCII characters need nothing.
    """
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(path.resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        if inpoint:
            lines.append("inpoint 0")
    return "\n".join(lines) + "\n"


def cover_arguments(book: Book, output: OutputFormat, work_dir: Path, input_index: int) -> tuple[list[str], list[str]]:
    """Return ffmpeg's input and output options that attach the book's cover, if ffmpeg can."""
    suffix = COVER_SUFFIXES.get(book.cover_media_type)
    if book.cover and not output.cover:
        logger.info("book %s: %s files carry no cover, so the cover is left out", book.title, output.name)
    if not book.cover or output.cover != "ffmpeg":
        return [], []
    if not suffix:
        logger.warning(
            "book %s: cover of type %r is left out; only JPEG and PNG covers can be attached",
            book.title, book.cover_media_type,
        )
        return [], []

    cover = work_dir / f"cover{suffix}"
    cover.write_bytes(book.cover)
    maps = ["-map", f"{input_index}:v", "-c:v", "copy", "-disposition:v:0", "attached_pic"]
    return ["-i", str(cover)], maps


def finish_tags(path: str, book: Book, marks: Sequence[ChapterMark], output: OutputFormat) -> None:
    """Write what ffmpeg cannot: chapter comments in FLAC and Opus, the cover in Ogg Opus."""
    if output.chapters == "vorbis" and marks:
        write_vorbis_chapters(path, marks)
    if output.cover == "mutagen" and book.cover and book.cover_media_type in COVER_SUFFIXES:
        add_ogg_cover(path, book.cover, book.cover_media_type)


def expected_output(output: OutputFormat, marks: Sequence[ChapterMark], with_chapters: bool) -> ExpectedOutput:
    """Return what the file written from ``marks`` must decode to."""
    rate = marks[0].sample_rate
    decoded_rate = output.decoded_rate or rate
    samples = sum(mark.samples for mark in marks)
    return ExpectedOutput(
        codec=output.codec,
        sample_rate=decoded_rate,
        chapters=len(marks) if with_chapters and output.chapters else 0,
        samples=round(samples * decoded_rate / rate),
        tolerance=output.frame_samples * len(marks),
        mp4=output.muxer == "mp4",
    )


def default_mode(directory: bool = False) -> int:
    """Return the permission bits a new file (or folder) gets under the process's umask.

    ``tempfile`` creates files readable by their owner only; finished outputs get the
    usual permissions instead.
    """
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def write_checked(arguments: list[str], target: Path, check: Callable[[str], None]) -> None:
    """Run ffmpeg into a temporary file beside ``target``, check it, and rename it into place.

    ``check`` gets the temporary path and raises when the file is wrong. The file is then
    removed, so a failed, interrupted or wrong run leaves no partial file behind, and an
    existing ``target`` stays as it was.
    """
    handle, partial = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent)
    os.close(handle)
    try:
        run_ffmpeg([*arguments, "-y", partial])
        check(partial)
        os.chmod(partial, default_mode())
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def publish_book(
    chapter_paths: Sequence[Path],
    book: Book,
    marks: Sequence[ChapterMark],
    narrator: str,
    output: Path,
    work_dir: Path,
    output_format: OutputFormat,
    bitrate: str = "",
) -> None:
    """Join the chapter files into ``output``, tag it, check it and rename it into place.

    Formats with ``stream_copy`` (M4B) join the encoded chapters by stream copy. The others
    decode the FLAC chapters through the concat demuxer and encode the book once.

    Raises
    ------
    FfmpegError
        When ffmpeg fails.
    OutputCheckError
        When the written file's codec, rate, chapter count or length is not what the
        run produced; nothing is renamed into place.
    """
    concat_list = work_dir / "chapters.ffconcat"
    concat_list.write_text(render_concat_list(chapter_paths, output_format.stream_copy), encoding="utf-8")
    metadata = work_dir / "metadata.txt"
    chapter_marks = marks if output_format.chapters in FFMPEG_CHAPTERS else ()
    metadata.write_text(render_ffmetadata(book_tags(book, narrator, output_format), chapter_marks), encoding="utf-8")

    inputs = ["-f", "concat", "-safe", "0", "-i", str(concat_list), "-i", str(metadata)]
    maps = ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1" if chapter_marks else "-1"]
    if output_format.stream_tags:
        maps += ["-map_metadata:s:a:0", "1:g"]
    language = ISO_639_2.get(book.language.split("-")[0].lower())
    if language and output_format.name == "m4b":
        maps += ["-metadata:s:a:0", f"language={language}"]
    cover_inputs, cover_maps = cover_arguments(book, output_format, work_dir, 2)
    codec = ["-c:a", "copy"] if output_format.stream_copy else encoder_arguments(output_format, bitrate)
    arguments = [*inputs, *cover_inputs, *maps, *cover_maps, *codec, *output_format.muxer_options, "-f", output_format.muxer]

    def check(partial: str) -> None:
        finish_tags(partial, book, marks, output_format)
        check_output(partial, expected_output(output_format, marks, with_chapters=True))

    write_checked(arguments, output, check)
    logger.info("book %s: wrote %s with %d chapters", book.title, output, len(marks))


def concatenate_chapters(
    chapter_paths: Sequence[Path],
    book: Book,
    marks: Sequence[ChapterMark],
    narrator: str,
    output: Path,
    work_dir: Path,
) -> None:
    """Stream-copy AAC chapter files into ``output`` as an M4B; see ``publish_book``."""
    publish_book(chapter_paths, book, marks, narrator, output, work_dir, FORMATS["m4b"])
