"""Helpers shared by the benchmark scripts in this folder.

The scripts import this module as ``benchlib``, which works when they run as
``python bench/NAME.py`` because Python puts the script's folder first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from pipeline.records import Book, Chapter, Sentence

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[1]
"""The repository root: the folder above ``bench/``."""

DEFAULT_CORPUS = REPOSITORY.parent / "shared" / "corpus"
"""The shared corpus of real books, beside the repository."""

DEFAULT_RESULTS = REPOSITORY / "bench" / "results"
"""Folder for the JSON results when ``--output-dir`` is not given."""

CHARS_PER_SECOND = 15.0
"""Rough speaking rate used to size a book before synthesis. Piper's bundled voice and
espeak-ng both measured about 18 to 19 characters per second here, so books sized with
this rate come out about 20 % shorter than the target."""

_WHITESPACE = re.compile(r"[^\S\u00a0\u202f]+")
"""Whitespace that the readers collapse. No-break spaces are not included, because the readers keep them."""

_MARKDOWN_LINE_START = re.compile(r"^(?:[#>+*-]|\d{1,9}[.)]|=+\s*$|`{3}|~{3})")
"""Line starts that the Markdown reader would take for structure, not text."""


@dataclass(frozen=True)
class Selection:
    """Chapters chosen from a book, with their sentences as ``prepare_book`` split them."""

    chapters: tuple[Chapter, ...]
    """The chosen chapters, possibly with the last one cut after a paragraph."""

    sentences: tuple[tuple[Sentence, ...], ...]
    """Sentences of each chosen chapter, from the original book's split."""

    @property
    def characters(self) -> int:
        """Characters the engine speaks."""
        return sum(len(sentence.speech_text) for chapter in self.sentences for sentence in chapter)

    @property
    def sentence_count(self) -> int:
        """Number of sentences in all chosen chapters."""
        return sum(len(chapter) for chapter in self.sentences)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--output-dir`` and ``-v``, which every script takes."""
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_RESULTS,
        help="Folder for the JSON result and scratch files. [default: bench/results]",
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="Keep the scratch folder (books, logs of the runs) in the output folder instead of removing it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")


@contextlib.contextmanager
def scratch_folder(output_dir: Path, prefix: str, keep: bool) -> Iterator[Path]:
    """Yield a new folder inside ``output_dir`` and remove it afterwards.

    The folder stays when ``keep`` is set or when the block raised, so that the logs of a
    failed run can be read.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=output_dir))
    succeeded = False
    try:
        yield folder
        succeeded = True
    finally:
        if keep or not succeeded:
            logger.info("kept the scratch folder %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def configure_logging(verbose: bool) -> None:
    """Send progress to stderr, so that stdout carries only the result lines."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def machine_info() -> dict[str, object]:
    """Describe the machine and the code under test, for the JSON result."""
    cpu_model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break

    memory_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kib / 2**20, 1),
        "cpu_model": cpu_model,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "commit": commit,
    }


class PeakSampler:
    """Poll processes in a background thread and keep the peak summed RSS of each watched set."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._watched: dict[str, tuple[int, str]] = {}
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, pid: int, scope: str = "tree") -> None:
        """Add the process ``pid`` under ``name``.

        ``scope`` is "tree" for the process and its descendants, "process" for it alone,
        or "children" for its descendants alone.
        """
        if scope not in ("tree", "process", "children"):
            raise ValueError(f"scope must be 'tree', 'process' or 'children', got {scope!r}")
        self._watched[name] = (pid, scope)
        self.peaks.setdefault(name, 0)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the last poll."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, (pid, scope) in list(self._watched.items()):
                self.peaks[name] = max(self.peaks[name], tree_rss(pid, scope))
            time.sleep(self._interval)


