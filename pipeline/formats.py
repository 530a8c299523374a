"""Output formats: codec arguments, frame sizes, suffixes and how each carries chapters.

The drift of joined chapters was measured with the bundled ffmpeg 9.0 (the ``imageio-ffmpeg``
wheel). Three chapters of tone bursts, padded to whole codec frames, were encoded one by one
and joined with the concat demuxer and ``-c copy``. The joined file was decoded and its tone
onsets compared with the expected chapter starts.

- AAC (M4B): exact when each chapter is padded to whole 1024-sample frames and the concat
  list gives ``inpoint 0``, which drops each file's priming packet. Without ``inpoint 0``
  every join adds 1024 samples. M4B joins chapter files by stream copy.
- MP3 (LAME): every join adds 1152 samples (two 576-sample frames at 22050 Hz, one
  1152-sample frame at 44100 Hz), because each file's encoder delay and end padding stay in
  the stream; ``inpoint 0`` does not remove them.
- Opus: every join adds 960 samples at 48 kHz (one 20 ms frame), the pre-skip and end
  trimming of each file.
- FLAC: the samples join exactly, but the result is not a valid stream: STREAMINFO keeps the
  first chapter's length and MD5 and frame numbers restart at each join, so ``flac -t``
  reports an MD5 mismatch and seeking fails.

So only M4B joins encoded chapter files. For MP3, Opus, FLAC and WAV the chapter tasks
produce FLAC, and the book is encoded once at the end from the joined FLAC chapters. That
final encode lands every chapter start exactly (measured: 0 samples of drift per join for
all four; the MP3 decodes 7 samples longer in total, within its last frame).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
"""Sample rates ffmpeg's AAC encoder takes, in samples per second."""

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Sample rates of MPEG-1, MPEG-2 and MPEG-2.5 layer III, in samples per second."""

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
"""Input sample rates libopus takes, in samples per second; decoders always output 48 kHz."""

BITRATE_PATTERN = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?[kK]?$")
"""A bitrate in ffmpeg's notation: bits per second, optionally with a ``k`` suffix."""


@dataclass(frozen=True)
class OutputFormat:
    """Codec, container and chapter facts of one output format."""

    name: str
    """Value of ``--format``."""

    suffix: str
    """File suffix of the finished book."""

    encoder: str
    """ffmpeg encoder of the book's audio."""

    codec: str
    """Codec name ffmpeg reports when it reads the finished file back."""

    muxer: str
    """ffmpeg output format (``-f``)."""

    muxer_options: tuple[str, ...] = ()
    """Extra ffmpeg output options of the container."""

    stream_copy: bool = False
    """True when chapters are encoded in this format and joined by stream copy; False when
    chapters are FLAC and the book is encoded once at the end."""

    chapter_frame: int = 1
    """Samples each chapter is padded to a multiple of, so stream-copied joins land on
    codec frame boundaries; 1 for no padding."""

    frame_samples: int = 1
    """Samples in one codec frame at the decoded rate; the length check allows one frame
    per chapter."""

    sample_rates: tuple[int, ...] = ()
    """Sample rates the encoder takes, in samples per second; empty for any rate."""

    fallback_rate: int = 0
    """Rate to resample to when the voice's rate is not in ``sample_rates``, in samples per second."""

    decoded_rate: int = 0
    """Rate decoders output, in samples per second, when it differs from the encoded rate (Opus)."""

    default_bitrate: str = ""
    """Bitrate when ``--bitrate`` is not given; empty for lossless formats."""

    chapters: str = ""
    """Chapter storage: ``mp4`` (MP4 chapter list, by ffmpeg), ``id3`` (ID3v2.3
    CHAP frames and a top-level ordered CTOC, by ffmpeg), ``vorbis`` (``CHAPTER001``
    comments, by mutagen), or empty for none.

    ID3 chapters come from ffmpeg because mutagen 1.48 saves frames sorted by their size,
    and ffmpeg 9.0 then listed the chapters of a test book out of order. Vorbis comment
    chapters come from mutagen because ffmpeg 9.0's FLAC muxer leaves them out, and its
    Ogg muxer numbered them from 000 and wrote the second chapter of a test book at
    8.812 s instead of 7.812 s."""

    cover: str = ""
    """Cover storage: ``ffmpeg`` (attached picture), ``mutagen`` (a FLAC picture block in a
    comment), or empty when the format carries none."""

    description_tag: str = "description"
    """ffmpeg metadata key that stores the book's description in this container."""

    stream_tags: bool = False
    """True when the container keeps tags in the audio stream's header (Ogg), so ffmpeg
    must map the book's tags onto the stream instead of the file."""

    @property
    def lossless(self) -> bool:
        """True for formats that take no bitrate."""
        return not self.default_bitrate


