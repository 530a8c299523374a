"""Measure the peak memory of the coordinator and of a worker for a short and a long book.

The script writes two Markdown books from real corpus chapters: a short one of about
``--short-minutes`` of audio and a long one of about ``--long-hours``, sized at 15
characters per second. Both take the chapters of pride-and-prejudice.txt and then
moby-dick.epub in order, starting again from the first when they run out. For each book it starts a
fresh ``dask scheduler`` and one ``dask worker --no-nanny`` on 127.0.0.1, runs
``audiobook build --scheduler-file ... --engine espeak`` against them with a new sentence
cache and work folder in the run's folder (the cache is on by default, and nothing of an
earlier run is reused), and polls with psutil every ``--interval`` seconds:

* coordinator: the ``audiobook build`` process and all its child processes (ffmpeg);
* worker: the worker process and all its children (the engine host process, ffmpeg);
* scheduler: the scheduler process, for information.

Each figure is the peak over the run of the summed resident set size (RSS) of those
processes. Summing RSS counts pages shared between processes more than once, the same
way for both books. The last line is the long book's peak over the short book's, for the
coordinator and for the worker. Target: at most 1.2 for each.

Run from the repository root::

    python bench/memory.py                            # 30 minutes and 20 hours of audio
    python bench/memory.py --short-minutes 5 --long-hours 1

The long book takes several minutes (espeak-ng speaks about 1500 times faster than real
time here, and encoding 20 hours of AAC takes about 4 minutes). The JSON result goes to
``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import benchlib
from audiobook.coordinator import prepare_book
from pipeline.records import Chapter, SynthesisSettings

logger = logging.getLogger(__name__)

TARGET = 1.2
"""Maximum accepted ratio of the long book's peak memory to the short book's."""

SOURCE_BOOKS = ("pride-and-prejudice.txt", "moby-dick.epub")
"""Corpus books whose chapters make up the generated books."""

STARTUP_TIMEOUT = 60.0
"""Seconds to wait for the scheduler file and for the worker to connect."""


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short-minutes", type=float, default=30.0, help="Audio of the short book, in minutes. [default: 30]")
    parser.add_argument("--long-hours", type=float, default=20.0, help="Audio of the long book, in hours. [default: 20]")
    parser.add_argument(
        "--corpus", type=Path, default=benchlib.DEFAULT_CORPUS,
        help="Folder with the source books. [default: ../shared/corpus]",
    )
    parser.add_argument("--nthreads", type=int, default=1, help="Threads of the worker. [default: 1]")
    parser.add_argument("--interval", type=float, default=0.05, help="Seconds between memory polls. [default: 0.05]")
    benchlib.add_common_arguments(parser)
    return parser.parse_args()


def source_chapters(corpus: Path) -> list[Chapter]:
    """Read the source books' chapters in order, as the build reads them."""
    chapters: list[Chapter] = []
    for name in SOURCE_BOOKS:
        book, _, _ = prepare_book(corpus / name, SynthesisSettings(engine="espeak", language=""))
        chapters += book.chapters
    return chapters


def cycle_chapters(chapters: list[Chapter], target_chars: int) -> list[Chapter]:
    """Take chapters in order, repeating the list, until they reach ``target_chars`` characters."""
    chosen: list[Chapter] = []
    total = 0
    while total < target_chars:
        chapter = chapters[len(chosen) % len(chapters)]
        chosen.append(chapter)
        total += len(chapter.text)
    return chosen


