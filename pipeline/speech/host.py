"""Child process that hosts one speech engine, so a native crash kills only this process.

Protocol on stdin and stdout, one request at a time. The parent starts the process with the
settings as a JSON argument. The child answers with one JSON header line: first a ready line
(``{"ok": true, "sample_rate": ..., "voice_id": ...}``), then one per request. A request is
one JSON line ``{"text": ...}``; a successful answer's header carries ``"bytes": N`` and is
followed by N bytes of PCM. A failed load or synthesis answers ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import BinaryIO

from pipeline.errors import EngineError
from pipeline.records import SynthesisSettings

logger = logging.getLogger(__name__)


def _send(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    stream.write(json.dumps(header).encode() + b"\n")
    stream.write(payload)
    stream.flush()


def serve(settings: SynthesisSettings, requests: BinaryIO, answers: BinaryIO) -> None:
    """Load the engine for ``settings`` and serve requests until stdin closes."""
    from pipeline.speech import create_engine

    try:
        engine = create_engine(settings)
    except EngineError as err:
        _send(answers, {"ok": False, "error": str(err)})
        return
    _send(
        answers,
        {
            "ok": True,
            "sample_rate": engine.sample_rate,
            "voice_id": engine.voice_id,
            "cache_identity": engine.cache_identity,
        },
    )

    for line in requests:
        text = json.loads(line)["text"]
        try:
            pcm = engine.synthesize(text)
        except EngineError as err:
            _send(answers, {"ok": False, "error": str(err)})
            continue
        _send(answers, {"ok": True, "bytes": len(pcm)}, pcm)


def main() -> None:
    """Entry point: ``python -m pipeline.speech.host SETTINGS_JSON``."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    fields = json.loads(sys.argv[1])
    settings = SynthesisSettings(**fields)
    serve(settings, sys.stdin.buffer, sys.stdout.buffer)


def settings_argument(settings: SynthesisSettings) -> str:
    """Encode ``settings`` for the child's command line."""
    return json.dumps(dataclasses.asdict(settings))


if __name__ == "__main__":
    main()
