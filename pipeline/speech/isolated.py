"""Run a speech engine in a child process so that a native abort fails one sentence, not the worker."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading

from pipeline.errors import EngineError
from pipeline.records import SynthesisSettings
from pipeline.speech.base import SpeechEngine
from pipeline.speech.host import settings_argument

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 120.0
"""Seconds a child may take to import its engine and load the voice."""


class EngineCrashedError(EngineError):
    """The engine's process died while speaking; the next call starts a new one."""


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class IsolatedEngine(SpeechEngine):
    """A SpeechEngine whose calls run in ``python -m pipeline.speech.host``.

    A plain subprocess, not multiprocessing, because Dask worker processes are daemonic
    and may not fork multiprocessing children. The child is started on first use and
    again after a crash. Calls are serialized by a lock.
    """

    def __init__(self, settings: SynthesisSettings, max_chars: int) -> None:
        self.name = settings.engine
        self.max_chars = max_chars
        self._settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._sample_rate = 0
        self._voice_id = ""
        self._cache_identity = ""
        self._lock = threading.Lock()
        with self._lock:
            self._start()

    def _start(self) -> None:
        command = [sys.executable, "-m", "pipeline.speech.host", settings_argument(self._settings)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None
        )
        header = self._read_header("while loading the voice")
        self._sample_rate = int(header["sample_rate"])
        self._voice_id = str(header["voice_id"])
        self._cache_identity = str(header["cache_identity"])
        logger.info("engine %s started in process %d", self._voice_id, self._process.pid)

    def _read_header(self, doing: str) -> dict:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            self._process = None
            raise EngineCrashedError(
                f"the {self.name} engine process died {doing} ({_describe_exit(code)})"
            )
        header = json.loads(line)
        if not header["ok"]:
            raise EngineError(header["error"])
        return header

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def voice_id(self) -> str:
        return self._voice_id

    @property
    def cache_identity(self) -> str:
        return self._cache_identity

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            assert self._process is not None and self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps({"text": text}).encode() + b"\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                pass  # the read below reports how the process died
            header = self._read_header(f"while speaking {text[:80]!r}")
            assert self._process is not None and self._process.stdout is not None
            return self._process.stdout.read(int(header["bytes"]))

    def close(self) -> None:
        """Stop the child process."""
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()
                self._process.wait(timeout=10)
                self._process = None
