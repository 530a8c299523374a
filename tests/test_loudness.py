"""BS.1770 loudness: agreement with pyloudnorm, exact combination of chapters, the gain plan."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from pipeline.loudness import (
    LIMITER_MARGIN_DB,
    LIMITER_MAX_REDUCTION_DB,
    GainPlan,
    integrated_loudness,
    load_gain_plan,
    measure_loudness,
    plan_gain,
    save_gain_plan,
    to_db,
    true_peak,
)

RATE = 22050


def speech_like(seconds: float, level: float, seed: int) -> np.ndarray:
    """Bursts of a tone and noise at ``level`` of full scale, with pauses between them."""
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * RATE)) / RATE
    bursts = (np.sin(2 * np.pi * 0.7 * time) > -0.2).astype(float)
    signal = 0.6 * np.sin(2 * np.pi * 220 * time) + 0.4 * rng.standard_normal(time.size) * 0.3
    return level * bursts * signal


def pcm_of(samples: np.ndarray) -> bytes:
    return np.round(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def test_measure_loudness_matches_pyloudnorm() -> None:
    samples = speech_like(20, 0.3, seed=1)

    stats = measure_loudness(pcm_of(samples), RATE)
    reference = pyloudnorm.Meter(RATE).integrated_loudness(np.frombuffer(pcm_of(samples), "<i2") / 32768.0)

    assert abs(stats.integrated - reference) < 0.05


def test_combined_chapters_equal_concatenation() -> None:
    loud = speech_like(13.37, 0.5, seed=2)
    soft = speech_like(21.1, 0.05, seed=3)

    combined = integrated_loudness([measure_loudness(pcm_of(loud), RATE), measure_loudness(pcm_of(soft), RATE)])
    joined = measure_loudness(pcm_of(np.concatenate([loud, soft])), RATE).integrated

    assert abs(combined - joined) < 0.1


def test_combined_gains_shift_loudness() -> None:
    stats = measure_loudness(pcm_of(speech_like(10, 0.2, seed=4)), RATE)

    shifted = integrated_loudness([stats], [6.0])

    assert abs(shifted - (stats.integrated + 6.0)) < 1e-6


def test_silence_has_no_loudness() -> None:
    stats = measure_loudness(bytes(RATE * 4), RATE)

    assert stats.integrated == -math.inf
    assert stats.true_peak == 0.0


def test_true_peak_exceeds_sample_peak_between_samples() -> None:
    # A sine at a quarter of the rate, sampled 45 degrees off its crests.
    samples = 0.5 * np.sin(2 * np.pi * np.arange(4000) / 4 + np.pi / 4)

    peak = true_peak(samples)

    assert np.max(np.abs(samples)) == pytest.approx(0.5 / math.sqrt(2), abs=1e-9)
    assert peak == pytest.approx(0.5, abs=0.01)


def test_plan_gain_reaches_target() -> None:
    stats = measure_loudness(pcm_of(speech_like(15, 0.05, seed=5)), RATE)

    plan = plan_gain([(1, stats)], target=-24.0, ceiling=-1.0)

    assert plan.gain_db == pytest.approx(-24.0 - stats.integrated)
    assert plan.output_loudness == pytest.approx(-24.0)
    assert plan.offsets_db == ()


def test_plan_gain_levels_outlier_chapters() -> None:
    chapters = [
        (1, measure_loudness(pcm_of(speech_like(12, 0.3, seed=6)), RATE)),
        (2, measure_loudness(pcm_of(speech_like(12, 0.03, seed=7)), RATE)),
        (3, measure_loudness(pcm_of(speech_like(12, 0.28, seed=8)), RATE)),
    ]

    plan = plan_gain(chapters, target=-30.0, ceiling=-1.0)
    levels = [stats.integrated + plan.chapter_gain_db(index) for index, stats in chapters]

    assert dict(plan.offsets_db).keys() == {2}
    assert max(levels) - min(levels) < 1.0
    assert all(abs(level + 30.0) < 1.0 for level in levels)


def test_plan_gain_leaves_peaks_to_limiter() -> None:
    stats = measure_loudness(pcm_of(speech_like(10, 0.9, seed=9)), RATE)
    target = stats.integrated + 4.0

    plan = plan_gain([(1, stats)], target=target, ceiling=-3.0)

    assert plan.gain_db == pytest.approx(4.0)
    assert plan.limit_dbfs == pytest.approx(-3.0 - LIMITER_MARGIN_DB)
    assert plan.true_peak_db == pytest.approx(-3.0)
    assert plan.output_loudness == pytest.approx(target)


def test_plan_gain_caps_limiter_reduction() -> None:
    stats = measure_loudness(pcm_of(speech_like(10, 0.9, seed=9)), RATE)

    plan = plan_gain([(1, stats)], target=stats.integrated + 30.0, ceiling=-3.0)

    assert to_db(stats.true_peak) + plan.gain_db == pytest.approx(-3.0 + LIMITER_MAX_REDUCTION_DB)
    assert plan.limit_dbfs is not None
    assert plan.output_loudness < stats.integrated + 30.0


def test_plan_gain_without_peak_problem_has_no_limiter() -> None:
    stats = measure_loudness(pcm_of(speech_like(10, 0.1, seed=9)), RATE)

    plan = plan_gain([(1, stats)], target=stats.integrated + 1.0, ceiling=-1.0)

    assert plan.limit_dbfs is None


def test_plan_gain_off_is_unity() -> None:
    stats = measure_loudness(pcm_of(speech_like(5, 0.3, seed=10)), RATE)

    plan = plan_gain([(1, stats)], target=None, ceiling=-3.0)

    assert plan.gain_db == 0.0
    assert plan.chapter_gain_db(1) == 0.0


def test_gain_plan_round_trips_through_file(tmp_path: Path) -> None:
    plan = GainPlan(-18.0, -21.5, 3.5, ((2, -1.25),), -3.2, -18.0)

    save_gain_plan(plan, tmp_path)

    assert load_gain_plan(tmp_path) == plan
    assert load_gain_plan(tmp_path / "missing") is None


@pytest.mark.slow
def test_piper_book_reaches_default_target(tmp_path: Path) -> None:
    from pipeline.ffmpeg import decode_to_pcm
    from tests.checks import build
    from tests.fixtures.books import make_text_book

    paragraphs = ["Pell's boat came home late. The harbour lamp was lit, and the fog was thick!",
                  "Marta said: \"Tomorrow you carry the ladder.\" Tomas nodded, proud and tired."]
    book = make_text_book(tmp_path / "book.txt", [("Chapter 1", paragraphs), ("Chapter 2", paragraphs[::-1])])

    outcome = build(book, tmp_path / "book.m4b", "--workers", "1")
    pcm = decode_to_pcm(str(tmp_path / "book.m4b"))
    stats = measure_loudness(pcm, 22050)

    assert outcome.returncode == 0, outcome.stderr
    assert abs(integrated_loudness([stats]) + 18.0) < 1.0
    assert to_db(stats.true_peak) <= -3.0 + 0.2  # AAC coding moves peaks by a few tenths of a dB
