"""Exceptions the pipeline raises, split by who must act: the user or the operator."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class InvalidBookError(ValueError):
    """The input book cannot be read; the user must fix or replace the file.

    The CLI turns this into one line and exit code 2.
    """

    def __init__(self, path: str, problem: str, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        message = f"{path}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)


class EngineError(RuntimeError):
    """The speech engine failed or is not installed where the task ran."""


class FfmpegError(RuntimeError):
    """An ffmpeg command exited with a non-zero status."""

    def __init__(self, command: list[str], returncode: int, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        super().__init__(
            f"ffmpeg failed with exit code {returncode}: {' '.join(command)}\n{tail}"
        )


class OutputCheckError(RuntimeError):
    """The written audiobook does not match what the run produced; it was removed.

    The CLI turns this into exit code 1.
    """


class CacheError(RuntimeError):
    """The sentence cache lost or changed an entry that a running build still needs."""