FORMATS: dict[str, OutputFormat] = {
    "m4b": OutputFormat(
        name="m4b", suffix=".m4b", encoder="aac", codec="aac", muxer="mp4",
        muxer_options=("-movflags", "+faststart", "-brand", "M4B "),
        stream_copy=True, chapter_frame=1024, frame_samples=1024, sample_rates=AAC_RATES,
        fallback_rate=44100, default_bitrate="64k", chapters="mp4", cover="ffmpeg",
    ),
    "mp3": OutputFormat(
        name="mp3", suffix=".mp3", encoder="libmp3lame", codec="mp3", muxer="mp3",
        muxer_options=("-id3v2_version", "3", "-write_xing", "1"),
        frame_samples=1152, sample_rates=MP3_RATES, fallback_rate=44100,
        default_bitrate="64k", chapters="id3", cover="ffmpeg", description_tag="comment",
    ),
    "opus": OutputFormat(
        name="opus", suffix=".opus", encoder="libopus", codec="opus", muxer="opus",
        frame_samples=960, sample_rates=OPUS_RATES, fallback_rate=48000, decoded_rate=48000,
        default_bitrate="32k", chapters="vorbis", cover="mutagen", stream_tags=True,
    ),
    "flac": OutputFormat(
        name="flac", suffix=".flac", encoder="flac", codec="flac", muxer="flac",
        chapters="vorbis", cover="ffmpeg",
    ),
    "wav": OutputFormat(
        name="wav", suffix=".wav", encoder="pcm_s16le", codec="pcm_s16le", muxer="wav",
        description_tag="comment",
    ),
}
"""Every output format by ``--format`` name."""


def get_format(name: str) -> OutputFormat:
    """Return the format called ``name``.

    Raises
    ------
    ValueError
        When ``name`` is not a known format; the message lists the known ones.
    """
    try:
        return FORMATS[name.lower()]
    except KeyError as err:
        raise ValueError(
            f"unknown output format {name!r}; use one of {', '.join(FORMATS)}"
        ) from err


def output_rate(output: OutputFormat, requested: int, voice_rate: int) -> int:
    """Return the sample rate chapters are laid out at, in samples per second.

    ``requested`` (0 for none) wins; else the voice's rate when the encoder takes it, else
    the format's fallback rate.
    """
    if requested:
        return requested
    if not output.sample_rates or voice_rate in output.sample_rates:
        return voice_rate
    return output.fallback_rate


def check_sample_rate(output: OutputFormat, rate: int) -> None:
    """Raise ValueError when ``output``'s encoder cannot take ``rate`` samples per second."""
    if rate < 8000 or rate > 192000:
        raise ValueError(f"sample rate {rate} Hz is out of range; use 8000 to 192000")
    if output.sample_rates and rate not in output.sample_rates:
        rates = ", ".join(str(value) for value in output.sample_rates)
        raise ValueError(f"{output.name} cannot use {rate} Hz; use one of {rates}")


def check_bitrate(output: OutputFormat, bitrate: str) -> None:
    """Raise ValueError when ``bitrate`` is malformed or given for a lossless format."""
    if not bitrate:
        return
    if output.lossless:
        raise ValueError(f"--bitrate {bitrate} does not apply to lossless {output.name}; leave it out")
    if not BITRATE_PATTERN.match(bitrate):
        raise ValueError(f"invalid bitrate {bitrate!r}; use bits per second such as 64k or 96000")


def encoder_arguments(output: OutputFormat, bitrate: str = "") -> list[str]:
    """Return ffmpeg's codec options that encode audio in ``output``'s codec."""
    arguments = ["-c:a", output.encoder]
    if not output.lossless:
        arguments += ["-b:a", bitrate or output.default_bitrate]
    if output.name == "opus":
        # Speech at audiobook bitrates; "voip" would add a high-pass that changes loudness.
        arguments += ["-application", "audio"]
    return arguments


def chapter_format(output: OutputFormat) -> OutputFormat:
    """Return the format chapter tasks encode in: ``output`` itself or FLAC."""
    return output if output.stream_copy else FORMATS["flac"]
