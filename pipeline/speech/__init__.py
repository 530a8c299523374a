"""Speech engines and the per-process engine cache."""

from __future__ import annotations

import importlib
import logging
import threading

from pipeline.errors import EngineError
from pipeline.records import SynthesisSettings
from pipeline.speech.base import SpeechEngine, VoiceInfo

logger = logging.getLogger(__name__)

ENGINES = ("piper", "espeak")
"""Engine names accepted by ``--engine``."""

_engines: dict[tuple, SpeechEngine] = {}
_engines_lock = threading.Lock()


def _engine_key(settings: SynthesisSettings) -> tuple:
    return (
        settings.engine, settings.voice, settings.language,
        settings.length_scale, settings.engine_threads, settings.use_cuda, settings.isolate,
    )


def _plugin_class(name: str) -> type[SpeechEngine]:
    module_name, _, class_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
        engine = getattr(module, class_name)
    except (ImportError, AttributeError) as err:
        raise EngineError(
            f"speech engine {name!r} cannot be imported: {err}; check that the module is "
            "installed on every worker"
        ) from err
    if not (isinstance(engine, type) and issubclass(engine, SpeechEngine)):
        raise EngineError(f"speech engine {name!r} is not a SpeechEngine subclass")
    return engine


def engine_class(name: str) -> type[SpeechEngine]:
    """Return the engine class for ``name`` without loading a voice."""
    if ":" in name:
        return _plugin_class(name)
    if name == "piper":
        from pipeline.speech.piper import PiperEngine

        return PiperEngine
    if name == "espeak":
        from pipeline.speech.espeak import EspeakEngine

        return EspeakEngine
    raise EngineError(f"unknown speech engine {name!r}; choose one of: {', '.join(ENGINES)}")


def create_engine(settings: SynthesisSettings) -> SpeechEngine:
    """Build a new engine for ``settings``; prefer ``load_engine`` inside tasks."""
    if settings.engine == "piper":
        from pipeline.speech.piper import PiperEngine

        return PiperEngine(
            voice=settings.voice,
            length_scale=settings.length_scale,
            threads=settings.engine_threads,
            use_cuda=settings.use_cuda,
        )
    if settings.engine == "espeak":
        from pipeline.speech.espeak import EspeakEngine

        return EspeakEngine(
            voice=settings.voice,
            language=settings.language,
            length_scale=settings.length_scale,
        )
    if ":" in settings.engine:
        return _plugin_class(settings.engine)(settings)  # type: ignore[call-arg]
    raise EngineError(
        f"unknown speech engine {settings.engine!r}; choose one of: {', '.join(ENGINES)}"
    )


def load_engine(settings: SynthesisSettings) -> SpeechEngine:
    """Return this process's engine for ``settings``, building it on first use.

    Loading a voice takes about half a second and tens of MB, so every task in a worker
    process shares one instance per distinct setting. The lock also serializes first use
    when a worker runs several threads.
    """
    key = _engine_key(settings)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _new_engine(settings)
            _engines[key] = engine
    return engine


def _new_engine(settings: SynthesisSettings) -> SpeechEngine:
    if not settings.isolate:
        return create_engine(settings)

    from pipeline.speech.isolated import IsolatedEngine

    return IsolatedEngine(settings, engine_class(settings.engine).max_chars)


def list_voices(engine: str | None = None) -> list[VoiceInfo]:
    """List the voices available on this machine, for one engine or all of them."""
    voices: list[VoiceInfo] = []
    if engine in (None, "piper"):
        from pipeline.speech import piper

        voices.extend(piper.list_voices())
    if engine in (None, "espeak"):
        from pipeline.speech import espeak

        try:
            voices.extend(espeak.list_voices())
        except EngineError as err:
            logger.warning("espeak-ng voices unavailable: %s", err)
    return voices


__all__ = ["ENGINES", "SpeechEngine", "VoiceInfo", "create_engine", "engine_class", "load_engine", "list_voices"]
