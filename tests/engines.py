"""Fault-injecting speech engines for failure tests; each wraps the real espeak-ng engine.

Pass them as ``--engine tests.engines:FailingEngine``; workers need the repository on their
``PYTHONPATH``.
"""

from __future__ import annotations

import logging
import os
import time

from pipeline.errors import EngineError
from pipeline.records import SynthesisSettings
from pipeline.speech.espeak import EspeakEngine

logger = logging.getLogger(__name__)

FAIL_MARK = "Zebrafail"
"""A sentence containing this word makes FailingEngine raise."""

ABORT_MARK = "Zebrabort"
"""A sentence containing this word makes AbortingEngine abort its process."""


class _WrappedEspeak(EspeakEngine):
    max_chars = 400

    def __init__(self, settings: SynthesisSettings) -> None:
        super().__init__(voice=settings.voice, language="en-us", length_scale=settings.length_scale)


class FailingEngine(_WrappedEspeak):
    """Raise EngineError on every sentence that contains FAIL_MARK."""

    def synthesize(self, text: str) -> bytes:
        if FAIL_MARK in text:
            raise EngineError(f"injected failure on {text[:40]!r}")
        return super().synthesize(text)


class AbortingEngine(_WrappedEspeak):
    """Abort the whole process (SIGABRT, like a native crash) on a sentence with ABORT_MARK."""

    def synthesize(self, text: str) -> bytes:
        if ABORT_MARK in text:
            os.abort()
        return super().synthesize(text)


class SlowEngine(_WrappedEspeak):
    """Take at least SLOW_ENGINE_SECONDS per sentence, so sentences are in flight for a while."""

    def synthesize(self, text: str) -> bytes:
        time.sleep(float(os.environ.get("SLOW_ENGINE_SECONDS", "0.2")))
        return super().synthesize(text)


VOLUME_MARKS = {"Whisper": 0.2, "Murmur": 0.5}
"""Volume factor of each sentence that contains the word (0.2 is about 14 dB softer).
VolumeEngine leaves other sentences unchanged."""


class VolumeEngine(_WrappedEspeak):
    """Speak each sentence at a volume chosen by the VOLUME_MARKS word it contains."""

    def synthesize(self, text: str) -> bytes:
        import numpy as np

        pcm = super().synthesize(text)
        factor = next((value for word, value in VOLUME_MARKS.items() if word in text), 1.0)
        if factor == 1.0:
            return pcm
        scaled = np.frombuffer(pcm, dtype="<i2").astype(np.float64) * factor
        return np.round(scaled).astype("<i2").tobytes()
