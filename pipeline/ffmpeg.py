"""The one place that runs ffmpeg: finds the binary, logs the command, checks the result."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from pipeline.errors import FfmpegError

logger = logging.getLogger(__name__)

FFMPEG_ENV = "AUDIOBOOK_FFMPEG"
"""Environment variable naming an ffmpeg binary to use instead of the automatic choice."""


@functools.lru_cache(maxsize=1)
def ffmpeg_path() -> str:
    """Return the ffmpeg binary: ``$AUDIOBOOK_FFMPEG``, else one on PATH, else the wheel's.

    The ``imageio-ffmpeg`` wheel ships a static ffmpeg, so a machine without a system
    install still works.
    """
    configured = os.environ.get(FFMPEG_ENV)
    if configured:
        return configured

    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path

    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise FfmpegError(
            ["ffmpeg"], 127, "no ffmpeg found; install one or run: pip install imageio-ffmpeg"
        ) from err
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(
    arguments: Sequence[str], stdin: bytes | None = None, timeout: float | None = None
) -> bytes:
    """Run ffmpeg with ``arguments`` and return its standard output.

    ``-hide_banner -nostdin -loglevel error`` come first unless stdin is used for data.

    Raises
    ------
    FfmpegError
        When ffmpeg exits with a non-zero status; the error carries the exit code, the
        command and the end of stderr.
    """
    command = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", *arguments]
    if stdin is None:
        command.insert(2, "-nostdin")
    logger.debug("running %s", subprocess.list2cmdline(command))

    try:
        completed = subprocess.run(
            command, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise FfmpegError(command, -1, f"timed out after {timeout} s") from err

    if completed.returncode != 0:
        raise FfmpegError(
            command, completed.returncode, completed.stderr.decode("utf-8", "replace")
        )
    return completed.stdout


def decode_to_pcm(path: str, sample_rate: int | None = None) -> bytes:
    """Decode any audio file to signed 16-bit mono PCM, honouring the container's edit list."""
    return run_ffmpeg(_decode_arguments(path, sample_rate))


def _decode_arguments(path: str, sample_rate: int | None) -> list[str]:
    """Return the ffmpeg arguments that decode ``path`` to mono 16-bit PCM on stdout."""
    arguments = ["-i", path, "-map", "0:a:0", "-ac", "1"]
    if sample_rate:
        arguments += ["-ar", str(sample_rate)]
    return [*arguments, "-f", "s16le", "-c:a", "pcm_s16le", "-"]


def count_decoded_bytes(path: str, sample_rate: int | None = None, chunk_bytes: int = 1 << 20) -> int:
    """Decode ``path`` like ``decode_to_pcm`` and return the PCM's size in bytes.

    The PCM is read from a pipe ``chunk_bytes`` at a time and dropped, so memory stays flat.

    Raises
    ------
    FfmpegError
        When ffmpeg exits with a non-zero status.
    """
    command = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", *_decode_arguments(path, sample_rate)]
    logger.debug("running %s", subprocess.list2cmdline(command))

    total = 0
    with tempfile.TemporaryFile() as stderr, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr) as process:
        assert process.stdout is not None
        while chunk := process.stdout.read(chunk_bytes):
            total += len(chunk)
        returncode = process.wait()

        if returncode != 0:
            stderr.seek(0)
            raise FfmpegError(command, returncode, stderr.read().decode("utf-8", "replace"))
    return total


def describe_input(path: str) -> str:
    """Return ffmpeg's description of ``path`` (its ``Input #0`` and ``Stream`` lines).

    ffmpeg prints the description on stderr at the ``info`` log level, so this reads the
    file's first audio stream into the null muxer and returns stderr instead of stdout.

    Raises
    ------
    FfmpegError
        When ffmpeg cannot read ``path``.
    """
    command = [
        ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "info",
        "-i", path, "-map", "0:a:0", "-c", "copy", "-t", "0", "-f", "null", "-",
    ]
    logger.debug("running %s", subprocess.list2cmdline(command))
    completed = subprocess.run(command, capture_output=True, check=False)
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode != 0:
        raise FfmpegError(command, completed.returncode, stderr)
    return stderr
