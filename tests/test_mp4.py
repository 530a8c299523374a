"""MP4 box tables: the audio track length without decoding, and files cut short."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.audio import encode_aac
from pipeline.errors import OutputCheckError
from pipeline.ffmpeg import run_ffmpeg
from pipeline.mp4 import audio_track_length
from pipeline.probe import decoded_samples

RATE = 22050


def tone_file(folder: Path, frames: int) -> Path:
    """Write ``frames`` AAC frames (1024 samples each) of a quiet ramp as an .m4a file."""
    pcm = b"".join(((i % 200) * 40).to_bytes(2, "little", signed=True) for i in range(frames * 1024))
    path = folder / "tone.m4a"
    path.write_bytes(encode_aac(pcm, RATE, "64k"))
    return path


def test_audio_track_length_matches_decode(tmp_path: Path) -> None:
    path = tone_file(tmp_path, 40)

    length = audio_track_length(str(path))

    assert length.timescale == RATE
    assert length.samples == 40 * 1024
    assert length.samples == decoded_samples(str(path))


def test_audio_track_length_faststart_file(tmp_path: Path) -> None:
    source = tone_file(tmp_path, 25)
    moved = tmp_path / "faststart.m4b"
    run_ffmpeg(["-i", str(source), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(moved)])

    assert audio_track_length(str(moved)).samples == 25 * 1024
    assert moved.read_bytes()[4:8] == b"ftyp"


def test_audio_track_length_cut_short(tmp_path: Path) -> None:
    source = tone_file(tmp_path, 25)
    moved = tmp_path / "faststart.m4b"
    run_ffmpeg(["-i", str(source), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(moved)])
    data = moved.read_bytes()
    moved.write_bytes(data[: len(data) - 100])

    with pytest.raises(OutputCheckError, match="box 'mdat' .* the file is cut short"):
        audio_track_length(str(moved))


def test_audio_track_length_not_mp4(tmp_path: Path) -> None:
    path = tmp_path / "noise.m4b"
    path.write_bytes(b"\x00\x00\x00\x10free" + bytes(8))

    with pytest.raises(OutputCheckError, match="no moov box"):
        audio_track_length(str(path))
