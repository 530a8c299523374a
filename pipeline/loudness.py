"""Measure loudness per ITU-R BS.1770-4 on the workers and plan one gain for the whole book.

Each chapter task returns the K-weighted energy of every 100 ms step of its chapter, and its
sample and true peaks. The gain task joins the steps of all chapters in book order and gates
the 400 ms blocks (75 % overlap) of the whole book, so the book's integrated loudness is
measured as if the book were one file. Only two things differ from measuring the joined file:
the K-weighting filter starts from rest at each chapter, and each chapter's last partial step
(under 100 ms) is left out. Both fall on the silence that ends every chapter.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyloudnorm import IIRfilter

logger = logging.getLogger(__name__)

STEP_SECONDS = 0.1
"""Hop between gating blocks, in seconds (75 % overlap of 400 ms blocks)."""

BLOCK_STEPS = 4
"""Steps in one 400 ms gating block."""

ABSOLUTE_GATE_LUFS = -70.0
"""Blocks quieter than this are left out of the integrated loudness, in LUFS."""

RELATIVE_GATE_LU = -10.0
"""Blocks more than 10 LU below the absolutely gated loudness are left out, in LU."""

LOUDNESS_OFFSET_DB = -0.691
"""The constant of BS.1770's loudness formula, in dB."""

LIMITER_MAX_REDUCTION_DB = 12.0
"""Most peak reduction the gain plan leaves to the limiter, in dB; past it the gain is lowered."""

LIMITER_MARGIN_DB = 1.0
"""Distance in dB between the true-peak ceiling and the limiter's sample-peak ceiling. ffmpeg's
alimiter limits samples, and inter-sample peaks of Piper speech measured 0.3 dB higher."""
# NOTE: the margin covers inter-sample peaks of the PCM, not the AAC encode after it. One fresh
# build of the sample story decoded at -2.6 dBTP, 0.4 dB over the -3 dBTP ceiling.

LEVELING_TOLERANCE_LU = 1.0
"""A chapter whose own loudness differs from the book's by more than this, in LU, is
brought to the book's loudness before the book gain."""

OVERSAMPLING = 4
"""Oversampling factor of the true-peak meter (BS.1770-4 Annex 2 requires at least 4)."""

TAPS_PER_PHASE = 12
"""Length of each polyphase branch of the true-peak interpolation filter, in samples."""

FULL_SCALE = 32768.0
"""Amplitude of a full-scale 16-bit sample."""


@dataclass(frozen=True)
class LoudnessStats:
    """BS.1770 measurements of one chapter, small enough to send to the gain task."""

    sample_rate: int
    """Samples per second of the measured audio."""

    step_samples: int
    """Samples in one 100 ms step."""

    step_energies: tuple[float, ...]
    """Sum of the squared K-weighted samples of each whole step, full scale being 1.0."""

    sample_peak: float
    """Largest absolute sample, linear, full scale being 1.0."""

    true_peak: float
    """Largest absolute value of the signal oversampled four times, linear, full scale 1.0."""

    @property
    def integrated(self) -> float:
        """Gated loudness of this chapter alone, in LUFS; ``-inf`` for silence."""
        return integrated_loudness([self])


