"""The sentence cache: keys, atomic entries, damaged entries, pruning."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.cache import SentenceCache, sentence_key
from pipeline.checkpoints import ChapterCheckpoints, chapter_fingerprint
from pipeline.records import ChapterAudio, ChapterTiming, Sentence, SynthesisSettings

SENTENCE = Sentence(1, 1, "The lamp was lit.")
SETTINGS = SynthesisSettings(engine="espeak", language="en")


def test_sentence_key_ignores_whitespace() -> None:
    spaced = Sentence(2, 7, "The  lamp\nwas lit.")

    assert sentence_key(spaced, SETTINGS, "espeak/v1") == sentence_key(SENTENCE, SETTINGS, "espeak/v1")


def test_sentence_key_follows_voice_and_rate() -> None:
    base = sentence_key(SENTENCE, SETTINGS, "espeak/v1")
    slower = SynthesisSettings(engine="espeak", language="en", length_scale=1.2)

    assert sentence_key(SENTENCE, SETTINGS, "piper/abc") != base
    assert sentence_key(SENTENCE, slower, "espeak/v1") != base


def test_sentence_key_uses_spoken_text() -> None:
    spoken = Sentence(1, 1, "It cost $5.", spoken="It cost five dollars.")
    printed = Sentence(1, 1, "It cost $5.")

    assert sentence_key(spoken, SETTINGS, "e") != sentence_key(printed, SETTINGS, "e")


def test_sentence_cache_round_trip_in_memory() -> None:
    cache = SentenceCache("memory://audiobook-test-cache")

    cache.put("ab" * 32, b"\x01\x00\x02\x00", 22050)
    entry = cache.get("ab" * 32)

    assert entry is not None
    assert entry.pcm == b"\x01\x00\x02\x00"
    assert entry.sample_rate == 22050
    assert cache.get("cd" * 32) is None


def test_sentence_cache_skips_damaged_entry(tmp_path: Path) -> None:
    cache = SentenceCache(str(tmp_path))
    key = "ef" * 32
    cache.put(key, b"\x00\x00", 22050)
    (tmp_path / key[:2] / f"{key}.pcm").write_bytes(b"ABS1\x22")

    assert cache.get(key) is None


def test_sentence_cache_leaves_no_partial_files(tmp_path: Path) -> None:
    cache = SentenceCache(f"file://{tmp_path}")

    cache.put("12" * 32, b"\x00\x00" * 10, 16000)

    assert [path.name for path in tmp_path.rglob("*")] == ["12", f"{'12' * 32}.pcm"]


def test_sentence_cache_prune_removes_old_entries(tmp_path: Path) -> None:
    cache = SentenceCache(str(tmp_path))
    cache.put("aa" * 32, b"\x00\x00", 22050)
    cache.put("bb" * 32, b"\x00\x00" * 4, 22050)
    old = tmp_path / "aa" / f"{'aa' * 32}.pcm"
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))

    removed, freed = cache.prune(older_than=30 * 86400)

    assert removed == 1
    assert freed == 8 + 2
    assert not old.exists()
    assert cache.get("bb" * 32) is not None


def test_checkpoints_round_trip(tmp_path: Path) -> None:
    checkpoints = ChapterCheckpoints(tmp_path / "work")
    chapter = ChapterAudio(3, "Three", b"encoded", ".m4a", 22050, 4096, 100)
    timing = ChapterTiming(3, "Three", 4096, 22050, 2, speech_samples=3000, padding=100)
    fingerprint = chapter_fingerprint("Three", [SENTENCE])

    media = checkpoints.save(chapter, timing, fingerprint)
    loaded = checkpoints.load(3, fingerprint)

    assert media.read_bytes() == b"encoded"
    assert loaded == (timing, media)
    assert checkpoints.load(3, chapter_fingerprint("Three", [Sentence(1, 1, "Changed.")])) is None


def test_cache_put_keeps_first_entry(tmp_path: Path) -> None:
    cache = SentenceCache(str(tmp_path))
    key = "cd" * 32
    cache.put(key, b"\x01\x00" * 3, 22050)

    stored = cache.put(key, b"\x02\x00" * 5, 22050, replace=False)

    assert stored.pcm == b"\x01\x00" * 3
    assert cache.get(key).pcm == b"\x01\x00" * 3
    assert [path.name for path in (tmp_path / "cd").iterdir()] == [f"{key}.pcm"]


def test_cache_put_replaces_by_default(tmp_path: Path) -> None:
    cache = SentenceCache(str(tmp_path))
    key = "cd" * 32
    cache.put(key, b"\x01\x00" * 3, 22050)

    stored = cache.put(key, b"\x02\x00" * 5, 22050)

    assert stored.pcm == b"\x02\x00" * 5
    assert cache.get(key).pcm == b"\x02\x00" * 5


def test_cache_put_new_entry_in_memory() -> None:
    cache = SentenceCache("memory://audiobook-test-cache-first")

    stored = cache.put("ef" * 32, b"\x03\x00" * 2, 16000, replace=False)

    assert stored.pcm == b"\x03\x00" * 2
    assert cache.get("ef" * 32).sample_rate == 16000


def test_cache_put_new_entry_without_replace(tmp_path: Path) -> None:
    cache = SentenceCache(str(tmp_path))
    key = "ab" * 32

    stored = cache.put(key, b"\x04\x00" * 6, 22050, replace=False)

    assert stored.pcm == b"\x04\x00" * 6
    assert cache.get(key).pcm == b"\x04\x00" * 6
    assert [path.name for path in (tmp_path / "ab").iterdir()] == [f"{key}.pcm"]
