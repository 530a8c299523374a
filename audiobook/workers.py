"""Ask every connected worker what it can speak, and have it speak a test phrase."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from distributed import Client

from pipeline.errors import EngineError
from pipeline.records import SynthesisSettings

logger = logging.getLogger(__name__)

TEST_PHRASE = "This is a test of the speech engine."
"""The phrase every worker speaks to prove that its engines work."""


@dataclass(frozen=True)
class EngineCheck:
    """The result of one engine speaking the test phrase on one worker."""

    engine: str
    """Engine name."""

    voice: str
    """Voice identity, or empty when the engine failed to load."""

    seconds: float
    """Length of the spoken test phrase in seconds; 0 on failure."""

    error: str = ""
    """The reason the engine failed; empty on success."""


@dataclass(frozen=True)
class WorkerReport:
    """The capabilities of one worker."""

    address: str
    """The worker's address."""

    threads: int
    """Threads the worker runs tasks on."""

    memory_limit: int
    """Memory limit in bytes (0 when unlimited)."""

    device: str
    """``GPU`` when ONNX Runtime on the worker offers CUDA, else ``CPU``."""

    resources: dict[str, float] = field(default_factory=dict)
    """Resources the worker was started with (``--resources GPU=1``)."""

    checks: tuple[EngineCheck, ...] = ()
    """One check per engine."""

    voices: tuple[str, ...] = ()
    """Number of voices per engine, as ``engine: count``."""


def check_engines(settings: SynthesisSettings) -> tuple[str, tuple[EngineCheck, ...], tuple[str, ...]]:
    """Run on a worker: report the device, each engine's test phrase, and voice counts."""
    from pipeline.speech import ENGINES, engine_class, list_voices
    from pipeline.speech.isolated import IsolatedEngine

    device = "CPU"
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            device = "GPU"
    except ImportError:
        pass

    checks = []
    for engine_name in ENGINES:
        engine_settings = replace(settings, engine=engine_name, voice="" if engine_name != settings.engine else settings.voice)
        try:
            engine = IsolatedEngine(engine_settings, engine_class(engine_name).max_chars)
            pcm = engine.synthesize(TEST_PHRASE)
            engine.close()
            checks.append(EngineCheck(engine_name, engine.voice_id, len(pcm) / 2 / engine.sample_rate))
        except EngineError as err:
            checks.append(EngineCheck(engine_name, "", 0.0, str(err)))

    counts = {}
    for voice in list_voices():
        counts[voice.engine] = counts.get(voice.engine, 0) + 1
    return device, tuple(checks), tuple(f"{name}: {count}" for name, count in sorted(counts.items()))


def survey_workers(client: Client, settings: SynthesisSettings, timeout: float = 120.0) -> list[WorkerReport]:
    """Check every worker connected to ``client``'s scheduler; a worker that fails is reported, not skipped."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    started = time.monotonic()
    try:
        results = client.run(check_engines, settings, on_error="return")
    except TypeError:  # distributed older than 2023.x has no on_error
        results = client.run(check_engines, settings)
    logger.info("surveyed %d workers in %.1f s", len(results), time.monotonic() - started)

    reports = []
    for address, worker in sorted(info.items()):
        result = results.get(address)
        if isinstance(result, BaseException) or result is None:
            checks = (EngineCheck("all", "", 0.0, f"worker did not answer: {result!r}"),)
            device, voices = "unknown", ()
        else:
            device, checks, voices = result
        reports.append(
            WorkerReport(
                address=address,
                threads=int(worker.get("nthreads", 0)),
                memory_limit=int(worker.get("memory_limit") or 0),
                device=device,
                resources=dict(worker.get("resources") or {}),
                checks=checks,
                voices=voices,
            )
        )
    return reports
