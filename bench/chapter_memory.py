"""Measure the peak memory of one chapter's steps on a worker, for chapters of several lengths.

``bench/memory.py`` measures whole books, and this script explains its worker figure. It
runs a worker's steps for one chapter on noise split into 5-second sentences, as
``graphs.tasks`` does with the sentence cache on: the layout that only measures, then the
layout again, the gain, the limiter and the encode. Each length runs in a fresh process.
The script prints the growth of the process's peak RSS over its peak before the steps. It
leaves out the ffmpeg children: their ``ru_maxrss`` includes the pages of the Python
process they were forked from, so it overstates them.

Run from the repository root::

    python bench/chapter_memory.py                    # 6, 18 and 36 minutes
    python bench/chapter_memory.py --minutes 10 20
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAMPLE_RATE = 22050
"""Sample rate of the bundled Piper voice and of espeak-ng."""

SENTENCE_SECONDS = 5
"""Length of each generated sentence."""


def chapter_peaks(minutes: float, results: multiprocessing.Queue) -> None:
    """Run one chapter's worker steps and put the growth of the peak RSS in MiB on ``results``."""
    import numpy as np

    from pipeline.audio import build_chapter_layout, encode_chapter
    from pipeline.records import Sentence, SpeechAudio, SynthesisSettings

    settings = SynthesisSettings()
    count = max(1, round(minutes * 60 / SENTENCE_SECONDS))
    sentences = [Sentence(1, number, "benchmark", paragraph_end=True) for number in range(1, count + 1)]
    rng = np.random.default_rng(0)
    audios = [
        SpeechAudio(1, number, rng.normal(0, 3000, SENTENCE_SECONDS * SAMPLE_RATE).astype("<i2").tobytes(), SAMPLE_RATE)
        for number in range(1, count + 1)
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    measured = build_chapter_layout(1, "Benchmark", sentences, audios, settings, keep_audio=False)
    layout = build_chapter_layout(1, "Benchmark", sentences, audios, settings, loudness=measured.loudness)
    encode_chapter(layout, 7.0, settings, -4.0)

    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put((after - before) / 1024)


def main() -> None:
    """Measure each length in its own process and print one line per length."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[6.0, 18.0, 36.0], help="Chapter lengths. [default: 6 18 36]")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    print("| chapter (min) | PCM (MiB) | peak growth (MiB) |")
    print("|---|---|---|")
    for minutes in args.minutes:
        results = context.Queue()
        process = context.Process(target=chapter_peaks, args=(minutes, results))
        process.start()
        growth = results.get()
        process.join()
        pcm_mib = minutes * 60 * SAMPLE_RATE * 2 / 2**20
        print(f"| {minutes:g} | {pcm_mib:.0f} | {growth:.0f} |")


if __name__ == "__main__":
    main()
