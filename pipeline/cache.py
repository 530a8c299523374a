"""A content-addressed store of synthesized sentences on any fsspec URL."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.records import Sentence, SynthesisSettings

logger = logging.getLogger(__name__)

ENTRY_MAGIC = b"ABS1"
"""First bytes of a cache entry; a sample rate (uint32, little-endian) and the PCM follow."""

KEY_VERSION = "1"
"""Bumped whenever the key recipe or the entry layout changes, which orphans old entries."""


def default_cache_url() -> str:
    """Return the sentence cache in the user's cache folder (``~/.cache/dask-audiobook/sentences`` on Linux)."""
    import platformdirs

    return str(Path(platformdirs.user_cache_dir("dask-audiobook")) / "sentences")


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as model:
        for block in iter(lambda: model.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, computed once per process for each size and modification time."""
    stat = os.stat(path)
    return _file_digest(str(path), stat.st_size, stat.st_mtime)


def sentence_key(sentence: Sentence, settings: SynthesisSettings, engine_identity: str) -> str:
    """Hash everything that changes a sentence's audio into a hex key.

    The key covers the spoken text with its whitespace collapsed, the engine identity
    (engine, voice model hash, engine version, sample rate) and the synthesis settings
    that shape the voice. Silences are not part of it: they are added per chapter.
    """
    text = " ".join(sentence.speech_text.split())
    parts = [KEY_VERSION, engine_identity, settings.language, repr(settings.length_scale), text]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedSpeech:
    """One cache entry: PCM and its rate."""

    pcm: bytes
    """Signed 16-bit little-endian mono samples."""

    sample_rate: int
    """Samples per second."""


class SentenceCache:
    """Read and write synthesized sentences under ``url``.

    Entries live at ``URL/ab/abcdef....pcm``. Writes are atomic: local folders get a
    temporary file renamed into place, object stores get a single PUT, so a reader never
    sees half an entry. Storage options come from fsspec's configuration, for example
    ``FSSPEC_S3_ENDPOINT_URL``.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def _path(self, key: str) -> str:
        return f"{self.root}/{key[:2]}/{key}.pcm"

    def get(self, key: str) -> CachedSpeech | None:
        """Return the entry for ``key``, or None when it is missing or damaged."""
        try:
            data = self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            return None
        if len(data) < 8 or data[:4] != ENTRY_MAGIC or (len(data) - 8) % 2:
            logger.warning("sentence cache entry %s is damaged; synthesizing it again", key)
            return None
        (sample_rate,) = struct.unpack("<I", data[4:8])
        return CachedSpeech(data[8:], sample_rate)

    def put(self, key: str, pcm: bytes, sample_rate: int, replace: bool = True) -> CachedSpeech:
        """Store an entry atomically and return the entry the cache now holds for ``key``.

        With ``replace`` an existing entry is overwritten. Without it a sound entry that is
        already there wins and is returned instead of ``pcm``. Two tasks that speak the same
        sentence then both use the one stored entry, so a chapter laid out again from the
        cache matches the audio it was measured on. The takes can differ: espeak-ng takes of
        one sentence differed by up to 430 samples in the project's measurements.
        """
        entry = CachedSpeech(pcm, sample_rate)
        data = ENTRY_MAGIC + struct.pack("<I", sample_rate) + pcm
        path = self._path(key)
        if not isinstance(self.fs, LocalFileSystem):
            # NOTE: object stores get a check and then a PUT, so of two writers of one key at the
            # same moment the later one wins. A chapter laid out from the earlier take then
            # fails its length check, and the build stops with a CacheError until it is rerun.
            stored = None if replace else self._usable_entry(key, sample_rate)
            if stored is not None:
                return stored
            self.fs.pipe_file(path, data)
            return entry

        self.fs.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        with open(partial, "wb") as handle:
            handle.write(data)

        if not replace:
            try:
                # A hard link publishes the entry only if no other writer got there first.
                os.link(partial, path)
            except FileExistsError:
                stored = self._usable_entry(key, sample_rate)
                if stored is not None:
                    os.unlink(partial)
                    return stored
            except OSError:
                # Some file systems (FAT, some network shares) have no hard links.
                pass
            else:
                os.unlink(partial)
                return entry
        os.replace(partial, path)
        return entry

    def _usable_entry(self, key: str, sample_rate: int) -> CachedSpeech | None:
        """Return the sound entry for ``key`` at ``sample_rate``, or None."""
        found = self.get(key)
        if found is None or found.sample_rate != sample_rate:
            return None
        logger.debug("sentence cache entry %s is already stored; using it", key)
        return found

    def prune(self, older_than: float) -> tuple[int, int]:
        """Delete entries not written for ``older_than`` seconds; return (entries, bytes) removed."""
        cutoff = time.time() - older_than
        removed = freed = 0
        if not self.fs.exists(self.root):
            return 0, 0
        for path, info in self.fs.find(self.root, detail=True).items():
            if not path.endswith(".pcm"):
                continue
            if _modified(info) < cutoff:
                self.fs.rm_file(path)
                removed += 1
                freed += int(info.get("size", 0))
        logger.info("pruned %d sentence cache entries (%d bytes) from %s", removed, freed, self.url)
        return removed, freed


def _modified(info: dict) -> float:
    """Modification time in seconds since the epoch from an fsspec ``info`` dict."""
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)
