"""Graph tasks: a chapter that waits for the gain drops its audio and is laid out again."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.tasks import encode_chapter_task, lay_out_chapter_task, synthesize_sentences
from pipeline.cache import SentenceCache, sentence_key
from pipeline.errors import CacheError
from pipeline.speech import load_engine
from pipeline.loudness import GainPlan
from pipeline.records import CacheSettings, Chapter, SynthesisSettings
from pipeline.text import split_chapter

SETTINGS = SynthesisSettings(engine="espeak", language="en")
CHAPTER = Chapter(1, "One", ("The lamp was lit at dusk. The street went quiet.", "Then the rain came."))
PLAN = GainPlan(target=-18.0, measured=-21.0, gain_db=3.0)


def laid_out(cache: CacheSettings | None, drop_audio: bool):
    sentences = split_chapter(CHAPTER, "en", 400)
    batch = synthesize_sentences(sentences, SETTINGS, cache)
    return sentences, lay_out_chapter_task(1, "One", sentences, [batch], SETTINGS, drop_audio)


def test_lay_out_chapter_drops_audio_with_cache(tmp_path: Path) -> None:
    cache = CacheSettings(url=str(tmp_path / "sentences"))

    sentences, layout = laid_out(cache, drop_audio=True)

    assert layout.flac == b""
    assert len(layout.sentence_keys) == len(sentences) == 3
    assert all(len(key) == 64 for key in layout.sentence_keys)
    assert layout.samples % 1024 == 0


def test_lay_out_chapter_keeps_audio_without_cache() -> None:
    _, layout = laid_out(None, drop_audio=True)

    assert layout.flac[:4] == b"fLaC"
    assert layout.sentence_keys == ()


def test_encode_chapter_rebuilds_dropped_audio(tmp_path: Path) -> None:
    cache = CacheSettings(url=str(tmp_path / "sentences"))
    sentences, dropped = laid_out(cache, drop_audio=True)
    _, with_audio = laid_out(cache, drop_audio=False)

    rebuilt = encode_chapter_task(dropped, PLAN, SETTINGS, sentences, cache)
    direct = encode_chapter_task(with_audio, PLAN, SETTINGS)

    assert with_audio.samples == dropped.samples
    assert rebuilt.samples == direct.samples == dropped.samples
    assert rebuilt.sentences == direct.sentences
    assert rebuilt.gain_db == 3.0
    assert rebuilt.encoded == direct.encoded


def test_encode_chapter_missing_cache_entry(tmp_path: Path) -> None:
    cache = CacheSettings(url=str(tmp_path / "sentences"))
    sentences, dropped = laid_out(cache, drop_audio=True)
    second = dropped.sentence_keys[1]
    (tmp_path / "sentences" / second[:2] / f"{second}.pcm").unlink()

    with pytest.raises(CacheError, match=rf"chapter c001 sentence s0002: entry {second} left the sentence cache"):
        encode_chapter_task(dropped, PLAN, SETTINGS, sentences, cache)


def test_synthesize_adopts_first_stored_take(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection: another task stores the same sentence while this one synthesizes it.
    cache = CacheSettings(url=str(tmp_path / "sentences"))
    store = SentenceCache(cache.url)
    sentences = split_chapter(CHAPTER, "en", 400)[:1]
    engine = load_engine(SETTINGS)
    key = sentence_key(sentences[0], SETTINGS, engine.cache_identity)
    other_take = b"\x07\x00" * 4410
    real_synthesize = engine.synthesize

    def synthesize_after_other_task(text: str) -> bytes:
        pcm = real_synthesize(text)
        store.put(key, other_take, engine.sample_rate)
        return pcm

    monkeypatch.setattr(engine, "synthesize", synthesize_after_other_task)
    (audio,) = synthesize_sentences(sentences, SETTINGS, cache)

    assert audio.pcm == other_take
    assert audio.cache_key == key
    assert not audio.reused
    assert store.get(key).pcm == other_take


def test_synthesize_fresh_replaces_cached_entry(tmp_path: Path) -> None:
    cache = CacheSettings(url=str(tmp_path / "sentences"), read=False)
    store = SentenceCache(cache.url)
    sentences = split_chapter(CHAPTER, "en", 400)[:1]
    engine = load_engine(SETTINGS)
    key = sentence_key(sentences[0], SETTINGS, engine.cache_identity)
    store.put(key, b"\x07\x00" * 4410, engine.sample_rate)

    (audio,) = synthesize_sentences(sentences, SETTINGS, cache)

    assert audio.pcm != b"\x07\x00" * 4410
    assert store.get(key).pcm == audio.pcm
