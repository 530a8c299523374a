"""Convert every new book in an inbox folder, several at a time on one cluster."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import fsspec
from distributed import Client

from audiobook.coordinator import BuildRequest, RunFailedError, build_audiobook
from pipeline.errors import EngineError, FfmpegError, InvalidBookError
from pipeline.ingest import SUPPORTED_SUFFIXES

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".audiobook-manifest.json"
"""File in the output folder recording which source and settings made each audiobook."""


@dataclass(frozen=True)
class BookOutcome:
    """One line of the batch summary."""

    input: str
    """URL of the e-book."""

    status: str
    """``converted``, ``up-to-date``, ``failed``, or ``skipped``: an invalid book that
    failed before and has not changed since."""

    output: str = ""
    """URL of the audiobook (also for up-to-date books)."""

    audio_seconds: float = 0.0
    """Length of the audiobook in seconds (0 when failed)."""

    wall_time: float = 0.0
    """Seconds this run spent on the book."""

    error: str = ""
    """The reason the book failed; empty otherwise."""


class BatchLocked(RuntimeError):
    """Another batch run into the same output folder holds the lock."""


@contextlib.contextmanager
def batch_lock(outdir: str, lock_root: Path, wait: bool) -> Iterator[Path]:
    """Hold an exclusive lock for batch runs into ``outdir`` on this machine.

    The lock is an ``flock`` on a file under ``lock_root``, so it is released when the
    process dies, even by SIGKILL, and a stale lock never blocks cron.
    NOTE: flock only excludes runs on the same machine; two machines converting into
    one shared output folder are not kept apart.
    """
    lock_root.mkdir(parents=True, exist_ok=True)
    path = lock_root / f"batch-{hashlib.sha256(outdir.encode()).hexdigest()[:16]}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as err:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BatchLocked(f"another batch run into {outdir} is in progress ({holder})") from err
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_books(inbox: str) -> list[str]:
    """List the URLs of the supported books directly in ``inbox``, sorted by name."""
    fs, root = fsspec.core.url_to_fs(inbox)
    if not fs.isdir(root):
        raise InvalidBookError(inbox, "the inbox is not a folder", "pass the folder that contains the books")
    entries = fs.ls(root, detail=True)
    names = sorted(
        entry["name"] for entry in entries
        if entry["type"] == "file" and Path(entry["name"]).suffix.lower() in SUPPORTED_SUFFIXES
    )
    return [fs.unstrip_protocol(name) for name in names]


def source_digest(url: str) -> str:
    """SHA-256 of a book's bytes, so a changed or replaced book is converted again."""
    digest = hashlib.sha256()
    with fsspec.open(url, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The output folder's record of converted books, updated atomically under a lock."""

    def __init__(self, outdir: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(outdir)
        self.path = f"{self.root}/{MANIFEST_NAME}"
        self._lock = threading.Lock()
        try:
            self.entries: dict[str, dict] = json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            self.entries = {}
        except ValueError:
            logger.warning("manifest %s is damaged; every book will be converted again", self.path)
            self.entries = {}

    def is_current(self, output_name: str, digest: str, settings_key: str) -> bool:
        """True when ``output_name`` exists and was made from this source with these settings."""
        entry = self.entries.get(output_name)
        return (
            entry is not None
            and entry.get("source") == digest
            and entry.get("settings") == settings_key
            and self.fs.exists(f"{self.root}/{output_name}")
        )

    def known_invalid(self, output_name: str, digest: str) -> str:
        """Return the error of an earlier run that found this very source invalid, else an empty string."""
        entry = self.entries.get(output_name) or {}
        return str(entry.get("invalid", "")) if entry.get("source") == digest else ""

    def record(self, output_name: str, digest: str, settings_key: str, audio_seconds: float) -> None:
        """Record a converted book and write the manifest."""
        self._write(output_name, {"source": digest, "settings": settings_key, "audio_seconds": audio_seconds})

    def record_invalid(self, output_name: str, digest: str, error: str) -> None:
        """Record a book that cannot be read, so that later runs skip it until it changes."""
        self._write(output_name, {"source": digest, "invalid": error})

    def _write(self, output_name: str, entry: dict) -> None:
        with self._lock:
            self.entries[output_name] = entry
            self.fs.pipe_file(self.path, json.dumps(self.entries, indent=2).encode())


def settings_key(request: BuildRequest) -> str:
    """Hash the settings that shape an audiobook, for the manifest."""
    return hashlib.sha256(repr(request.settings).encode()).hexdigest()[:16]


def convert_one(url: str, outdir: str, template: BuildRequest, client: Client, manifest: Manifest) -> BookOutcome:
    """Convert one book unless it is up to date; a failure is returned, never raised."""
    started = time.monotonic()
    output_name = f"{Path(url).stem}.m4b"
    output_url = f"{outdir.rstrip('/')}/{output_name}"
    key = settings_key(template)

    digest = ""
    local_book: Path | None = None
    try:
        digest = source_digest(url)
        if manifest.is_current(output_name, digest, key):
            seconds = float(manifest.entries[output_name].get("audio_seconds", 0.0))
            return BookOutcome(url, "up-to-date", output_url, round(seconds, 3))
        known_error = manifest.known_invalid(output_name, digest)
        if known_error:
            return BookOutcome(url, "skipped", "", error=f"unchanged since it failed: {known_error}")

        with tempfile.TemporaryDirectory(prefix="audiobook-batch-") as scratch:
            local_book = Path(scratch) / Path(url).name
            with fsspec.open(url, "rb") as source, open(local_book, "wb") as target:
                shutil.copyfileobj(source, target)
            local_output = Path(scratch) / output_name
            request = replace(template, input=local_book, output=local_output, overwrite=True)
            result = build_audiobook(request, client)
            _publish(local_output, outdir, output_name)

        seconds = sum(mark.duration for mark in result.marks)
        manifest.record(output_name, digest, key, seconds)
        return BookOutcome(url, "converted", output_url, round(seconds, 3), round(time.monotonic() - started, 3))
    except InvalidBookError as err:
        message = _name_source(str(err), local_book, url)
        logger.error("batch: %s is invalid: %s", url, message)
        if digest:
            manifest.record_invalid(output_name, digest, message)
        return BookOutcome(url, "failed", "", 0.0, round(time.monotonic() - started, 3), message)
    except (RunFailedError, EngineError, FfmpegError, OSError) as err:
        message = _name_source(str(err), local_book, url)
        logger.error("batch: %s failed: %s", url, message)
        return BookOutcome(url, "failed", "", 0.0, round(time.monotonic() - started, 3), message)
    except Exception as err:  # one book's bug must not stop the other books
        logger.exception("batch: %s failed unexpectedly", url)
        return BookOutcome(url, "failed", "", 0.0, round(time.monotonic() - started, 3), repr(err))


def _name_source(message: str, local_book: Path | None, url: str) -> str:
    """Return ``message`` with the scratch copy's path replaced by the book's own URL.

    Errors from reading the book name the copy in the temporary folder, which is gone
    after the run, so the summary and the manifest name the inbox file instead.
    """
    if local_book is None:
        return message
    return message.replace(str(local_book), url)


def _publish(local_output: Path, outdir: str, output_name: str) -> None:
    """Copy the finished audiobook into ``outdir`` without exposing a partial file."""
    fs, root = fsspec.core.url_to_fs(outdir)
    final = f"{root}/{output_name}"
    partial = f"{root}/.{output_name}.partial"
    fs.put_file(str(local_output), partial)
    fs.mv(partial, final)


def run_batch(
    inbox: str, outdir: str, template: BuildRequest, client: Client, books_in_flight: int
) -> list[BookOutcome]:
    """Convert every book in ``inbox`` that has no up-to-date audiobook in ``outdir``."""
    fs, root = fsspec.core.url_to_fs(outdir)
    fs.makedirs(root, exist_ok=True)
    books = find_books(inbox)
    manifest = Manifest(outdir)
    logger.info("batch: %d book(s) in %s, %d in flight at once", len(books), inbox, books_in_flight)

    with ThreadPoolExecutor(max_workers=max(1, books_in_flight)) as pool:
        outcomes = list(pool.map(lambda url: convert_one(url, outdir, template, client, manifest), books))
    return outcomes


def summarize(inbox: str, outdir: str, outcomes: list[BookOutcome]) -> dict:
    """Build the JSON summary of a batch run."""
    counts = {status: sum(outcome.status == status for outcome in outcomes)
              for status in ("converted", "up-to-date", "skipped", "failed")}
    return {"inbox": inbox, "outdir": outdir, **counts, "books": [asdict(outcome) for outcome in outcomes]}
