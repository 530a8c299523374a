"""Frozen records that cross task boundaries: book, chapter, sentence, settings, audio."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.loudness import LoudnessStats

logger = logging.getLogger(__name__)

SAMPLE_WIDTH_BYTES = 2
"""Every PCM buffer in the pipeline is signed 16-bit little-endian mono."""


@dataclass(frozen=True)
class Chapter:
    """One chapter of a parsed book, before sentence splitting."""

    index: int
    """Position in the book, starting at 1; task keys use it as ``c001``."""

    title: str
    """Title from the book's table of contents or heading, as printed there."""

    paragraphs: tuple[str, ...]
    """Readable text of the chapter, one string per paragraph, in reading order."""

    source: str = ""
    """Origin of the text inside the book (a file name or anchor), for messages."""

    @property
    def text(self) -> str:
        """The chapter's paragraphs joined with blank lines."""
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True)
class Book:
    """A parsed book: metadata and chapters in reading order."""

    path: str
    """The input file the book was read from."""

    title: str
    """Book title from the metadata, else the file name without its suffix."""

    authors: tuple[str, ...]
    """Author names as the metadata spells them; empty when unknown."""

    language: str
    """BCP 47 language tag from the metadata (``en-US``), or ``en`` when none is given."""

    chapters: tuple[Chapter, ...]
    """Chapters in reading order; none of them is empty."""

    cover: bytes | None = None
    """The cover image's bytes, when the book has one."""

    cover_media_type: str = ""
    """MIME type of ``cover`` (``image/jpeg`` or ``image/png``)."""

    year: str = ""
    """Publication date as the metadata gives it (``1897`` or ``1897-05-26``); empty when unknown."""

    description: str = ""
    """The publisher's summary of the book as plain text; empty when there is none."""


@dataclass(frozen=True)
class Sentence:
    """One unit of speech: a sentence, or a piece of one that was too long for the engine."""

    chapter_index: int
    """Index of the chapter it belongs to (starting at 1)."""

    index: int
    """Position within the chapter, starting at 1; task keys use it as ``s0001``."""

    text: str
    """The sentence as the book prints it; captions show this."""

    paragraph_end: bool = False
    """True when the sentence ends its paragraph, so the longer paragraph pause follows."""

    spoken: str = ""
    """The text handed to the speech engine after normalization (numbers as words,
    lexicon applied); empty means the same as ``text``."""

    @property
    def speech_text(self) -> str:
        """What the engine speaks: ``spoken`` when set, else ``text``."""
        return self.spoken or self.text


@dataclass(frozen=True)
class SynthesisSettings:
    """Everything that decides how a sentence sounds and how chapters are laid out."""

    engine: str = "piper"
    """Speech engine name: ``piper``, ``espeak``, or ``module:Class`` for an engine of
    your own (a SpeechEngine subclass taking ``settings`` as its only argument)."""

    voice: str = ""
    """Engine-specific voice: a Piper ``.onnx`` path or an espeak-ng voice name; empty for the default."""

    language: str = "en"
    """Language of the text, used by the sentence splitter and by espeak-ng's voice choice."""

    length_scale: float = 1.0
    """Speaking-rate factor: above 1 is slower, below 1 is faster."""

    sentence_silence: float = 0.3
    """Silence after a sentence inside a paragraph, in seconds."""

    paragraph_silence: float = 0.8
    """Silence after the last sentence of a paragraph, in seconds."""

    chapter_silence: float = 1.0
    """Silence before a chapter's first sentence and after its last one, in seconds."""

    engine_threads: int = 1
    """Threads the engine may use inside one task (ONNX Runtime's intra-op threads)."""

    use_cuda: bool = False
    """Run Piper on a CUDA device when the worker has one."""

    audio_bitrate: str = ""
    """Bitrate of a lossy output format in ffmpeg's notation (``64k``); empty for the
    format's default. Lossless formats ignore it."""

    output_format: str = "m4b"
    """Output format name, a key of ``pipeline.formats.FORMATS``."""

    sample_rate: int = 0
    """Sample rate of the output in samples per second; 0 keeps the voice's rate unless
    the format cannot carry it. Chapters are resampled once, in the layout task."""

    loudness_target: float | None = -18.0
    """Integrated loudness the book is brought to, in LUFS; None leaves the level as spoken."""

    true_peak_ceiling: float = -3.0
    """Highest true peak the book's gain may produce, in dBTP."""

    isolate: bool = True
    """Run the engine in a child process of the worker, so that a native crash fails one
    sentence instead of killing the worker. It does not change the audio."""


@dataclass(frozen=True)
class SpeechAudio:
    """Raw speech for one sentence: signed 16-bit mono PCM."""

    chapter_index: int
    """Chapter index of the sentence (starting at 1)."""

    sentence_index: int
    """Sentence index within the chapter (starting at 1)."""

    pcm: bytes
    """Little-endian signed 16-bit samples, one channel."""

    sample_rate: int
    """Samples per second of ``pcm``."""

    reused: bool = False
    """True when the audio came from the sentence cache instead of the engine."""

    cache_key: str = ""
    """Key of this audio in the sentence cache; empty when the audio is not stored there."""

    @property
    def samples(self) -> int:
        """Length of the audio in samples."""
        return len(self.pcm) // SAMPLE_WIDTH_BYTES


