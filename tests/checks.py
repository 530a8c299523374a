"""Helpers that run the real CLI and read its audiobook back with the bundled ffmpeg."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.ffmpeg import decode_to_pcm
from pipeline.probe import ProbedChapter, read_metadata

SILENT = 200
"""Peak below which 16-bit AAC-decoded samples count as silence (about -44 dBFS)."""


@dataclass
class BuildOutcome:
    """What one ``audiobook build`` run printed and wrote."""

    returncode: int
    stdout: str
    stderr: str
    report: dict | None


def run_cli(*arguments: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python -m audiobook ARGUMENTS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "audiobook", *arguments],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def build(book: Path, output: Path, *options: str, env: dict[str, str] | None = None) -> BuildOutcome:
    """Run ``audiobook build`` with a report and return the outcome."""
    report_path = output.with_suffix(".report.json")
    completed = run_cli("build", str(book), "-o", str(output), "--report", str(report_path), *options, env=env)
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return BuildOutcome(completed.returncode, completed.stdout, completed.stderr, report)


def inspect_json(book: Path, *options: str) -> dict:
    """Run ``audiobook inspect --json`` and parse its output."""
    completed = run_cli("inspect", str(book), "--json", *options)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def decoded(path: Path) -> memoryview:
    """All samples of ``path`` as signed 16-bit values."""
    return memoryview(decode_to_pcm(str(path))).cast("h")


def chapters_of(path: Path) -> list[ProbedChapter]:
    """The chapter markers of ``path`` as ffmpeg reads them."""
    return read_metadata(str(path))[1]


def peak(samples: memoryview, start: int, end: int) -> int:
    """Largest absolute sample in ``[start, end)``."""
    window = samples[max(0, start) : max(0, end)]
    return max((abs(value) for value in window), default=0)


def expected_silence(sentences: list[dict], report: dict, rate: int) -> int:
    """Silence samples the chapter layout puts around and between ``sentences``."""
    silence = report["silence"]
    chapter_gap = round(silence["chapter"] * rate)
    total = 2 * chapter_gap
    for sentence in sentences[:-1]:
        seconds = silence["paragraph"] if sentence["paragraph_end"] else silence["sentence"]
        total += round(seconds * rate)
    return total