def wait_for_file(path: Path, timeout: float) -> None:
    """Wait until ``path`` exists and is not empty."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear within {timeout:.0f} s; see the logs beside it")
        time.sleep(0.2)


def wait_for_worker(scheduler_file: Path, timeout: float) -> None:
    """Wait until one worker has connected to the scheduler."""
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout=timeout) as client:
        client.wait_for_workers(1, timeout=timeout)


@contextmanager
def dask_pair(scratch: Path, nthreads: int) -> Iterator[tuple[Path, subprocess.Popen, subprocess.Popen]]:
    """Start a scheduler and one worker on 127.0.0.1 and stop both on exit."""
    scheduler_file = scratch / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    with (scratch / "scheduler.log").open("wb") as scheduler_log, (scratch / "worker.log").open("wb") as worker_log:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            stdout=scheduler_log, stderr=subprocess.STDOUT,
        )
        worker = None
        try:
            wait_for_file(scheduler_file, STARTUP_TIMEOUT)
            worker = subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file),
                 "--host", "127.0.0.1", "--nthreads", str(nthreads), "--no-nanny", "--no-dashboard"],
                stdout=worker_log, stderr=subprocess.STDOUT,
            )
            wait_for_worker(scheduler_file, STARTUP_TIMEOUT)
            logger.info("scheduler %d and worker %d are up", scheduler.pid, worker.pid)
            yield scheduler_file, scheduler, worker
        finally:
            for process in (worker, scheduler):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)


def measure_book(name: str, book_path: Path, scratch: Path, args: argparse.Namespace) -> dict[str, object]:
    """Build one book against a fresh scheduler and worker and return the peaks and the run's numbers."""
    run_dir = scratch / name
    run_dir.mkdir()
    output = run_dir / f"{name}.m4b"
    report_path = run_dir / "report.json"

    with dask_pair(run_dir, args.nthreads) as (scheduler_file, scheduler, worker):
        sampler = benchlib.PeakSampler(args.interval)
        sampler.watch("scheduler", scheduler.pid)
        sampler.watch("worker", worker.pid)
        sampler.start()
        command = benchlib.audiobook_command(
            "build", str(book_path), "-o", str(output), "--engine", "espeak",
            "--scheduler-file", str(scheduler_file), "--report", str(report_path),
            # The sentence cache is on by default, and with it chapters that wait for the
            # book's gain hold no audio. A new cache and work folder per run keep that
            # path without reuse. --fresh would keep every chapter's audio instead.
            "--cache", str(run_dir / "sentences"), "--work-dir", str(run_dir / "work"),
        )
        started = time.perf_counter()
        with (run_dir / "build.log").open("wb") as log:
            build = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            sampler.watch("coordinator", build.pid)
            code = build.wait()
        wall = time.perf_counter() - started
        sampler.stop()

    if code != 0:
        raise SystemExit(f"audiobook build of the {name} book failed with exit code {code}; see {run_dir / 'build.log'}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    output.unlink()
    logger.info(
        "%s book: %.1f h of audio in %.0f s; peaks: coordinator %.0f MiB, worker %.0f MiB, scheduler %.0f MiB",
        name, report["audio_duration"] / 3600, wall, sampler.peaks["coordinator"] / 2**20,
        sampler.peaks["worker"] / 2**20, sampler.peaks["scheduler"] / 2**20,
    )
    return {
        "audio_seconds": report["audio_duration"],
        "chapters": len(report["chapters"]),
        "sentences": report["total_sentences"],
        "wall_seconds": wall,
        "peak_rss_bytes": dict(sampler.peaks),
    }


def write_books(args: argparse.Namespace, scratch: Path) -> dict[str, Path]:
    """Write the short and the long Markdown book and return their paths by name."""
    chapters = source_chapters(args.corpus)
    targets = {
        "short": round(args.short_minutes * 60 * benchlib.CHARS_PER_SECOND),
        "long": round(args.long_hours * 3600 * benchlib.CHARS_PER_SECOND),
    }
    paths = {}
    for name, target_chars in targets.items():
        chosen = cycle_chapters(chapters, target_chars)
        renumbered = [Chapter(index, chapter.title, chapter.paragraphs) for index, chapter in enumerate(chosen, start=1)]
        path = scratch / f"memory-{name}.md"
        benchlib.write_markdown_book(path, f"Memory benchmark, {name}", "en", renumbered)
        paths[name] = path
        logger.info("%s book: %d chapters, about %d characters", name, len(chosen), target_chars)
    return paths


def main() -> None:
    """Measure both books, print the table and then the ratio as the last line."""
    args = parse_arguments()
    benchlib.configure_logging(args.verbose)

    with benchlib.scratch_folder(args.output_dir, "memory", args.keep) as scratch:
        books = write_books(args, scratch)
        results = {name: measure_book(name, path, scratch, args) for name, path in books.items()}

    roles = ("coordinator", "worker", "scheduler")
    ratios = {role: results["long"]["peak_rss_bytes"][role] / results["short"]["peak_rss_bytes"][role] for role in roles}
    rows = []
    for name, result in results.items():
        peaks = result["peak_rss_bytes"]
        rows.append([
            name, f"{result['audio_seconds'] / 3600:.2f}", result["chapters"], result["sentences"],
            f"{result['wall_seconds']:.0f}", *(f"{peaks[role] / 2**20:.0f}" for role in roles),
        ])
    rows.append(["long/short", "", "", "", "", *(f"{ratios[role]:.2f}" for role in roles)])
    print(benchlib.markdown_table(
        ["book", "audio (h)", "chapters", "sentences", "wall (s)", "coordinator (MiB)", "worker (MiB)", "scheduler (MiB)"],
        rows,
    ))

    benchlib.write_result(
        args.output_dir,
        "memory",
        {"books": results, "ratios": ratios, "target": TARGET},
    )
    worst = max(ratios["coordinator"], ratios["worker"])
    print(
        f"ratio long/short peak RSS = {worst:.2f} (coordinator {ratios['coordinator']:.2f}, "
        f"worker {ratios['worker']:.2f}; target <= {TARGET:.2f} for each)"
    )


if __name__ == "__main__":
    sys.exit(main())
