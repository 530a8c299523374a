"""Measure how far chapter markers drift from where the chapters really start, per hour of audio.

Two designs speak the same book with the same engine:

* this tool: ``audiobook build`` writes an M4B. The markers are read back from the file.
* the old design: every sentence's PCM, with the silence that follows it in the tool's
  layout (and the chapter silence before a chapter's first sentence), is encoded to its
  own MP3 with libmp3lame. The MP3s are joined with ``ffmpeg -f concat -c copy`` and each
  marker is the sum of the PCM lengths before the chapter.

For each design the script decodes the book and finds where each chapter's speech really
starts: the first sample above -40 dBFS after a silence of at least ``--min-gap``
seconds, taking the onset nearest to where the drift so far puts the chapter. The drift
of a chapter is that onset minus (marker + chapter silence + the leading silence of the
chapter's first sentence). The drift per hour is the least-squares slope of drift
against marker time.

The old design's PCM is the PCM this script synthesized, so its leading silences are
exact. The tool synthesizes again on its workers, and neither engine gives the same
samples twice (espeak-ng's lengths differ by a few samples, Piper adds random noise), so
the tool's leading silences are those of this script's synthesis. Detection on the
decoded AAC can also fire a few ms early on codec pre-echo. Both errors are per chapter
and do not add up along the book, so they scatter the tool's drifts by a few ms but
barely move the slope.

The last line is this tool's drift per hour over the old design's (lower is better).

Run from the repository root::

    python bench/fidelity.py                              # all of pride-and-prejudice.txt
    python bench/fidelity.py --minutes 60                 # the first hour or so
    python bench/fidelity.py --engine piper --minutes 30  # Piper is about 80 times slower

The JSON result goes to ``bench/results/fidelity.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import benchlib
from audiobook.coordinator import prepare_book
from pipeline.audio import silence_samples
from pipeline.ffmpeg import run_ffmpeg
from pipeline.probe import read_metadata
from pipeline.records import Sentence, SynthesisSettings
from pipeline.speech import create_engine

logger = logging.getLogger(__name__)

SILENCE_LEVEL = 0.01
"""Largest absolute sample, as a fraction of full scale (-40 dBFS), that counts as silence."""

BLOCK_SECONDS = 0.01
"""Length of the blocks whose peak decides silence, in seconds."""

MAX_DISTANCE_SECONDS = 60.0
"""Farthest an onset may lie from where the drift so far puts a chapter, in seconds, to count as found."""


@dataclass(frozen=True)
class ChapterStart:
    """Expected and detected speech onset of one chapter, in samples."""

    index: int
    expected: int
    onset: int
    found: bool
    """False when no onset lies within ``MAX_DISTANCE_SECONDS`` of the expected position."""


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--book", type=Path, default=benchlib.DEFAULT_CORPUS / "pride-and-prejudice.txt",
        help="Book to speak. [default: pride-and-prejudice.txt in the corpus]",
    )
    parser.add_argument(
        "--minutes", type=float,
        help="Speak only the first chapters, about this much audio (15 characters per second). [default: the whole book]",
    )
    parser.add_argument("--engine", choices=("espeak", "piper"), default="espeak", help="Speech engine. [default: espeak]")
    parser.add_argument("--mp3-bitrate", default="64k", help="Bitrate of the old design's MP3s. [default: 64k]")
    parser.add_argument(
        "--min-gap", type=float, default=1.5,
        help="Shortest silence, in seconds, taken for a chapter boundary. The tool puts 2 s there. [default: 1.5]",
    )
    benchlib.add_common_arguments(parser)
    return parser.parse_args()


def select_book(args: argparse.Namespace, scratch: Path) -> tuple[Path, SynthesisSettings, list[tuple[Sentence, ...]]]:
    """Return the book file to build, its settings and its sentences. With ``--minutes`` the file is a Markdown excerpt."""
    settings = SynthesisSettings(engine=args.engine, language="")
    book, settings, sentences = prepare_book(args.book, settings)
    if args.minutes is None:
        return args.book, settings, sentences

    target_chars = round(args.minutes * 60 * benchlib.CHARS_PER_SECOND)
    selection = benchlib.select_chapters(book, sentences, target_chars)
    book_path = scratch / "fidelity-book.md"
    benchlib.write_markdown_book(book_path, book.title, settings.language, selection.chapters)
    _, _, read_back = prepare_book(book_path, replace(settings, language=""))
    return book_path, settings, read_back


def synthesize_all(settings: SynthesisSettings, sentences: Sequence[Sequence[Sentence]]) -> tuple[list[list[bytes]], int]:
    """Speak every sentence in this process and return the PCM per chapter and the sample rate."""
    engine = create_engine(settings)
    started = time.perf_counter()
    pcm = [[engine.synthesize(sentence.speech_text) for sentence in chapter] for chapter in sentences]
    logger.info("synthesized %d sentences in %.0f s", sum(map(len, pcm)), time.perf_counter() - started)
    return pcm, engine.sample_rate


def old_design_segments(
    sentences: Sequence[Sequence[Sentence]], pcm: Sequence[Sequence[bytes]], settings: SynthesisSettings, rate: int
) -> tuple[list[bytes], list[int]]:
    """Lay out one PCM segment per sentence with its silences and return the segments and each chapter's marker in samples."""
    chapter_gap = bytes(silence_samples(settings.chapter_silence, rate) * 2)
    segments: list[bytes] = []
    markers: list[int] = []
    position = 0
    for chapter_sentences, chapter_pcm in zip(sentences, pcm):
        markers.append(position)
        for number, (sentence, audio) in enumerate(zip(chapter_sentences, chapter_pcm)):
            if number == len(chapter_sentences) - 1:
                gap = chapter_gap
            elif sentence.paragraph_end:
                gap = bytes(silence_samples(settings.paragraph_silence, rate) * 2)
            else:
                gap = bytes(silence_samples(settings.sentence_silence, rate) * 2)
            segment = (chapter_gap if number == 0 else b"") + audio + gap
            segments.append(segment)
            position += len(segment) // 2
    return segments, markers


