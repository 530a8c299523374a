"""The ``audiobook`` command line: build, inspect, voices."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

import audiobook.config  # noqa: F401  registers the defaults with dask.config

logger = logging.getLogger(__name__)

EXIT_FAILED = 1
"""The run failed: a task or ffmpeg failed after retries."""

EXIT_INVALID = 2
"""The input or the options are invalid; nothing was written."""


def configure_logging(verbose: bool) -> None:
    """Send log lines to stderr; ``-v`` shows debug lines and tracebacks."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("distributed", "bokeh", "tornado", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


class InvalidInput(click.ClickException):
    """A user error that ends the command with exit code 2 and one line."""

    exit_code = EXIT_INVALID


class RunFailed(click.ClickException):
    """A run that failed after it started; exit code 1."""

    exit_code = EXIT_FAILED


def fail(err: Exception, verbose: bool, exception_type: type[click.ClickException]) -> NoReturn:
    """Raise ``exception_type`` with ``err``'s message, logging the traceback under ``-v``."""
    if verbose:
        logger.exception("%s", err)
    raise exception_type(str(err)) from err


@click.group(name="audiobook", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dask-audiobook")
def main() -> None:
    """Turn e-books into chaptered audiobooks on a Dask cluster."""


# Commands live in their own modules; importing them registers them on ``main``.
from audiobook import commands  # noqa: E402,F401
