"""Build every book of a corpus folder with the real CLI and check the audiobooks.

For each book: the run exits with 0; the markers that ffmpeg reads back have the titles of
the report's chapters, in order, and start where the report's chapters start; the decoded
length matches the report's total within 50 ms per chapter; no chapter is empty. Prints one
line per book and a summary, and exits with 1 when any book fails a check.

    python scripts/check_corpus.py ../shared/corpus --engine espeak
    python scripts/check_corpus.py ../shared/corpus --books wasteland.epub alice-1916-abridged.epub
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.ingest import SUPPORTED_SUFFIXES
from pipeline.probe import decoded_samples, read_metadata

logger = logging.getLogger(__name__)

TOLERANCE_PER_CHAPTER = 0.050
"""Allowed gap between decoded length and report total, in seconds per chapter."""


def check_book(book: Path, folder: Path, options: list[str]) -> dict:
    """Build ``book`` into ``folder`` and return the measured facts and any failures."""
    output = folder / f"{book.stem}.m4b"
    report_path = folder / f"{book.stem}.json"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "audiobook", "build", str(book), "-o", str(output),
         "--report", str(report_path), "--overwrite", *options],
        capture_output=True, text=True, check=False,
    )
    facts = {"book": book.name, "exit_code": completed.returncode, "wall_time": round(time.monotonic() - started, 1)}
    if completed.returncode != 0:
        facts["failures"] = [completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "no output"]
        return facts

    report = json.loads(report_path.read_text())
    _, markers = read_metadata(str(output))
    samples = decoded_samples(str(output))
    rate = report["sample_rate"]
    chapters = report["chapters"]
    failures = []

    if [marker.title for marker in markers] != [chapter["title"] for chapter in chapters]:
        failures.append("marker titles differ from the report's chapters")
    for marker, chapter in zip(markers, chapters):
        if abs(marker.start - chapter["start"]) > 1 / rate:
            failures.append(f"chapter {chapter['index']} marker at {marker.start:.3f} s, audio at {chapter['start']:.3f} s")
        if chapter["sentences"] == 0 or chapter["duration"] <= 0:
            failures.append(f"chapter {chapter['index']} is empty")
    gap = abs(samples / rate - report["audio_duration"])
    if gap > TOLERANCE_PER_CHAPTER * len(chapters):
        failures.append(f"decoded length differs from the report by {gap:.3f} s")

    facts |= {
        "chapters": len(chapters),
        "sentences": report["total_sentences"],
        "audio_hours": round(report["audio_duration"] / 3600, 2),
        "length_gap_ms": round(gap * 1000, 1),
        "failures": failures,
    }
    return facts


def main() -> int:
    """Parse the arguments, check each book and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder of books")
    parser.add_argument("--books", nargs="*", help="file names to check; default: every supported book")
    parser.add_argument("--engine", default="espeak", help="engine for every book [default: espeak]")
    parser.add_argument("--workers", default="2", help="embedded cluster workers [default: 2]")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    books = sorted(
        path for path in arguments.corpus.iterdir()
        if path.suffix.lower() in SUPPORTED_SUFFIXES and (not arguments.books or path.name in arguments.books)
    )
    options = ["--engine", arguments.engine, "--workers", arguments.workers]
    results = []
    with tempfile.TemporaryDirectory(prefix="corpus-check-") as folder:
        for book in books:
            logger.info("building %s with %s", book.name, arguments.engine)
            results.append(check_book(book, Path(folder), options))
            logger.info("%s", json.dumps(results[-1]))

    print(f"{'book':34} {'exit':>4} {'chapters':>8} {'sentences':>9} {'hours':>6} {'gap ms':>7} {'wall s':>7}  failures")
    for facts in results:
        print(
            f"{facts['book']:34} {facts['exit_code']:>4} {facts.get('chapters', '-'):>8} {facts.get('sentences', '-'):>9}"
            f" {facts.get('audio_hours', '-'):>6} {facts.get('length_gap_ms', '-'):>7} {facts['wall_time']:>7}"
            f"  {'; '.join(facts['failures']) or 'none'}"
        )
    failed = sum(bool(facts["failures"]) for facts in results)
    print(f"{len(results) - failed} of {len(results)} books passed every check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
