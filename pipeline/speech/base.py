"""The speech engine interface that every engine implements."""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine can speak with on this machine."""

    engine: str
    """Engine name (``piper`` or ``espeak``)."""

    name: str
    """Value to pass as ``--voice``."""

    language: str
    """Language tag the voice speaks."""

    description: str = ""
    """Free text for people: model file, gender or variant."""


class SpeechEngine(abc.ABC):
    """Turn one piece of text into mono speech.

    An engine is built once per worker process (see ``pipeline.speech.load_engine``) and then
    called from the tasks that run there. ``synthesize`` must be safe to call repeatedly; it is
    never called from two threads at once on the same instance.
    """

    name: str = ""
    """Engine name used on the command line."""

    max_chars: int = 400
    """Longest text, in characters, that one ``synthesize`` call takes; longer sentences
    are split before they reach the engine."""

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Samples per second of the PCM that ``synthesize`` returns."""

    @property
    @abc.abstractmethod
    def voice_id(self) -> str:
        """Identity of the voice in use, for reports and cache keys."""

    @property
    def cache_identity(self) -> str:
        """Everything about the engine that changes its audio, for sentence cache keys.

        Engines whose voice is a file override this to hash the file, so that a model
        replaced at the same path never reuses old audio.
        """
        return f"{self.name}/{self.voice_id}/{self.sample_rate}"

    @abc.abstractmethod
    def synthesize(self, text: str) -> bytes:
        """Speak ``text`` and return signed 16-bit little-endian mono PCM.

        Parameters
        ----------
        text
            One sentence, at most ``max_chars`` characters long.

        Returns
        -------
        bytes
            The samples at ``sample_rate``; empty when the text has nothing to say
            (punctuation only).

        Raises
        ------
        EngineError
            When the engine fails on this text.
        """
