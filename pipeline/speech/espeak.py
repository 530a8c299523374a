"""The espeak-ng formant engine, called through ctypes from the espeakng-loader wheel."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import EngineError
from pipeline.speech.base import SpeechEngine, VoiceInfo

logger = logging.getLogger(__name__)

# Constants from espeak-ng's speak_lib.h (API revision 12).
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1
EE_OK = 0

RATE_NORMAL = 175
"""Default espeak-ng speaking rate in words per minute, which ``length_scale`` divides."""

RATE_MINIMUM = 80
"""Lowest espeak-ng speaking rate in words per minute. The library treats lower values as 80."""

BUFFER_MS = 500
"""Audio per synth callback in milliseconds. Longer buffers mean fewer calls into Python."""

VOICES_HINT = "run `audiobook voices --engine espeak` to list the installed voices"

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
"""``t_espeak_callback`` with the samples, their count and the event list (unused here)."""


class _EspeakVoice(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class _VoiceEntry:
    """One voice file that espeak-ng lists."""

    identifier: str
    """Path of the voice file below ``espeak-ng-data`` (``gmw/en-US``)."""

    display_name: str
    """Name for people (``English (America)``)."""

    languages: tuple[tuple[int, str], ...]
    """Pairs of priority (lower is preferred) and lowercase language tag."""

    @property
    def name(self) -> str:
        """Lowercase last part of the identifier (``en-us``), the value for ``--voice``."""
        return self.identifier.rsplit("/", 1)[-1].lower()

    @property
    def language(self) -> str:
        """First language tag of the voice, or its name when it lists none."""
        if self.languages:
            return self.languages[0][1]
        return self.name


@dataclass(frozen=True)
class _Library:
    """The loaded and initialised libespeak-ng of this process."""

    handle: ctypes.CDLL
    path: str
    data_path: Path
    sample_rate: int
    version: str
    voices: tuple[_VoiceEntry, ...]


# espeak-ng keeps one global synthesizer per process, so this lock guards every call
# into the library and the `_chunks` buffer that the synth callback fills.
_lock = threading.Lock()
_library: _Library | None = None
_chunks: list[bytes] = []


@_SYNTH_CALLBACK
def _collect_samples(wav, sample_count, events) -> int:  # noqa: ANN001
    # A NULL `wav` marks the end of synthesis, and a count of 0 can occur mid-stream.
    if wav and sample_count > 0:
        _chunks.append(ctypes.string_at(wav, sample_count * 2))
    return 0


def _locate_library() -> tuple[str, str | None]:
    """Find libespeak-ng and its data folder, preferring the espeakng-loader wheel.

    Returns
    -------
    tuple[str, str | None]
        The library path and its ``espeak-ng-data`` folder. The folder is ``None`` for a
        system library, which then uses the data path compiled into it.

    Raises
    ------
    EngineError
        When neither the wheel nor a system ``libespeak-ng.so.1`` is installed.
    """
    wheel_problem = "the espeakng-loader package is not installed"
    try:
        import espeakng_loader
    except ImportError:
        espeakng_loader = None

    if espeakng_loader is not None:
        library_path = espeakng_loader.get_library_path()
        try:
            data_path = espeakng_loader.get_data_path()
        except RuntimeError as err:
            wheel_problem = f"the espeakng-loader package is broken ({err})"
        else:
            if Path(library_path).is_file():
                return library_path, data_path
            wheel_problem = f"the espeakng-loader package lacks {library_path}"
        logger.warning("%s; looking for a system libespeak-ng", wheel_problem)

    system_library = ctypes.util.find_library("espeak-ng")
    if system_library:
        return system_library, None

    raise EngineError(
        f"libespeak-ng not found: {wheel_problem} and no system libespeak-ng.so.1 was "
        "found; run: pip install espeakng-loader"
    )


def _declare_signatures(handle: ctypes.CDLL) -> None:
    """Set the argument and return types of the speak_lib.h functions this module calls."""
    handle.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    handle.espeak_Initialize.restype = ctypes.c_int
    handle.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    handle.espeak_SetSynthCallback.restype = None
    handle.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    handle.espeak_SetVoiceByName.restype = ctypes.c_int
    handle.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    handle.espeak_SetParameter.restype = ctypes.c_int
    handle.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]
    handle.espeak_Synth.restype = ctypes.c_int
    handle.espeak_Synchronize.argtypes = []
    handle.espeak_Synchronize.restype = ctypes.c_int
    handle.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    handle.espeak_Info.restype = ctypes.c_char_p
    handle.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    handle.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))


def _initialize(handle: ctypes.CDLL, library_path: str, data_path: str | None) -> int:
    """Start the synthesizer in synchronous mode and return its sample rate in Hz."""
    if data_path is not None and not (Path(data_path) / "phontab").is_file():
        raise EngineError(
            f"espeak-ng data folder {data_path!r} has no phontab file; "
            "reinstall it with: pip install --force-reinstall espeakng-loader"
        )

    # Without DONT_EXIT, espeak-ng calls exit(1) when its data is missing, which would
    # kill the worker process. With it, the call returns 0 instead.
    encoded_path = data_path.encode() if data_path is not None else None
    sample_rate = handle.espeak_Initialize(
        AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, encoded_path, ESPEAK_INITIALIZE_DONT_EXIT
    )
    if sample_rate <= 0:
        raise EngineError(
            f"espeak-ng from {library_path} failed to initialise with data {data_path!r} "
            f"(it returned {sample_rate}); its message is on stderr. "
            "Install a working copy with: pip install --force-reinstall espeakng-loader"
        )

    handle.espeak_SetSynthCallback(_collect_samples)
    return sample_rate


def _parse_languages(address: int | None) -> tuple[tuple[int, str], ...]:
    """Decode an ``espeak_VOICE.languages`` list.

    Each entry is a priority byte followed by a NUL-terminated tag, and a zero byte ends the list.
    """
    languages: list[tuple[int, str]] = []
    if not address:
        return ()

    offset = 0
    while True:
        priority = ctypes.c_ubyte.from_address(address + offset).value
        if priority == 0:
            break
        tag = ctypes.string_at(address + offset + 1)
        languages.append((priority, tag.decode("utf-8", errors="replace").lower()))
        offset += len(tag) + 2
    return tuple(languages)


def _read_voices(handle: ctypes.CDLL) -> tuple[_VoiceEntry, ...]:
    """List the voices in the data folder by walking the NULL-terminated array."""
    array = handle.espeak_ListVoices(None)
    voices: list[_VoiceEntry] = []
    if not array:
        return ()

    index = 0
    while array[index]:
        voice = array[index].contents
        voices.append(
            _VoiceEntry(
                identifier=(voice.identifier or b"").decode("utf-8", errors="replace"),
                display_name=(voice.name or b"").decode("utf-8", errors="replace").strip(),
                languages=_parse_languages(voice.languages),
            )
        )
        index += 1
    return tuple(voices)


def _load_library() -> _Library:
    """Load and initialise libespeak-ng. The caller must hold ``_lock``."""
    library_path, data_path = _locate_library()
    try:
        handle = ctypes.CDLL(library_path)
    except OSError as err:
        raise EngineError(
            f"cannot load libespeak-ng from {library_path!r}: {err}; "
            "reinstall it with: pip install --force-reinstall espeakng-loader"
        ) from err

    _declare_signatures(handle)
    sample_rate = _initialize(handle, library_path, data_path)

    data_path_pointer = ctypes.c_char_p()
    version = handle.espeak_Info(ctypes.byref(data_path_pointer)).decode()
    used_data_path = (data_path_pointer.value or b"").decode()
    voices = _read_voices(handle)
    if not voices:
        raise EngineError(
            f"espeak-ng {version} found no voices in {used_data_path!r}; "
            "reinstall it with: pip install --force-reinstall espeakng-loader"
        )

    logger.debug(
        "loaded espeak-ng %s from %s with data %s: %d voices at %d Hz",
        version, library_path, used_data_path, len(voices), sample_rate,
    )
    return _Library(
        handle=handle,
        path=library_path,
        data_path=Path(used_data_path),
        sample_rate=sample_rate,
        version=version,
        voices=voices,
    )


def _get_library() -> _Library:
    """Return this process's library, loading it on first use. The caller must hold ``_lock``."""
    global _library
    if _library is None:
        _library = _load_library()
    return _library


