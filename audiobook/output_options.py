"""The ``build`` options that choose the output: format, rate, loudness, captions, metadata."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from audiobook.cli import InvalidInput
from audiobook.outputs import MetadataOverrides
from pipeline.captions import CAPTION_KINDS
from pipeline.formats import FORMATS, OutputFormat, check_bitrate, check_sample_rate, get_format

logger = logging.getLogger(__name__)

IMAGE_SIGNATURES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
"""Leading bytes of the cover image types every output format can carry."""

LOUDNESS_RANGE = (-70.0, -5.0)
"""Accepted ``--loudness`` targets, in LUFS."""

FORMAT_HELP = (
    "Output format: m4b (AAC, MP4 chapters), mp3 (ID3 chapters), opus and flac "
    "(chapter comments), or wav (no chapters). [default: m4b]"
)

OPTIONS = [
    click.option("--format", "output_format", type=click.Choice(list(FORMATS), case_sensitive=False), help=FORMAT_HELP),
    click.option("--bitrate", help="Bitrate of m4b, mp3 and opus, such as 64k. [default: 64k, opus 32k]"),
    click.option("--sample-rate", type=click.IntRange(min=1), help="Sample rate of the output in Hz. [default: the voice's, 48000 for opus]"),
    click.option("--split-chapters", is_flag=True, help="Write one file per chapter and an M3U playlist into the folder OUTPUT."),
    click.option("--captions", type=click.Choice(CAPTION_KINDS), help="Also write captions, one cue per sentence, beside the output."),
    click.option("--loudness", help="Integrated loudness target in LUFS (-70 to -5), or 'off'. [default: -18]"),
    click.option("--title", help="Title tag; default: the book's own."),
    click.option("--author", "authors", multiple=True, help="Author tag; repeat for several authors. [default: the book's]"),
    click.option("--narrator", help="Narrator tag. [default: the voice's name]"),
    click.option("--year", help="Year or date tag. [default: the book's publication date]"),
    click.option("--description", help="Description tag. [default: the book's own]"),
    click.option("--cover", type=click.Path(path_type=Path), help="Cover image, JPEG or PNG. [default: the book's cover]"),
]
"""The options, applied to ``build`` in this order."""


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the output options to a click command."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


@dataclass(frozen=True)
class OutputChoice:
    """The output options after validation."""

    path: Path
    """The audiobook file, or the folder of chapter files."""

    settings: dict[str, Any]
    """SynthesisSettings fields set by the options."""

    split_chapters: bool
    """Write one file per chapter into the folder ``path``."""

    captions: str
    """``srt``, ``vtt`` or empty."""

    metadata: MetadataOverrides
    """Tags and cover from the options."""


def parse_loudness(value: str | float | None) -> float | None:
    """Parse a loudness target in LUFS, or ``off`` for None.

    Raises
    ------
    InvalidInput
        When the value is neither ``off`` nor a number from -70 to -5.
    """
    if value is None or str(value).strip().lower() in ("off", "none", "false"):
        return None
    try:
        target = float(value)
    except ValueError as err:
        raise InvalidInput(f"invalid --loudness {value!r}; use a target in LUFS such as -18, or 'off'") from err
    low, high = LOUDNESS_RANGE
    if not low <= target <= high:
        raise InvalidInput(f"--loudness {target:g} is out of range; use {low:g} to {high:g} LUFS, or 'off'")
    return target


def read_cover(path: Path) -> tuple[bytes, str]:
    """Read a cover image and return its bytes and MIME type.

    Raises
    ------
    InvalidInput
        When the file cannot be read or is neither JPEG nor PNG.
    """
    try:
        image = path.read_bytes()
    except OSError as err:
        raise InvalidInput(f"cover {str(path)!r} cannot be read: {err.strerror}; check the path") from err
    for signature, media_type in IMAGE_SIGNATURES.items():
        if image.startswith(signature):
            return image, media_type
    raise InvalidInput(f"cover {str(path)!r} is not a JPEG or PNG image; convert it to one of them")


def _output_path(input_path: Path, output: Path | None, output_format: OutputFormat, split: bool) -> Path:
    """Return the output path, defaulting to INPUT with the format's suffix (or none, for a folder)."""
    audio_suffixes = {known.suffix for known in FORMATS.values()}
    if split:
        path = output or input_path.with_suffix("")
        if path.suffix.lower() in audio_suffixes:
            raise InvalidInput(
                f"--split-chapters writes a folder, but output {str(path)!r} ends in {path.suffix}; "
                "give -o a folder name without an audio suffix"
            )
        if path.exists() and not path.is_dir():
            raise InvalidInput(f"output {str(path)!r} is a file; --split-chapters needs a folder name")
        return path

    path = output or input_path.with_suffix(output_format.suffix)
    if path.suffix.lower() != output_format.suffix:
        raise InvalidInput(
            f"output {str(path)!r} does not end in {output_format.suffix}, the suffix of "
            f"--format {output_format.name}; rename it or pass the --format that matches it"
        )
    return path


def resolve_output_options(
    input_path: Path, output: Path | None, default_format: str, overwrite: bool, options: dict[str, Any]
) -> OutputChoice:
    """Validate the output options and return what they choose.

    Raises
    ------
    InvalidInput
        Naming the option and the fix, for exit code 2.
    """
    output_format = get_format(options.get("output_format") or default_format)
    bitrate = options.get("bitrate") or ""
    rate = options.get("sample_rate") or 0
    try:
        check_bitrate(output_format, bitrate)
        if rate:
            check_sample_rate(output_format, rate)
    except ValueError as err:
        raise InvalidInput(str(err)) from err

    settings: dict[str, Any] = {"output_format": output_format.name}
    if bitrate:
        settings["audio_bitrate"] = bitrate
    if rate:
        settings["sample_rate"] = rate
    if options.get("loudness") is not None:
        settings["loudness_target"] = parse_loudness(options["loudness"])

    cover, cover_type = read_cover(options["cover"]) if options.get("cover") else (None, "")
    metadata = MetadataOverrides(
        title=options.get("title") or "",
        authors=tuple(options.get("authors") or ()),
        narrator=options.get("narrator") or "",
        year=options.get("year") or "",
        description=options.get("description") or "",
        cover=cover,
        cover_media_type=cover_type,
    )
    split = bool(options.get("split_chapters"))
    path = _output_path(input_path, output, output_format, split)
    captions = options.get("captions") or ""
    sidecar = path.with_suffix(f".{captions}") if captions and not split else None
    if sidecar and sidecar.exists() and not overwrite:
        raise InvalidInput(f"captions {str(sidecar)!r} already exist; pass --overwrite to replace them")
    return OutputChoice(path, settings, split, captions, metadata)
