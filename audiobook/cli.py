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


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""Format of the log lines on stderr."""

HELD_LOGGERS = ("pipeline.ingest",)
"""Loggers whose records below ERROR wait until the input proves valid (see HeldIngestLog)."""


class HeldIngestLog(logging.Handler):
    """Hold the ingest stage's log records until the book proves readable.

    An invalid book must end the command with the one ``Error:`` line, so :func:`fail`
    discards the records that a reader logged on the way to rejecting it. A record
    from any other logger, or the end of the program, first releases the held
    records to ``target`` in their original order.
    """

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self.target = target
        self.held: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Hold an ingest record, or release the held ones and pass ``record`` on."""
        if record.name.startswith(HELD_LOGGERS) and record.levelno < logging.ERROR:
            self.held.append(record)
            return
        self.pass_on_held()
        self.target.handle(record)

    # Not named release(), because logging.Handler.release() unlocks the handler after each emit.
    def pass_on_held(self) -> None:
        """Pass the held records on to ``target``."""
        held, self.held = self.held, []
        for record in held:
            self.target.handle(record)

    def discard(self) -> int:
        """Drop the held records and return how many were warnings."""
        warnings = sum(record.levelno >= logging.WARNING for record in self.held)
        self.held = []
        return warnings

    def close(self) -> None:
        """Pass the held records on, then close."""
        self.pass_on_held()
        super().close()


def configure_logging(verbose: bool) -> None:
    """Send log lines to stderr; ``-v`` shows debug lines and tracebacks, each as it is logged."""
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        handlers=[stream if verbose else HeldIngestLog(stream)],
    )
    if not verbose:
        for noisy in ("distributed", "bokeh", "tornado", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # Bokeh warns about its '*' host pattern even though the dashboard listens on
        # 127.0.0.1 only; the warning would mislead operators.
        logging.getLogger("bokeh.server.util").setLevel(logging.ERROR)


class InvalidInput(click.ClickException):
    """A user error that ends the command with exit code 2 and one line."""

    exit_code = EXIT_INVALID


class RunFailed(click.ClickException):
    """A run that failed after it started; exit code 1."""

    exit_code = EXIT_FAILED


def fail(err: Exception, verbose: bool, exception_type: type[click.ClickException]) -> NoReturn:
    """Raise ``exception_type`` with ``err``'s message, logging the traceback under ``-v``.

    For :class:`InvalidInput` without ``-v``, the held ingest log records are dropped so
    that the error is the only line. The message then gives the number of dropped warnings.
    """
    if verbose:
        logger.error("%s", err, exc_info=err)
        raise exception_type(str(err)) from err

    message = str(err)
    if issubclass(exception_type, InvalidInput):
        held_logs = [handler for handler in logging.getLogger().handlers if isinstance(handler, HeldIngestLog)]
        hidden = sum(handler.discard() for handler in held_logs)
        if hidden:
            message += f" (run with -v to see {hidden} earlier warning{'s' if hidden > 1 else ''})"
    raise exception_type(message) from err


@click.group(name="audiobook", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dask-audiobook")
def main() -> None:
    """Turn e-books into chaptered audiobooks on a Dask cluster."""


# Commands live in their own modules; importing them registers them on ``main``.
from audiobook import commands  # noqa: E402,F401
