"""Measure the wall time of ``audiobook build`` against the Piper engine alone on the same sentences.

The script picks whole chapters of a real book, in book order, until they make about
``--minutes`` of audio (sized at 15 characters per second), and writes them to a
temporary Markdown book. Both sides speak that book's sentences:

* engine alone: Piper in fresh processes, with no Dask, no encoding and no files. It
  runs in three settings: 1 process with 1 ONNX intra-op thread, 1 process with 2
  threads, and 2 processes with 1 thread each. The two processes get halves of the
  sentences, balanced by characters.
  The faster one-process setting (by median) is the baseline: one plain process with
  its best thread setting. Its wall time covers starting the process, importing Piper,
  loading the voice and synthesizing. The two-process setting is reported beside it.
* pipeline: ``audiobook build`` of the Markdown book on the embedded cluster with its
  defaults, timed from the command's start to its exit.

Each round runs every engine setting and then the pipeline, so noise on this shared
machine hits both sides alike. The result is the median pipeline time over the median
time of the faster one-process engine setting. Target: at most 1.10. The line before it
gives the pipeline over the fastest setting of all, which may be the two processes.

Run from the repository root::

    python bench/overhead.py                      # about 15 minutes of audio, 5 rounds
    python bench/overhead.py --minutes 3 --rounds 1

The JSON result goes to ``bench/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import benchlib
from audiobook.coordinator import prepare_book
from pipeline.records import SynthesisSettings

logger = logging.getLogger(__name__)

TARGET = 1.10
"""Maximum accepted ratio of pipeline wall time to engine-only wall time."""


@dataclass(frozen=True)
class EngineSetting:
    """One way to run the engine alone: how many processes, each with how many threads."""

    name: str
    """Label in the table and the JSON result."""

    processes: int
    """Processes that share the sentences."""

    threads: int
    """ONNX Runtime intra-op threads in each process."""


ENGINE_SETTINGS = (
    EngineSetting("engine, 1 process x 1 thread", 1, 1),
    EngineSetting("engine, 1 process x 2 threads", 1, 2),
    EngineSetting("engine, 2 processes x 1 thread", 2, 1),
)


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--book",
        type=Path,
        default=benchlib.DEFAULT_CORPUS / "alice-1916-abridged.epub",
        help="Book to take chapters from. [default: alice-1916-abridged.epub in the corpus]",
    )
    parser.add_argument(
        "--minutes", type=float, default=15.0,
        help="Audio to select, in minutes, estimated at 15 characters per second. [default: 15]",
    )
    parser.add_argument(
        "--first-chapter", type=int, default=1, help="Chapter index to start the selection at. [default: 1]"
    )
    parser.add_argument("--rounds", type=int, default=5, help="Rounds of all sides. [default: 5]")
    parser.add_argument(
        "--workers", type=int, help="Passed to `audiobook build --workers`. [default: the CLI's own, one per core]"
    )
    benchlib.add_common_arguments(parser)
    return parser.parse_args()


def speak_texts(texts: list[str], threads: int) -> tuple[float, float, int, int]:
    """Load Piper and speak ``texts`` in this process.

    Returns
    -------
    tuple
        Seconds to load the voice, seconds to synthesize, samples spoken, sample rate.
    """
    from pipeline.speech.piper import PiperEngine

    started = time.perf_counter()
    engine = PiperEngine(threads=threads)
    loaded = time.perf_counter()
    samples = 0
    for text in texts:
        samples += len(engine.synthesize(text)) // 2
    return loaded - started, time.perf_counter() - loaded, samples, engine.sample_rate


def split_balanced(texts: list[str], parts: int) -> list[list[str]]:
    """Deal texts to ``parts`` lists, longest first, each to the list with the fewest characters."""
    shares: list[list[str]] = [[] for _ in range(parts)]
    sizes = [0] * parts
    for text in sorted(texts, key=len, reverse=True):
        smallest = sizes.index(min(sizes))
        shares[smallest].append(text)
        sizes[smallest] += len(text)
    return shares


def run_engine(setting: EngineSetting, texts: list[str]) -> dict[str, float]:
    """Run the engine alone in fresh spawned processes and return its timings."""
    shares = split_balanced(texts, setting.processes)
    context = multiprocessing.get_context("spawn")

    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(setting.processes, mp_context=context) as pool:
        futures = [pool.submit(speak_texts, share, setting.threads) for share in shares]
        results = [future.result() for future in futures]
    wall = time.perf_counter() - started

    samples = sum(result[2] for result in results)
    return {
        "wall_seconds": wall,
        "load_seconds": max(result[0] for result in results),
        "synthesis_seconds": max(result[1] for result in results),
        "audio_seconds": samples / results[0][3],
    }


def run_pipeline(book_path: Path, scratch: Path, round_index: int, workers: int | None) -> dict[str, float]:
    """Run ``audiobook build`` on the Markdown book and return its timings and counts."""
    output = scratch / "overhead.m4b"
    report_path = scratch / "overhead-report.json"
    arguments = [
        "build", str(book_path), "-o", str(output), "--overwrite", "--report", str(report_path),
        *benchlib.no_reuse_options(scratch),
    ]
    if workers:
        arguments += ["--workers", str(workers)]

    wall = benchlib.run_timed(benchlib.audiobook_command(*arguments), scratch / f"overhead-build-{round_index}.log")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    output.unlink()
    return {
        "wall_seconds": wall,
        "report_wall_seconds": float(report["wall_time"]),
        "audio_seconds": float(report["audio_duration"]),
        "sentences": int(report["total_sentences"]),
    }


def prepare_markdown_book(args: argparse.Namespace, scratch: Path) -> tuple[Path, list[str], dict[str, object]]:
    """Select chapters, write them as a Markdown book, and check that it reads back the same.

    Returns the book path, the sentence texts to speak, and a description for the result.
    """
    settings = SynthesisSettings(language="")
    book, settings, sentences = prepare_book(args.book, settings)
    target_chars = round(args.minutes * 60 * benchlib.CHARS_PER_SECOND)
    try:
        selection = benchlib.select_chapters(book, sentences, target_chars, args.first_chapter)
    except ValueError as err:
        raise SystemExit(str(err)) from err

    book_path = scratch / "overhead-book.md"
    benchlib.write_markdown_book(book_path, book.title, settings.language, selection.chapters)
    _, _, read_back = prepare_book(book_path, SynthesisSettings(language=""))
    differences = benchlib.compare_sentences(selection.sentences, read_back)
    if differences:
        logger.warning("%d sentences of the Markdown book differ from the original's split", differences)

    texts = [sentence.speech_text for chapter in read_back for sentence in chapter]
    description = {
        "book": str(args.book),
        "chapters": [chapter.index for chapter in selection.chapters],
        "sentences": len(texts),
        "characters": sum(map(len, texts)),
        "estimated_minutes": round(sum(map(len, texts)) / benchlib.CHARS_PER_SECOND / 60, 1),
        "sentences_differing_from_original": differences,
    }
    logger.info(
        "selected chapters %s of %s: %d sentences, %d characters, about %.1f minutes",
        description["chapters"], args.book.name, len(texts), description["characters"],
        description["estimated_minutes"],
    )
    return book_path, texts, description


def run_rounds(args: argparse.Namespace, book_path: Path, texts: list[str], scratch: Path) -> dict[str, list[dict[str, float]]]:
    """Run every engine setting and then the pipeline, ``args.rounds`` times."""
    runs: dict[str, list[dict[str, float]]] = {setting.name: [] for setting in ENGINE_SETTINGS}
    runs["pipeline"] = []

    for round_index in range(1, args.rounds + 1):
        for setting in ENGINE_SETTINGS:
            timing = run_engine(setting, texts)
            runs[setting.name].append(timing)
            logger.info("round %d/%d: %s: %.1f s", round_index, args.rounds, setting.name, timing["wall_seconds"])

        timing = run_pipeline(book_path, scratch, round_index, args.workers)
        if timing["sentences"] != len(texts):
            raise SystemExit(
                f"the pipeline spoke {timing['sentences']} sentences but the engine spoke {len(texts)}; "
                "the two sides are not comparable"
            )
        runs["pipeline"].append(timing)
        logger.info("round %d/%d: pipeline: %.1f s", round_index, args.rounds, timing["wall_seconds"])
    return runs


def summarize(runs: dict[str, list[dict[str, float]]]) -> tuple[list[list[object]], str, float, str, float]:
    """Build the table rows and return them with the baseline's name and ratio, then the
    fastest engine setting's name and the pipeline's ratio to it."""
    medians = {name: benchlib.median([run["wall_seconds"] for run in timings]) for name, timings in runs.items()}
    one_process = [setting.name for setting in ENGINE_SETTINGS if setting.processes == 1]
    baseline = min(one_process, key=medians.__getitem__)
    ratio = medians["pipeline"] / medians[baseline]
    fastest = min((name for name in medians if name != "pipeline"), key=medians.__getitem__)
    fastest_ratio = medians["pipeline"] / medians[fastest]

    rows = []
    for name, timings in runs.items():
        walls = ", ".join(f"{run['wall_seconds']:.1f}" for run in timings)
        label = f"{name} (baseline)" if name == baseline else name
        rows.append([label, walls, f"{medians[name]:.1f}", f"{medians[name] / medians[baseline]:.2f}"])
    return rows, baseline, ratio, fastest, fastest_ratio


def main() -> None:
    """Run the benchmark and print the table, then the ratio as the last line."""
    args = parse_arguments()
    benchlib.configure_logging(args.verbose)

    with benchlib.scratch_folder(args.output_dir, "overhead", args.keep) as scratch:
        book_path, texts, selection = prepare_markdown_book(args, scratch)
        runs = run_rounds(args, book_path, texts, scratch)

    rows, baseline, ratio, fastest, fastest_ratio = summarize(runs)
    audio_seconds = runs["pipeline"][0]["audio_seconds"]
    print(
        f"{selection['sentences']} sentences, {audio_seconds / 60:.1f} min of audio "
        f"(chapters {selection['chapters']} of {args.book.name})"
    )
    print(benchlib.markdown_table(["side", "wall times (s)", "median (s)", "vs baseline"], rows))
    inside = benchlib.median([run["report_wall_seconds"] for run in runs["pipeline"]])
    print(f"pipeline: median {inside:.1f} s inside build_audiobook (the report's wall_time), the rest is CLI and cluster start and stop")

    benchlib.write_result(
        args.output_dir,
        "overhead",
        {
            "selection": selection,
            "runs": runs,
            "baseline": baseline,
            "ratio": round(ratio, 3),
            "fastest_setting": fastest,
            "ratio_to_fastest_setting": round(fastest_ratio, 3),
            "target": TARGET,
        },
    )
    print(f"pipeline/fastest engine setting ({fastest}) = {fastest_ratio:.2f}")
    print(f"ratio pipeline/engine-only = {ratio:.2f} (target <= {TARGET:.2f}; baseline: {baseline})")


if __name__ == "__main__":
    sys.exit(main())
