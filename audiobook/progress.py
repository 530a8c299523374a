"""Progress for people: a bar on a terminal, a log line every few seconds under cron."""

from __future__ import annotations

import logging
import sys
import time

import click

logger = logging.getLogger(__name__)


class Progress:
    """Count synthesized sentences and finished chapters of one book."""

    def __init__(
        self, book: str, sentences: int, chapters: int, interval: float, bar: bool = True
    ) -> None:
        self.book = book
        self.sentences_total = sentences
        self.chapters_total = chapters
        self.sentences_done = 0
        self.chapters_done = 0
        self._interval = interval
        self._last_log = time.monotonic()
        self._bar = None
        if bar and sys.stderr.isatty():
            self._bar = click.progressbar(
                length=sentences, label=f"{book}", file=sys.stderr, show_pos=True, show_eta=True
            )
            self._bar.__enter__()

    def sentences_finished(self, count: int) -> None:
        """Record ``count`` more synthesized sentences."""
        self.sentences_done += count
        if self._bar is not None:
            self._bar.update(count)
        self._maybe_log()

    def chapter_finished(self) -> None:
        """Record one more written chapter."""
        self.chapters_done += 1
        self._maybe_log()

    def close(self) -> None:
        """End the bar, if any, and log the final count."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        self._log()

    def _maybe_log(self) -> None:
        if self._bar is None and time.monotonic() - self._last_log >= self._interval:
            self._log()

    def _log(self) -> None:
        self._last_log = time.monotonic()
        logger.info(
            "book %s: %d/%d sentences, %d/%d chapters",
            self.book, self.sentences_done, self.sentences_total,
            self.chapters_done, self.chapters_total,
        )
