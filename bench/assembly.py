"""Measure the final concatenation of a long book's chapter files against copying the same bytes.

The script encodes ``--chapters`` chapter files (noise plus a tone, 22050 Hz mono, padded
to whole AAC frames, lengths spread from half to one and a half times the mean) through
``pipeline.audio.encode_aac``, ``--hours`` of audio in all. It then alternates two sides:

* assembly: ``pipeline.publish.concatenate_chapters`` joins the files into one M4B with
  chapter markers and tags, as the coordinator does at the end of a build;
* copy: ``shutil.copyfile`` copies every chapter file into another folder on the same
  file system, the same bytes with no parsing.

Two more sides explain the result and are not part of the ratio. In "demux only", ffmpeg
reads the same concat list into its null muxer, which costs the demuxing and packet
handling but writes no file. In "remux of one file", ffmpeg stream-copies the assembled
book, a single input, into a new MP4. In "full decode", ``pipeline.probe.decoded_samples``
decodes the assembled book. The output check does that for formats other than MP4. For
an M4B it reads the length from the box tables instead (``pipeline.mp4``).

After the rounds, one more assembly, not timed, polls the peak RSS of this process and
of its ffmpeg children every 50 ms. It shows how much memory the end of a build takes on
the coordinator.

Running the sides alternately and taking medians keeps the page cache equally warm for
both: after the first round every chapter file is in memory. The last line is the
median assembly time over the median copy time. Target: at most 3.

Run from the repository root::

    python bench/assembly.py                          # 200 chapters, 20 hours, 5 rounds
    python bench/assembly.py --chapters 20 --hours 1 --rounds 3

Generating 20 hours of AAC takes a few minutes on 2 cores. The JSON result goes to
``bench/results/assembly.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import benchlib
from pipeline.audio import AAC_FRAME_SAMPLES, encode_aac
from pipeline.ffmpeg import run_ffmpeg
from pipeline.probe import decoded_samples, read_metadata
from pipeline.publish import concatenate_chapters, render_concat_list
from pipeline.records import Book, ChapterMark

logger = logging.getLogger(__name__)

TARGET = 3.0
"""Maximum accepted ratio of assembly time to copy time."""

SAMPLE_RATE = 22050
"""Sample rate of the generated chapters, the rate of the bundled Piper voice."""


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", type=int, default=200, help="Chapter files to generate. [default: 200]")
    parser.add_argument("--hours", type=float, default=20.0, help="Audio of all chapters, in hours. [default: 20]")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds of assembly and copy. [default: 5]")
    parser.add_argument("--bitrate", default="64k", help="AAC bitrate of the chapters. [default: 64k, the CLI's]")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the chapter lengths and noise. [default: 1]")
    benchlib.add_common_arguments(parser)
    return parser.parse_args()


def chapter_lengths(chapters: int, hours: float, seed: int) -> list[int]:
    """Draw chapter lengths in samples, whole AAC frames each, adding up to about ``hours``."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, chapters)
    total_frames = hours * 3600 * SAMPLE_RATE / AAC_FRAME_SAMPLES
    frames = np.maximum(1, np.round(weights / weights.sum() * total_frames)).astype(int)
    return [int(count) * AAC_FRAME_SAMPLES for count in frames]


def encode_chapter(path: Path, samples: int, seed: int, bitrate: str) -> int:
    """Encode a chapter of noise and a 220 Hz tone to ``path`` and return the file size."""
    rng = np.random.default_rng(seed)
    tone = 2000 * np.sin(2 * np.pi * 220 * np.arange(samples) / SAMPLE_RATE)
    pcm = (rng.normal(0, 1500, samples) + tone).astype("<i2").tobytes()
    path.write_bytes(encode_aac(pcm, SAMPLE_RATE, bitrate))
    return path.stat().st_size