@dataclass(frozen=True)
class SentenceTiming:
    """Position of a sentence inside its chapter's audio."""

    index: int
    """Sentence index within the chapter (starting at 1)."""

    start: int
    """First sample of the sentence, counted from the chapter's start."""

    length: int
    """Length of the sentence's speech in samples, without the silence after it."""


@dataclass(frozen=True)
class ChapterAudio:
    """One encoded chapter and the exact layout of its samples."""

    index: int
    """Chapter index (starting at 1)."""

    title: str
    """Chapter title for the marker."""

    encoded: bytes
    """The chapter encoded once: in the output's codec when the format joins chapters by
    stream copy (AAC in MP4 for M4B), else as FLAC for the book's single encode."""

    suffix: str
    """File suffix for ``encoded`` (``.m4a`` or ``.flac``)."""

    sample_rate: int
    """Samples per second of the chapter's audio."""

    samples: int
    """Decoded length of the chapter in samples, padding included."""

    padding: int
    """Silence samples added at the end so the chapter fills whole codec frames."""

    sentences: tuple[SentenceTiming, ...] = field(default_factory=tuple)
    """Each sentence's start and length inside the chapter, in samples."""

    reused: int = 0
    """Sentences whose audio came from the sentence cache; the rest were synthesized."""

    gain_db: float = 0.0
    """Gain applied before the encode, in dB: the book's gain plus any leveling of this chapter."""

    @property
    def duration(self) -> float:
        """Decoded length in seconds."""
        return self.samples / self.sample_rate


@dataclass(frozen=True)
class ChapterLayout:
    """A laid-out chapter before its gain and encode: lossless audio and loudness statistics."""

    index: int
    """Chapter index (starting at 1)."""

    title: str
    """Chapter title for the marker."""

    flac: bytes
    """The chapter's PCM at the output rate as a FLAC file, silences and padding included."""

    sample_rate: int
    """Samples per second of the chapter's audio, after the one resampling if any."""

    samples: int
    """Length of the chapter in samples, padding included."""

    padding: int
    """Silence samples added at the end so the chapter fills whole codec frames."""

    loudness: LoudnessStats
    """BS.1770 statistics of the chapter, combined with the other chapters' by the gain task."""

    sentences: tuple[SentenceTiming, ...] = ()
    """Each sentence's start and length inside the chapter, in samples at ``sample_rate``."""

    reused: int = 0
    """Sentences whose audio came from the sentence cache; the rest were synthesized."""

    sentence_keys: tuple[str, ...] = ()
    """Sentence cache keys of the chapter's sentences, in order, or empty.

    The keys are set when ``flac`` is empty. The chapter task then lays the chapter out again from the cache."""


@dataclass(frozen=True)
class ChapterTiming:
    """The part of a ChapterAudio that the book node needs: no audio bytes."""

    index: int
    """Chapter index (starting at 1)."""

    title: str
    """Chapter title for the marker."""

    samples: int
    """Decoded length of the chapter in samples."""

    sample_rate: int
    """Samples per second of the chapter's audio."""

    sentence_count: int
    """Number of sentences spoken in the chapter."""

    speech_samples: int = 0
    """Samples of speech in the chapter: the sum of its sentences' lengths."""

    padding: int = 0
    """Silence samples added at the end so the chapter fills whole codec frames."""

    reused: int = 0
    """Sentences whose audio was reused from the sentence cache or a chapter checkpoint."""

    sentences: tuple[SentenceTiming, ...] = ()
    """Each sentence's start and length inside the chapter, in samples; captions use them."""


@dataclass(frozen=True)
class ChapterMark:
    """A chapter marker on the book's timeline."""

    index: int
    """Chapter index (starting at 1)."""

    title: str
    """Chapter title shown by players."""

    start: int
    """First sample of the chapter in the finished book."""

    samples: int
    """Length of the chapter in samples."""

    sample_rate: int
    """Samples per second of the timeline."""

    sentence_count: int
    """Number of sentences spoken in the chapter."""

    speech_samples: int = 0
    """Samples of speech in the chapter; the rest is silence and ``padding``."""

    padding: int = 0
    """Silence samples added at the chapter's end to fill whole codec frames."""

    reused: int = 0
    """Sentences whose audio was reused instead of synthesized."""

    sentences: tuple[SentenceTiming, ...] = ()
    """Each sentence's start and length in samples, counted from the chapter's ``start``."""

    @property
    def start_seconds(self) -> float:
        """Marker start in seconds."""
        return self.start / self.sample_rate

    @property
    def duration(self) -> float:
        """Chapter length in seconds."""
        return self.samples / self.sample_rate


@dataclass(frozen=True)
class CacheSettings:
    """Location and mode of the sentence cache that synthesize tasks read and write."""

    url: str = ""
    """fsspec URL of the sentence cache; empty disables it."""

    read: bool = True
    """Reuse entries found there; False (``--fresh``) only writes."""