def k_weight(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Apply BS.1770's K-weighting (a 4 dB high shelf, then a 38 Hz high-pass) to ``samples``."""
    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sample_rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")
    return high_pass.apply_filter(shelf.apply_filter(samples))


def _interpolation_filter() -> np.ndarray:
    """Return a Kaiser-windowed sinc low-pass for OVERSAMPLING-times interpolation.

    Phase 0 of the filter is a unit impulse, so the original samples pass unchanged and
    the true peak is never below the sample peak.
    """
    half = TAPS_PER_PHASE * OVERSAMPLING // 2
    positions = np.arange(-half, half + 1)
    return np.sinc(positions / OVERSAMPLING) * np.kaiser(len(positions), 8.0)


def true_peak(samples: np.ndarray, chunk: int = 1 << 20) -> float:
    """Return the largest absolute value of ``samples`` oversampled four times.

    The signal is processed in chunks of ``chunk`` samples that overlap by the filter
    length, so memory stays bounded for long chapters.
    """
    if samples.size == 0:
        return 0.0
    taps = _interpolation_filter()
    phases = [taps[phase::OVERSAMPLING] for phase in range(OVERSAMPLING)]
    overlap = TAPS_PER_PHASE + 1
    peak = float(np.max(np.abs(samples)))

    for start in range(0, samples.size, chunk):
        window = samples[max(0, start - overlap) : start + chunk + overlap]
        for branch in phases[1:]:
            interpolated = np.convolve(window, branch, mode="valid")
            if interpolated.size:
                peak = max(peak, float(np.max(np.abs(interpolated))))
    return peak


SAMPLE_BYTES = 2
"""Bytes per sample of the signed 16-bit PCM that chapters are measured in."""

MEASURE_CHUNK_STEPS = 2048
"""Loudness steps measured per chunk (about 3.4 minutes at 0.1 s a step), so memory stays
bounded by the chunk and not by the chapter's length."""


def _k_weighting_stages(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Return BS.1770's K-weighting as ``(b, a, gain)`` stages: the high shelf, then the high-pass."""
    stages = []
    for gain_db, q, frequency, kind in ((4.0, 1 / math.sqrt(2), 1500.0, "high_shelf"), (0.0, 0.5, 38.0, "high_pass")):
        stage = IIRfilter(gain_db, q, frequency, sample_rate, kind)
        stages.append((np.asarray(stage.b), np.asarray(stage.a), float(stage.passband_gain)))
    return stages


def _pcm_chunk(pcm: bytes, start: int, stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of 16-bit PCM as floats at full scale 1.0."""
    count = max(0, min(stop, len(pcm) // 2) - max(0, start))
    return np.frombuffer(pcm, dtype="<i2", count=count, offset=2 * max(0, start)).astype(np.float64) / FULL_SCALE


def measure_loudness(pcm: bytes, sample_rate: int) -> LoudnessStats:
    """Measure one chapter of signed 16-bit mono PCM, chunk by chunk.

    The K-weighting filters carry their state from chunk to chunk, so the result equals
    a measurement of the whole chapter at once while using memory for one chunk only.
    """
    from scipy.signal import lfilter

    total = len(pcm) // SAMPLE_BYTES
    step = max(1, round(sample_rate * STEP_SECONDS))
    chunk = step * MEASURE_CHUNK_STEPS
    stages = _k_weighting_stages(sample_rate)
    states = [np.zeros(max(len(a), len(b)) - 1) for b, a, _ in stages]
    energies: list[float] = []
    sample_peak = peak = 0.0

    for start in range(0, total, chunk):
        samples = _pcm_chunk(pcm, start, start + chunk)
        sample_peak = max(sample_peak, float(np.max(np.abs(samples))))
        peak = max(peak, true_peak(_pcm_chunk(pcm, start - TAPS_PER_PHASE - 1, start + chunk + TAPS_PER_PHASE + 1)))

        weighted = samples
        for number, (b, a, gain) in enumerate(stages):
            weighted, states[number] = lfilter(b, a, weighted, zi=states[number])
            weighted = weighted * gain
        whole = weighted.size // step
        energies.extend(np.square(weighted[: whole * step]).reshape(whole, step).sum(axis=1).tolist())

    return LoudnessStats(
        sample_rate=sample_rate,
        step_samples=step,
        step_energies=tuple(energies),
        sample_peak=sample_peak,
        true_peak=max(peak, sample_peak),
    )


def _block_powers(stats: Sequence[LoudnessStats], gains_db: Sequence[float]) -> np.ndarray:
    """Return the mean square of every 400 ms block of the chapters joined in order."""
    rates = {(item.sample_rate, item.step_samples) for item in stats}
    if len(rates) > 1:
        raise ValueError(f"chapters were measured at different rates {sorted(rates)}; use one rate per book")

    parts = [
        np.asarray(item.step_energies, dtype=np.float64) * 10 ** (gain / 10)
        for item, gain in zip(stats, gains_db)
    ]
    energies = np.concatenate(parts) if parts else np.zeros(0)
    if energies.size < BLOCK_STEPS:
        return np.zeros(0)

    step_samples = stats[0].step_samples
    cumulative = np.concatenate(([0.0], np.cumsum(energies)))
    block_energy = cumulative[BLOCK_STEPS:] - cumulative[:-BLOCK_STEPS]
    return np.maximum(block_energy, 0.0) / (BLOCK_STEPS * step_samples)


def _loudness(power: float | np.ndarray) -> float | np.ndarray:
    with np.errstate(divide="ignore"):
        return LOUDNESS_OFFSET_DB + 10 * np.log10(power)


def integrated_loudness(
    stats: Sequence[LoudnessStats], gains_db: Sequence[float] | None = None
) -> float:
    """Return the gated integrated loudness of the chapters joined in order, in LUFS.

    Parameters
    ----------
    stats
        The chapters' measurements, in book order.
    gains_db
        A gain per chapter, in dB, applied before gating; None for no gain.

    Returns
    -------
    float
        The loudness in LUFS, or ``-inf`` when no block passes the absolute gate.
    """
    powers = _block_powers(stats, gains_db if gains_db is not None else [0.0] * len(stats))
    above_absolute = powers[_loudness(powers) > ABSOLUTE_GATE_LUFS]
    if above_absolute.size == 0:
        return -math.inf

    relative_gate = float(_loudness(above_absolute.mean())) + RELATIVE_GATE_LU
    gated = above_absolute[_loudness(above_absolute) > relative_gate]
    return float(_loudness(gated.mean()))


def to_db(linear: float) -> float:
    """Convert a linear amplitude to dB; ``-inf`` for zero."""
    return 20 * math.log10(linear) if linear > 0 else -math.inf


@dataclass(frozen=True)
class GainPlan:
    """The one gain plan of a book: a book gain, and level corrections for outlier chapters."""

    target: float | None
    """Integrated loudness the book is brought to, in LUFS; None when normalization is off."""

    measured: float
    """Integrated loudness of the book as spoken, in LUFS; ``-inf`` when it is silent."""

    gain_db: float
    """Gain applied to every chapter, in dB."""

    offsets_db: tuple[tuple[int, float], ...] = ()
    """``(chapter index, dB)`` for each chapter brought to the book's loudness first."""

    true_peak_db: float = -math.inf
    """The book's true peak after the gain, in dBTP."""

    output_loudness: float = -math.inf
    """Integrated loudness of the book after the gain, in LUFS."""

    limit_dbfs: float | None = None
    """Sample-peak ceiling of the look-ahead limiter every chapter goes through after the
    gain, in dBFS; None when no peak needs limiting."""

    def chapter_gain_db(self, index: int) -> float:
        """Return the total gain of chapter ``index``, in dB."""
        return self.gain_db + dict(self.offsets_db).get(index, 0.0)


def _leveling_offsets(
    stats: Sequence[LoudnessStats], book_loudness: float, tolerance: float
) -> list[float]:
    """Return per-chapter corrections, in dB, for chapters off the book's loudness by more than ``tolerance``."""
    offsets = []
    for item in stats:
        deviation = item.integrated - book_loudness
        offsets.append(-deviation if math.isfinite(deviation) and abs(deviation) > tolerance else 0.0)
    return offsets


def plan_gain(
    chapters: Sequence[tuple[int, LoudnessStats]],
    target: float | None,
    ceiling: float,
    tolerance: float = LEVELING_TOLERANCE_LU,
    book: str = "",
) -> GainPlan:
    """Plan the book's gain from every chapter's measurements.

    A chapter whose own loudness differs from the book's by more than ``tolerance`` LU
    (a voice or engine that spoke it louder or softer) is first corrected to the book's
    loudness. Then one gain brings the book to ``target``, lowered when needed so that no
    chapter's true peak exceeds ``ceiling`` dBTP. Peaks up to LIMITER_MAX_REDUCTION_DB over
    the ceiling are left to a look-ahead limiter (``limit_dbfs``) instead of lowering the
    gain, because speech voices peak 15 to 20 dB above their loudness and would otherwise
    end up far below ``target``.

    Parameters
    ----------
    chapters
        ``(chapter index, measurements)`` in book order.
    target
        Integrated loudness to reach, in LUFS; None to leave the level as it is.
    ceiling
        Highest true peak allowed after the gain, in dBTP.
    tolerance
        Largest deviation of a chapter from the book's loudness left uncorrected, in LU.
    book
        The book's title, for log lines.
    """
    indexes = [index for index, _ in chapters]
    stats = [item for _, item in chapters]
    measured = integrated_loudness(stats)
    peaks = [to_db(item.true_peak) for item in stats]

    if target is None or not math.isfinite(measured):
        if target is not None:
            logger.warning("book %s: the audio is silent, so its loudness is left as it is", book)
        return GainPlan(target, measured, 0.0, (), max(peaks, default=-math.inf), measured)

    offsets = _leveling_offsets(stats, measured, tolerance)
    leveled = integrated_loudness(stats, offsets)
    gain = target - leveled
    loudest_peak = max(peak + offset for peak, offset in zip(peaks, offsets))
    limit = None
    if loudest_peak + gain > ceiling:
        limit = ceiling - LIMITER_MARGIN_DB
        reduction = loudest_peak + gain - ceiling
        logger.info("book %s: the limiter takes up to %.2f dB off the peaks", book, min(reduction, LIMITER_MAX_REDUCTION_DB))
    if loudest_peak + gain > ceiling + LIMITER_MAX_REDUCTION_DB:
        lowered = ceiling + LIMITER_MAX_REDUCTION_DB - loudest_peak
        logger.warning(
            "book %s: gain lowered from %+.2f dB to %+.2f dB to keep the limiting under %.0f dB; "
            "the book ends up at %.1f LUFS instead of %.1f",
            book, gain, lowered, LIMITER_MAX_REDUCTION_DB, leveled + lowered, target,
        )
        gain = lowered

    corrected = tuple((index, offset) for index, offset in zip(indexes, offsets) if offset)
    for index, offset in corrected:
        logger.info("book %s: chapter c%03d leveled by %+.2f dB to match the book", book, index, offset)
    return GainPlan(
        target=target,
        measured=measured,
        gain_db=gain,
        offsets_db=corrected,
        true_peak_db=min(loudest_peak + gain, ceiling),
        output_loudness=leveled + gain,
        limit_dbfs=limit,
    )


GAIN_PLAN_FILE = "gain-plan.json"
"""Name of the file in a book's work folder that keeps the gain plan its chapters were encoded with."""


def save_gain_plan(plan: GainPlan, folder: Path) -> None:
    """Keep ``plan`` in ``folder``, so a rerun encodes its remaining chapters with the same gain."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = dataclasses.asdict(plan)
    partial = folder / f".{GAIN_PLAN_FILE}.partial"
    partial.write_text(json.dumps(fields), encoding="utf-8")
    partial.replace(folder / GAIN_PLAN_FILE)


def load_gain_plan(folder: Path) -> GainPlan | None:
    """Return the gain plan kept in ``folder``, or None when there is none or it is unreadable."""
    try:
        fields = json.loads((folder / GAIN_PLAN_FILE).read_text(encoding="utf-8"))
        offsets = tuple((int(index), float(offset)) for index, offset in fields.pop("offsets_db"))
        return GainPlan(**fields, offsets_db=offsets)
    except (OSError, ValueError, TypeError, KeyError) as err:
        logger.debug("no usable gain plan in %s: %s", folder, err)
        return None