def _normalize_tag(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


def _find_voice(voices: tuple[_VoiceEntry, ...], key: str) -> _VoiceEntry | None:
    """Find the voice that ``key`` names.

    ``key`` matches, case-insensitively and in this order: a voice identifier
    (``gmw/en-US``), its last part (``en-us``), a voice's display name
    (``English (America)``), or a language tag that a voice lists (``en-gb``), where the
    voice with the lowest priority number wins.
    """
    expected = _normalize_tag(key)
    for voice in voices:
        if expected in (voice.identifier.lower(), voice.name):
            return voice

    for voice in voices:
        if expected == voice.display_name.lower():
            return voice

    speakers = [
        (priority, index, voice)
        for index, voice in enumerate(voices)
        for priority, tag in voice.languages
        if tag == expected
    ]
    if speakers:
        return min(speakers, key=lambda speaker: speaker[:2])[2]
    return None


def _find_voice_for_language(
    voices: tuple[_VoiceEntry, ...], language: str
) -> _VoiceEntry | None:
    """Find a voice for a BCP 47 tag, dropping subtags from the end until one matches."""
    tag = _normalize_tag(language)
    while tag:
        voice = _find_voice(voices, tag)
        if voice is not None:
            if tag != _normalize_tag(language):
                logger.info(
                    "no espeak-ng voice for %s; falling back to %s (voice %s)",
                    language, tag, voice.name,
                )
            return voice
        tag = tag.rpartition("-")[0]
    return None


def _select_voice(library: _Library, voice: str, language: str) -> tuple[_VoiceEntry, str]:
    """Resolve ``--voice`` or, when it is empty, the language to a voice and a variant.

    Returns
    -------
    tuple[_VoiceEntry, str]
        The voice and the variant name after ``+`` in ``voice``, or ``""``.
    """
    if not voice:
        entry = _find_voice_for_language(library.voices, language)
        if entry is None:
            raise EngineError(
                f"no espeak-ng voice speaks language {language!r}; pass --voice with a voice "
                f"for it ({VOICES_HINT})"
            )
        return entry, ""

    base, _, variant = voice.partition("+")
    entry = _find_voice(library.voices, base)
    if entry is None:
        raise EngineError(f"espeak-ng voice {base!r} not found; {VOICES_HINT}")

    # espeak_SetVoiceByName accepts an unknown variant without an error and speaks
    # without it, so check the variant file here.
    variant_dir = library.data_path / "voices" / "!v"
    if variant and not (variant_dir / variant).is_file():
        raise EngineError(
            f"espeak-ng voice variant {variant!r} not found in {str(variant_dir)!r}; "
            "use a file name from that folder after '+' (for example en-us+f3)"
        )
    return entry, variant


def rate_for_length_scale(length_scale: float) -> int:
    """Convert a Piper-style length scale to an espeak-ng speaking rate.

    Parameters
    ----------
    length_scale
        Duration factor: 1.0 is the normal 175 words per minute, 2.0 half that speed.

    Returns
    -------
    int
        Words per minute, at least 80 because espeak-ng speaks no slower.

    Raises
    ------
    EngineError
        When ``length_scale`` is not a positive finite number.
    """
    if not (math.isfinite(length_scale) and length_scale > 0):
        raise EngineError(
            f"length scale {length_scale!r} is invalid; pass a positive number "
            "(1.0 is the normal speed, 2.0 half speed)"
        )

    # NOTE: speak_lib.h documents rates up to 450. The espeakng-loader 0.2.4 build speeds
    # up beyond that (measured: 900 gives half the audio of 450), but other builds may not.
    rate = round(RATE_NORMAL / length_scale)
    if rate < RATE_MINIMUM:
        logger.warning(
            "length scale %s asks for %d words per minute; espeak-ng speaks at least %d",
            length_scale, rate, RATE_MINIMUM,
        )
        return RATE_MINIMUM
    return rate


class EspeakEngine(SpeechEngine):
    """Speak with an espeak-ng voice, loaded once per process through ctypes.

    Parameters
    ----------
    voice
        Voice name from ``list_voices`` (``en-us``), an identifier (``gmw/en-US``), a
        language tag a voice lists (``en-gb``), optionally with ``+variant`` (``en-us+f3``).
        Empty selects a voice for ``language``.
    language
        BCP 47 tag used when ``voice`` is empty. ``en-US`` selects ``en-us``, and
        ``de-CH`` falls back to ``de``.
    length_scale
        Duration factor. The speaking rate is 175 words per minute divided by it.

    Raises
    ------
    EngineError
        When libespeak-ng cannot be loaded or no voice matches.
    """

    name = "espeak"
    max_chars = 1000

    def __init__(self, voice: str = "", language: str = "en", length_scale: float = 1.0) -> None:
        self._rate = rate_for_length_scale(length_scale)
        with _lock:
            library = _get_library()
            self._voice, self._variant = _select_voice(library, voice, language)
            self._apply_settings(library)

        self._sample_rate = library.sample_rate
        self._version = library.version
        logger.info(
            "espeak-ng voice %s (%s) at %d words per minute",
            self._espeak_name, self._voice.display_name, self._rate,
        )

    @property
    def _espeak_name(self) -> str:
        if self._variant:
            return f"{self._voice.identifier}+{self._variant}"
        return self._voice.identifier

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def voice_id(self) -> str:
        label = self._voice.name
        if self._variant:
            label += f"+{self._variant}"
        return f"espeak-ng/{label}@{self._version}"

    def _apply_settings(self, library: _Library) -> None:
        """Select this engine's voice and rate in the shared synthesizer under ``_lock``."""
        # Engines share the library, so every call sets both. Both calls together took
        # about 0.1 ms when measured on a 2-core AMD EPYC VM.
        status = library.handle.espeak_SetVoiceByName(self._espeak_name.encode())
        if status != EE_OK:
            raise EngineError(
                f"espeak-ng could not select voice {self._espeak_name!r} (status {status}); "
                f"{VOICES_HINT}"
            )

        status = library.handle.espeak_SetParameter(ESPEAK_RATE, self._rate, 0)
        if status != EE_OK:
            raise EngineError(
                f"espeak-ng rejected the rate {self._rate} words per minute (status {status}); "
                "pass a length scale near 1.0"
            )

    def synthesize(self, text: str) -> bytes:
        # espeak-ng turns a lone "!?" into about 0.9 s of speech, but the engine contract
        # requires empty PCM for text without letters, digits or symbols.
        if not _has_speech(text):
            return b""

        # NUL would end the C string early, and lone surrogates have no UTF-8 encoding.
        encoded = text.replace("\0", " ").encode("utf-8", errors="replace")
        with _lock:
            library = _get_library()
            self._apply_settings(library)
            pcm = _run_synthesis(library.handle, encoded)

        samples = np.frombuffer(pcm, dtype=np.int16)
        return samples.astype("<i2").tobytes()


def _has_speech(text: str) -> bool:
    """Return whether ``text`` has a character other than punctuation, spaces and controls."""
    return any(unicodedata.category(char)[0] not in "PZC" for char in text)


def _run_synthesis(handle: ctypes.CDLL, encoded: bytes) -> bytes:
    """Speak UTF-8 text and return the native-endian samples. The caller must hold ``_lock``."""
    _chunks.clear()
    try:
        status = handle.espeak_Synth(
            encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
        )
        if status != EE_OK:
            raise EngineError(
                f"espeak-ng failed on {encoded[:80]!r} with status {status}; "
                "check the text and the voice"
            )

        status = handle.espeak_Synchronize()
        if status != EE_OK:
            raise EngineError(f"espeak-ng failed to finish {encoded[:80]!r} (status {status})")
        return b"".join(_chunks)
    finally:
        _chunks.clear()


def list_voices() -> list[VoiceInfo]:
    """List the espeak-ng voices, without variants.

    Returns
    -------
    list[VoiceInfo]
        One entry per voice file, whose ``name`` is the value for ``--voice``.

    Raises
    ------
    EngineError
        When libespeak-ng cannot be loaded.
    """
    with _lock:
        library = _get_library()
    return [
        VoiceInfo("espeak", voice.name, voice.language, voice.display_name)
        for voice in library.voices
    ]