def encode_mp3(pcm: bytes, rate: int, bitrate: str, path: Path) -> None:
    """Encode one segment of mono PCM to an MP3 file with libmp3lame."""
    run_ffmpeg(
        ["-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", bitrate,
         "-f", "mp3", "-y", str(path)],
        stdin=pcm,
    )


def build_old_design(segments: Sequence[bytes], rate: int, bitrate: str, folder: Path) -> Path:
    """Encode every segment to MP3 and join them with the concat demuxer and stream copy."""
    folder.mkdir()
    paths = [folder / f"sentence-{number:06d}.mp3" for number in range(len(segments))]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda item: encode_mp3(item[0], rate, bitrate, item[1]), zip(segments, paths)))
    logger.info("encoded %d MP3 files in %.0f s", len(paths), time.perf_counter() - started)

    concat_list = folder / "sentences.ffconcat"
    lines = ["ffconcat version 1.0", *(f"file '{path.name}'" for path in paths)]
    concat_list.write_text("\n".join(lines) + "\n", encoding="utf-8")
    joined = folder.parent / "old-design.mp3"
    run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(concat_list), "-c", "copy", "-y", str(joined)])
    return joined


def build_with_tool(book_path: Path, settings: SynthesisSettings, scratch: Path) -> tuple[Path, list[int], float]:
    """Run ``audiobook build`` and return the M4B, its markers in samples at the voice's rate, and the wall time."""
    output = scratch / "tool.m4b"
    report_path = scratch / "tool-report.json"
    command = benchlib.audiobook_command(
        "build", str(book_path), "-o", str(output), "--engine", settings.engine,
        "--report", str(report_path), *benchlib.no_reuse_options(scratch),
    )
    wall = benchlib.run_timed(command, scratch / "tool-build.log")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    rate = int(report["sample_rate"])
    _, probed = read_metadata(str(output))
    markers = [round(chapter.start * rate) for chapter in probed]
    logger.info("tool: %d chapters, %.2f h of audio in %.0f s", len(markers), report["audio_duration"] / 3600, wall)
    return output, markers, wall