def generate_chapters(folder: Path, lengths: list[int], seed: int, bitrate: str) -> list[Path]:
    """Encode all chapters, two at a time (ffmpeg runs outside the GIL)."""
    paths = [folder / f"chapter-{index:04d}.m4a" for index in range(1, len(lengths) + 1)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [
            pool.submit(encode_chapter, path, samples, seed + index, bitrate)
            for index, (path, samples) in enumerate(zip(paths, lengths))
        ]
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            future.result()
            if done % 20 == 0 or done == len(futures):
                logger.info("encoded %d/%d chapters", done, len(futures))
    logger.info("generated %d chapter files in %.0f s", len(paths), time.perf_counter() - started)
    return paths


def chapter_marks(lengths: list[int]) -> list[ChapterMark]:
    """Lay the chapters end to end, as the book node does."""
    marks = []
    start = 0
    for index, samples in enumerate(lengths, start=1):
        marks.append(ChapterMark(index, f"Chapter {index}", start, samples, SAMPLE_RATE, sentence_count=0))
        start += samples
    return marks


def time_assembly(paths: list[Path], marks: list[ChapterMark], book: Book, work_dir: Path) -> float:
    """Concatenate the chapters into an M4B, leave it in ``work_dir`` and return the seconds taken."""
    output = work_dir / "assembled.m4b"
    started = time.perf_counter()
    concatenate_chapters(paths, book, marks, "benchmark", output, work_dir)
    return time.perf_counter() - started


def time_ffmpeg(arguments: list[str]) -> float:
    """Run ffmpeg with ``arguments`` and return the seconds taken."""
    started = time.perf_counter()
    run_ffmpeg(arguments)
    return time.perf_counter() - started


def time_demux_only(concat_list: Path) -> float:
    """Read the chapters through the concat demuxer into the null muxer and return the seconds taken."""
    return time_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(concat_list), "-map", "0:a", "-c:a", "copy", "-f", "null", "-"])


def time_remux(source: Path, target: Path) -> float:
    """Stream-copy one MP4 file into another and return the seconds taken."""
    return time_ffmpeg(["-i", str(source), "-map", "0:a", "-c:a", "copy", "-f", "mp4", "-y", str(target)])


def time_decode(path: Path) -> float:
    """Decode ``path`` fully and return the seconds taken."""
    started = time.perf_counter()
    decoded_samples(str(path))
    return time.perf_counter() - started


def time_copy(paths: list[Path], target: Path) -> float:
    """Copy every chapter file into ``target`` and return the seconds taken."""
    target.mkdir(exist_ok=True)
    started = time.perf_counter()
    for path in paths:
        shutil.copyfile(path, target / path.name)
    return time.perf_counter() - started


def check_output(output: Path, chapters: int) -> None:
    """Check that the assembled book has one marker per chapter."""
    _, probed = read_metadata(str(output))
    if len(probed) != chapters:
        raise SystemExit(f"the assembled book has {len(probed)} chapter markers, expected {chapters}")


def measure_assembly_memory(paths: list[Path], marks: list[ChapterMark], book: Book, work_dir: Path) -> dict[str, int]:
    """Assemble once more, untimed, and return peak RSS in bytes of this process and of its children.

    The children are the ffmpeg processes that concatenate the chapters and add the tags,
    polled every 50 ms. The figure explains the coordinator's memory at the end of a build.
    """
    sampler = benchlib.PeakSampler(0.05)
    sampler.watch("python", os.getpid(), scope="process")
    sampler.watch("ffmpeg", os.getpid(), scope="children")
    before = benchlib.tree_rss(os.getpid(), scope="process")

    sampler.start()
    time_assembly(paths, marks, book, work_dir)
    sampler.stop()

    (work_dir / "assembled.m4b").unlink()
    return {**sampler.peaks, "python before": before}


