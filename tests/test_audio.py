"""Chapter layout: exact sample positions, silences, frame padding, one AAC encode."""

from __future__ import annotations

import tempfile

import pytest

from pipeline.audio import AAC_FRAME_SAMPLES, build_chapter_audio, lay_out_chapter, silence_samples
from pipeline.probe import decoded_samples
from pipeline.records import Sentence, SpeechAudio, SynthesisSettings

RATE = 22050
SETTINGS = SynthesisSettings(sentence_silence=0.25, paragraph_silence=0.5, chapter_silence=1.0)


def tone(samples: int) -> bytes:
    return b"".join((((i * 37) % 2000) - 1000).to_bytes(2, "little", signed=True) for i in range(samples))


def three_sentences() -> tuple[list[Sentence], list[SpeechAudio]]:
    sentences = [
        Sentence(2, 1, "One.", paragraph_end=False),
        Sentence(2, 2, "Two.", paragraph_end=True),
        Sentence(2, 3, "Three.", paragraph_end=True),
    ]
    audios = [SpeechAudio(2, index, tone(length), RATE) for index, length in ((1, 1000), (2, 2345), (3, 777))]
    return sentences, audios


def test_silence_samples_rounds_to_nearest() -> None:
    assert silence_samples(0.3, 22050) == 6615
    assert silence_samples(0.00002, 22050) == 0


def test_lay_out_chapter_sentence_starts() -> None:
    sentences, audios = three_sentences()

    pcm, timings, padding = lay_out_chapter(sentences, audios, SETTINGS)

    chapter_gap, sentence_gap, paragraph_gap = 22050, 5512, 11025
    assert [timing.start for timing in timings] == [
        chapter_gap,
        chapter_gap + 1000 + sentence_gap,
        chapter_gap + 1000 + sentence_gap + 2345 + paragraph_gap,
    ]
    assert [timing.length for timing in timings] == [1000, 2345, 777]
    unpadded = 1000 + 2345 + 777 + 2 * chapter_gap + sentence_gap + paragraph_gap
    assert len(pcm) // 2 == unpadded + padding
    assert (unpadded + padding) % AAC_FRAME_SAMPLES == 0
    assert 0 <= padding < AAC_FRAME_SAMPLES


def test_lay_out_chapter_keeps_speech_bytes() -> None:
    sentences, audios = three_sentences()

    pcm, timings, _ = lay_out_chapter(sentences, audios, SETTINGS)

    for timing, audio in zip(timings, audios):
        assert pcm[timing.start * 2 : (timing.start + timing.length) * 2] == audio.pcm


def test_lay_out_chapter_rejects_mixed_rates() -> None:
    sentences, audios = three_sentences()
    audios[1] = SpeechAudio(2, 2, tone(10), 16000)

    with pytest.raises(ValueError, match="16000 Hz"):
        lay_out_chapter(sentences, audios, SETTINGS)


def test_build_chapter_audio_decodes_to_exact_length() -> None:
    sentences, audios = three_sentences()

    chapter = build_chapter_audio(2, "Two", sentences, audios, SETTINGS)

    with tempfile.NamedTemporaryFile(suffix=chapter.suffix) as encoded:
        encoded.write(chapter.encoded)
        encoded.flush()
        assert decoded_samples(encoded.name) == chapter.samples
    assert chapter.samples == 1000 + 2345 + 777 + 2 * 22050 + 5512 + 11025 + chapter.padding
    assert chapter.title == "Two"