def decode_to_file(source: Path, rate: int, target: Path) -> np.memmap:
    """Decode ``source`` to mono 16-bit PCM at ``rate`` in ``target`` and map it into memory."""
    run_ffmpeg(["-i", str(source), "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-c:a", "pcm_s16le", "-y", str(target)])
    return np.memmap(target, dtype="<i2", mode="r")


def speech_onsets(audio: np.ndarray, rate: int, min_gap: float) -> np.ndarray:
    """Return the first loud sample of the audio and of every sound after a silence of at least ``min_gap`` seconds.

    Silence is decided per block of ``BLOCK_SECONDS``; inside the first loud block after
    the silence the onset is the first sample above ``SILENCE_LEVEL``.
    """
    block = max(1, round(BLOCK_SECONDS * rate))
    level = SILENCE_LEVEL * 32768
    chunk_blocks = 1 << 20
    loud_parts = []
    for first in range(0, len(audio) // block, chunk_blocks):
        chunk = np.asarray(audio[first * block : (first + chunk_blocks) * block]).astype(np.int32)
        usable = len(chunk) // block * block
        loud_parts.append(np.abs(chunk[:usable]).reshape(-1, block).max(axis=1) > level)
    loud = np.concatenate(loud_parts)

    loud_blocks = np.flatnonzero(loud)
    quiet_before = np.diff(loud_blocks, prepend=-1) - 1
    boundary = quiet_before >= round(min_gap / BLOCK_SECONDS)
    boundary[:1] = True

    onsets = []
    for index in loud_blocks[boundary]:
        samples = np.abs(np.asarray(audio[index * block : (index + 1) * block]).astype(np.int32))
        onsets.append(int(index) * block + int(np.argmax(samples > level)))
    return np.array(onsets, dtype=np.int64)


def leading_silence(pcm: bytes) -> int:
    """Return the samples before the first sample above ``SILENCE_LEVEL``."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    loud = np.flatnonzero(np.abs(samples) > SILENCE_LEVEL * 32768)
    return int(loud[0]) if len(loud) else 0


def find_chapter_starts(
    audio: np.ndarray,
    markers: Sequence[int],
    first_pcm: Sequence[bytes],
    rate: int,
    settings: SynthesisSettings,
    min_gap: float,
) -> list[ChapterStart]:
    """Match each chapter to the speech onset nearest to where it should be, following the drift so far.

    A chapter should start speaking at its marker, plus the chapter silence, plus the
    leading silence of its first sentence's PCM.
    """
    onsets = speech_onsets(audio, rate, min_gap)
    chapter_gap = silence_samples(settings.chapter_silence, rate)
    max_distance = round(MAX_DISTANCE_SECONDS * rate)
    starts = []
    drift = 0
    for index, (marker, pcm) in enumerate(zip(markers, first_pcm), start=1):
        expected = marker + chapter_gap + leading_silence(pcm)
        guess = expected + drift
        nearest = int(onsets[np.argmin(np.abs(onsets - guess))]) if len(onsets) else guess
        found = abs(nearest - guess) <= max_distance
        if found:
            drift = nearest - expected
        starts.append(ChapterStart(index, expected, nearest, found))
    return starts


def drift_summary(starts: Sequence[ChapterStart], rate: int) -> dict[str, object]:
    """Fit drift in ms against marker time in hours and return the slope and the per-chapter drifts."""
    fitted = [start for start in starts if start.found]
    hours = np.array([start.expected / rate / 3600 for start in fitted])
    drift_ms = np.array([(start.onset - start.expected) / rate * 1000 for start in fitted])
    slope = float(np.polyfit(hours, drift_ms, 1)[0]) if len(fitted) > 1 and np.ptp(hours) > 0 else 0.0
    return {
        "drift_ms_per_hour": slope,
        "last_drift_ms": float(drift_ms[-1]) if len(drift_ms) else 0.0,
        "max_abs_drift_ms": float(np.max(np.abs(drift_ms))) if len(drift_ms) else 0.0,
        "chapters_fitted": len(fitted),
        "chapters_not_found": len(starts) - len(fitted),
        "chapters": [
            {"index": start.index, "expected_samples": start.expected, "onset_samples": start.onset,
             "drift_ms": round((start.onset - start.expected) / rate * 1000, 3), "found": start.found}
            for start in starts
        ],
    }


def measure_design(
    name: str, encoded: Path, markers: Sequence[int], first_pcm: Sequence[bytes],
    rate: int, settings: SynthesisSettings, args: argparse.Namespace, scratch: Path,
) -> dict[str, object]:
    """Decode one design's book, locate its chapters and summarize the drift."""
    if len(markers) != len(first_pcm):
        raise SystemExit(f"{name}: {len(markers)} markers for {len(first_pcm)} chapters")
    raw = scratch / f"{name}.raw"
    audio = decode_to_file(encoded, rate, raw)
    starts = find_chapter_starts(audio, markers, first_pcm, rate, settings, args.min_gap)
    summary = drift_summary(starts, rate)
    summary["audio_hours"] = len(audio) / rate / 3600
    del audio
    raw.unlink()
    logger.info(
        "%s: %.2f ms per hour, last chapter %.1f ms, %d chapters not found",
        name, summary["drift_ms_per_hour"], summary["last_drift_ms"], summary["chapters_not_found"],
    )
    return summary


def main() -> None:
    """Build both designs, measure their drift, print the table and then the ratio as the last line."""
    args = parse_arguments()
    benchlib.configure_logging(args.verbose)

    with benchlib.scratch_folder(args.output_dir, "fidelity", args.keep) as scratch:
        book_path, settings, sentences = select_book(args, scratch)
        pcm, rate = synthesize_all(settings, sentences)
        first_pcm = [chapter[0] for chapter in pcm]

        tool_file, tool_markers, tool_wall = build_with_tool(book_path, settings, scratch)
        tool = measure_design("tool", tool_file, tool_markers, first_pcm, rate, settings, args, scratch)

        segments, old_markers = old_design_segments(sentences, pcm, settings, rate)
        del pcm
        old_file = build_old_design(segments, rate, args.mp3_bitrate, scratch / "mp3")
        old = measure_design("old design", old_file, old_markers, first_pcm, rate, settings, args, scratch)

    designs = {"this tool (M4B)": tool, "old design (MP3 per sentence)": old}
    print(f"{sum(map(len, sentences))} sentences in {len(sentences)} chapters of {args.book.name}, engine {args.engine}")
    print(benchlib.markdown_table(
        ["design", "audio (h)", "drift (ms/h)", "last chapter (ms)", "max |drift| (ms)", "chapters not found"],
        [
            [name, f"{result['audio_hours']:.2f}", f"{result['drift_ms_per_hour']:.2f}", f"{result['last_drift_ms']:.1f}",
             f"{result['max_abs_drift_ms']:.1f}", result["chapters_not_found"]]
            for name, result in designs.items()
        ],
    ))

    ratio = abs(tool["drift_ms_per_hour"]) / max(abs(old["drift_ms_per_hour"]), 1e-9)
    benchlib.write_result(
        args.output_dir,
        "fidelity",
        {"book": str(args.book), "engine": args.engine, "tool_build_seconds": tool_wall,
         "tool": tool, "old_design": old, "ratio": ratio},
    )
    print(
        f"ratio tool/old-design drift per hour = {ratio:.2g} "
        f"(tool {tool['drift_ms_per_hour']:.2f} ms/h, old design {old['drift_ms_per_hour']:.1f} ms/h; lower is better)"
    )


if __name__ == "__main__":
    sys.exit(main())
