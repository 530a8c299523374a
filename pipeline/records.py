"""Frozen records that cross task boundaries: book, chapter, sentence, settings, audio."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

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
    """Where the text came from inside the book (a file name or anchor), for messages."""

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


@dataclass(frozen=True)
class Sentence:
    """One unit of speech: a sentence, or a piece of one that was too long for the engine."""

    chapter_index: int
    """Index of the chapter it belongs to (starting at 1)."""

    index: int
    """Position within the chapter, starting at 1; task keys use it as ``s0001``."""

    text: str
    """The text handed to the speech engine."""

    paragraph_end: bool = False
    """True when the sentence ends its paragraph, so the longer paragraph pause follows."""


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

    audio_bitrate: str = "64k"
    """AAC bitrate of the chapter files, in ffmpeg's notation."""

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

    @property
    def samples(self) -> int:
        """Length of the audio in samples."""
        return len(self.pcm) // SAMPLE_WIDTH_BYTES


@dataclass(frozen=True)
class SentenceTiming:
    """Where a sentence sits inside its chapter's audio."""

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
    """The chapter encoded once, in the output's codec and container (AAC in MP4 for M4B)."""

    suffix: str
    """File suffix for ``encoded`` (``.m4a``)."""

    sample_rate: int
    """Samples per second of the chapter's audio."""

    samples: int
    """Decoded length of the chapter in samples, padding included."""

    padding: int
    """Silence samples added at the end so the chapter fills whole codec frames."""

    sentences: tuple[SentenceTiming, ...] = field(default_factory=tuple)
    """Each sentence's start and length inside the chapter, in samples."""

    @property
    def duration(self) -> float:
        """Decoded length in seconds."""
        return self.samples / self.sample_rate


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

    @property
    def start_seconds(self) -> float:
        """Marker start in seconds."""
        return self.start / self.sample_rate

    @property
    def duration(self) -> float:
        """Chapter length in seconds."""
        return self.samples / self.sample_rate