def tree_rss(pid: int, scope: str = "tree") -> int:
    """Return the summed RSS in bytes of ``pid`` and its descendants, or 0 once it has exited.

    ``scope`` "process" counts ``pid`` alone and "children" its descendants alone.
    """
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True) if scope != "process" else []
    except psutil.NoSuchProcess:
        return 0
    processes = children if scope == "children" else [root, *children]
    # NOTE: a child between fork and exec still maps its parent's pages, so RSS counts them
    # twice. On a loaded machine that window is longer, and peaks move with the load.
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def write_result(output_dir: Path, name: str, result: dict[str, object]) -> Path:
    """Write ``result`` with the machine description to ``output_dir/NAME.json``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.json"
    document = {"benchmark": name, "command": sys.argv, "machine": machine_info(), **result}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)
    return path


def median(values: Sequence[float]) -> float:
    """Return the median of ``values``."""
    return float(statistics.median(values))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format rows as a Markdown table, so the output can be pasted into the docs."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def run_timed(command: Sequence[str], log_path: Path | None = None) -> float:
    """Run ``command`` to completion and return its wall time in seconds.

    The command's stdout and stderr go to ``log_path`` (or are discarded).

    Raises
    ------
    SystemExit
        When the command exits with a non-zero status; the message names the log file.
    """
    logger.debug("running %s", subprocess.list2cmdline(command))
    started = time.perf_counter()
    if log_path is None:
        completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    else:
        with log_path.open("wb") as log:
            completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise SystemExit(
            f"{subprocess.list2cmdline(command)} failed with exit code {completed.returncode}; "
            f"its output is in {log_path or 'nowhere (no log file was given)'}"
        )
    return time.perf_counter() - started


def audiobook_command(*arguments: str) -> list[str]:
    """Return the command line that runs the ``audiobook`` CLI with this interpreter."""
    return [sys.executable, "-m", "audiobook", *arguments]


@functools.lru_cache(maxsize=1)
def _build_help() -> str:
    return subprocess.run(audiobook_command("build", "--help"), capture_output=True, text=True, check=True).stdout


def no_reuse_options(scratch: Path) -> tuple[str, ...]:
    """Return the ``audiobook build`` options that make one run synthesize every sentence.

    Builds keep a sentence cache and the finished chapters of earlier runs. A benchmark
    that repeats a build must not reuse them, so each call gives a new, empty
    sentence cache and work folder under ``scratch``. The run then takes the default path
    (cache on and read, chapters laid out again from it) with nothing to reuse.
    ``--fresh`` would not do, because it keeps every chapter's audio until the gain is known.
    The options are read from ``audiobook build --help``, so a CLI without them gets none.
    """
    help_text = _build_help()
    run_folder = Path(tempfile.mkdtemp(prefix="no-reuse-", dir=scratch))
    options: list[str] = []
    if "--cache" in help_text:
        options += ["--cache", str(run_folder / "sentences")]
    if "--work-dir" in help_text:
        options += ["--work-dir", str(run_folder / "work")]
    elif "--fresh" in help_text:
        options.append("--fresh")
    logger.debug("audiobook build runs with %s so that no run reuses earlier audio", options or "no extra options")
    return tuple(options)


def select_chapters(
    book: Book,
    sentences: Sequence[Sequence[Sentence]],
    target_chars: int,
    first_chapter: int = 1,
    cut_last: bool = False,
) -> Selection:
    """Choose chapters in book order, starting at ``first_chapter``, until about ``target_chars``.

    A chapter is taken whole when the total stays within 110 % of the target. The walk
    stops once the total reaches 90 % of the target. With ``cut_last``, a chapter that
    would overshoot is cut after the paragraph that reaches the target, so a short
    excerpt need not be a whole chapter.
    """
    chosen_chapters: list[Chapter] = []
    chosen_sentences: list[tuple[Sentence, ...]] = []
    total = 0

    for chapter, chapter_sentences in zip(book.chapters, sentences):
        if chapter.index < first_chapter or total >= 0.9 * target_chars:
            continue
        size = sum(len(sentence.speech_text) for sentence in chapter_sentences)
        if total + size <= 1.1 * target_chars:
            chosen_chapters.append(chapter)
            chosen_sentences.append(tuple(chapter_sentences))
            total += size
        elif cut_last:
            head, head_sentences = _cut_chapter(chapter, chapter_sentences, target_chars - total)
            chosen_chapters.append(head)
            chosen_sentences.append(head_sentences)
            total += sum(len(sentence.speech_text) for sentence in head_sentences)

    if not chosen_chapters:
        raise ValueError(
            f"no chapter of {book.path} from chapter {first_chapter} on fits about "
            f"{target_chars} characters; pick another book, first chapter or length"
        )
    return Selection(tuple(chosen_chapters), tuple(chosen_sentences))


def _cut_chapter(
    chapter: Chapter, sentences: Sequence[Sentence], budget_chars: int
) -> tuple[Chapter, tuple[Sentence, ...]]:
    """Keep the chapter's first paragraphs until they hold ``budget_chars`` characters."""
    kept_sentences: list[Sentence] = []
    paragraphs = 0
    size = 0
    for sentence in sentences:
        kept_sentences.append(sentence)
        size += len(sentence.speech_text)
        if sentence.paragraph_end:
            paragraphs += 1
            if size >= budget_chars:
                break
    head = Chapter(chapter.index, chapter.title, chapter.paragraphs[: max(1, paragraphs)], chapter.source)
    return head, tuple(kept_sentences)


def escape_markdown_line(text: str) -> str:
    """Escape a paragraph's first character when the Markdown reader would parse it as markup."""
    if _MARKDOWN_LINE_START.match(text):
        return "\\" + text
    return text


def write_markdown_book(path: Path, title: str, language: str, chapters: Sequence[Chapter]) -> None:
    """Write chapters as a Markdown book that ``audiobook build`` reads back into the same chapters.

    Each chapter's first paragraph becomes its ``##`` heading, because the readers keep
    a chapter's heading as its first paragraph. Paragraphs are written on one line each.
    Inline markup characters are not escaped: callers compare the sentences read back
    (see ``compare_sentences``).
    """
    lines = ["---", f"title: {title}", f"language: {language}", "---", "", f"# {title}", ""]
    for chapter in chapters:
        heading, *body = chapter.paragraphs
        lines += [f"## {_collapse(heading)}", ""]
        for paragraph in body:
            lines += [escape_markdown_line(_collapse(paragraph)), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def compare_sentences(
    expected: Sequence[Sequence[Sentence]], actual: Sequence[Sequence[Sentence]]
) -> int:
    """Return how many sentences differ in text between two splits of the same chapters.

    A count that differs counts every sentence of the longer chapter past the shorter one.
    """
    differences = abs(len(expected) - len(actual))
    for want, got in zip(expected, actual):
        differences += abs(len(want) - len(got))
        differences += sum(1 for a, b in zip(want, got) if a.speech_text != b.speech_text)
    return differences