def run_rounds(
    args: argparse.Namespace, paths: list[Path], marks: list[ChapterMark], scratch: Path
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Alternate assembly and copy for ``args.rounds`` rounds, removing each output afterwards.

    Returns the times of every side and the peak RSS of one more, untimed assembly.
    """
    book = Book(path="generated", title="Assembly benchmark", authors=("benchmark",), language="en", chapters=())
    work_dir = scratch / "assembly"
    copy_dir = scratch / "copy"
    work_dir.mkdir()
    concat_list = scratch / "demux-only.ffconcat"
    concat_list.write_text(render_concat_list(paths), encoding="utf-8")
    times: dict[str, list[float]] = {
        "assembly": [], "copy": [], "demux only": [], "remux of one file": [], "full decode": [],
    }

    for round_index in range(1, args.rounds + 1):
        assembled = work_dir / "assembled.m4b"
        times["assembly"].append(time_assembly(paths, marks, book, work_dir))
        if round_index == 1:
            check_output(assembled, len(paths))
        times["demux only"].append(time_demux_only(concat_list))
        times["remux of one file"].append(time_remux(assembled, scratch / "remuxed.m4b"))
        times["full decode"].append(time_decode(assembled))
        assembled.unlink()
        (scratch / "remuxed.m4b").unlink()

        times["copy"].append(time_copy(paths, copy_dir))
        shutil.rmtree(copy_dir)
        logger.info(
            "round %d/%d: assembly %.2f s, copy %.2f s",
            round_index, args.rounds, times["assembly"][-1], times["copy"][-1],
        )

    memory = measure_assembly_memory(paths, marks, book, work_dir)
    logger.info(
        "assembly memory: ffmpeg children peak %d MiB, this process %d MiB (%d MiB before)",
        memory["ffmpeg"] >> 20, memory["python"] >> 20, memory["python before"] >> 20,
    )
    return times, memory


def main() -> None:
    """Generate the chapters, run the rounds, print the table and then the ratio as the last line."""
    args = parse_arguments()
    benchlib.configure_logging(args.verbose)
    lengths = chapter_lengths(args.chapters, args.hours, args.seed)

    with benchlib.scratch_folder(args.output_dir, "assembly", args.keep) as scratch:
        chapter_dir = scratch / "chapters"
        chapter_dir.mkdir()
        paths = generate_chapters(chapter_dir, lengths, args.seed, args.bitrate)
        total_bytes = sum(path.stat().st_size for path in paths)
        times, memory = run_rounds(args, paths, chapter_marks(lengths), scratch)

    medians = {side: benchlib.median(values) for side, values in times.items()}
    ratio = medians["assembly"] / medians["copy"]
    audio_hours = sum(lengths) / SAMPLE_RATE / 3600
    packets = sum(-(-samples // AAC_FRAME_SAMPLES) for samples in lengths)
    print(f"{args.chapters} chapters, {audio_hours:.2f} h of audio, {total_bytes / 2**20:.0f} MiB, {packets} AAC packets")
    print(benchlib.markdown_table(
        ["side", "times (s)", "median (s)", "MiB/s", "µs per packet"],
        [
            [side, ", ".join(f"{value:.2f}" for value in values), f"{medians[side]:.2f}",
             f"{total_bytes / 2**20 / medians[side]:.0f}", f"{medians[side] / packets * 1e6:.2f}"]
            for side, values in times.items()
        ],
    ))
    print(
        f"assembly peak RSS: ffmpeg {memory['ffmpeg'] / 2**20:.0f} MiB, "
        f"Python {memory['python'] / 2**20:.0f} MiB ({memory['python before'] / 2**20:.0f} MiB before)"
    )

    benchlib.write_result(
        args.output_dir,
        "assembly",
        {
            "chapters": args.chapters,
            "audio_hours": audio_hours,
            "total_bytes": total_bytes,
            "aac_packets": packets,
            "times": times,
            "peak_rss_bytes": memory,
            "ratio": round(ratio, 3),
            "target": TARGET,
        },
    )
    print(f"ratio assembly/copy = {ratio:.2f} (target <= {TARGET:.2f})")


if __name__ == "__main__":
    sys.exit(main())
