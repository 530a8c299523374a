"""Measure 1 against 2 workers, and simulate larger clusters from measured Piper costs.

Part (a) runs ``audiobook build`` of an excerpt (about ``--minutes`` of audio, cut from a
real book) with ``--workers 1`` and ``--workers 2``, alternately, and compares the median
wall times. With one worker the CLI gives Piper 2 intra-op threads; with two workers each
gets 1, so both use the machine's 2 cores. A 4-minute excerpt took 12 s on one worker, about
half of it the start of the CLI, the cluster and the voice, so the default is 15 minutes.

Part (b) predicts larger clusters. It synthesizes a random sample of sentences from
every book in the corpus with Piper (1 thread, in this process), and fits
``seconds = a + b * characters`` and ``samples = c + d * characters`` per book. It times
the pipeline's chapter steps (``pipeline.audio.build_chapter_layout`` and
``encode_chapter``, or ``build_chapter_audio`` where the pipeline has one step) on a few
chapter lengths, and measures Dask's cost per task on a 2-worker embedded cluster. With
these it predicts every sentence of every corpus book and computes the makespan of two
designs for 4 to 256 workers.

The sentence-level graph is list-scheduled. Sentence tasks go in book order to the next
free worker. Each chapter's layout task runs once its sentences are done, and the encode
tasks run after the last layout, because the book's gain needs every chapter's loudness.
The scheduler starts at most one task per measured task cost.

The other design makes each chapter one task (synthesis, layout and encode), scheduled
longest first, so its makespan is at least the longest chapter.

Both ignore the final concatenation, which is the same for both designs. The last line
is the corpus total makespan of the sentence graph over that of the chapter tasks at
64 workers (lower is better).

Run from the repository root::

    python bench/scaling.py
    python bench/scaling.py --rounds 1 --sample 10      # quicker, noisier

The JSON result goes to ``bench/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import heapq
import inspect
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import benchlib
from audiobook.coordinator import prepare_book
from pipeline.errors import EngineError
from pipeline.records import Sentence, SpeechAudio, SynthesisSettings

logger = logging.getLogger(__name__)

WORKER_COUNTS = (4, 8, 16, 32, 64, 128, 256)
"""Cluster sizes the simulation predicts."""

REPORTED_WORKERS = 64
"""Cluster size whose ratio is printed last."""

BOOK_SUFFIXES = (".epub", ".txt")
"""Corpus files that are books (the ``multilingual/`` samples are not)."""

ENCODE_LENGTHS_SECONDS = (30, 120, 480)
"""Chapter lengths, in seconds, timed through the chapter steps to fit their cost."""

ENCODE_GAIN_DB = 7.0
"""Gain of the timed encodes: the bundled Piper voice speaks the sample story at -25.0 LUFS,
7 dB under the default target of -18 LUFS."""

ENCODE_LIMIT_DBFS = -4.0
"""Limiter ceiling of the timed encodes: the default -3 dBTP ceiling less the 1 dB margin
that ``pipeline.loudness.plan_gain`` keeps. The gain pushes the noise's peaks over it."""


@dataclass(frozen=True)
class CostModel:
    """Linear per-sentence costs of one book, fitted on a measured sample."""

    seconds_intercept: float
    seconds_per_char: float
    samples_intercept: float
    samples_per_char: float
    sample_count: int
    """Sentences measured for the fit."""

    def seconds(self, chars: int) -> float:
        """Predicted synthesis time of a sentence of ``chars`` characters."""
        return max(0.0, self.seconds_intercept + self.seconds_per_char * chars)

    def samples(self, chars: int) -> float:
        """Predicted speech samples of a sentence of ``chars`` characters."""
        return max(0.0, self.samples_intercept + self.samples_per_char * chars)


@dataclass(frozen=True)
class ChapterCost:
    """Predicted costs of one chapter."""

    sentence_seconds: tuple[float, ...]
    """Synthesis time of each sentence, in book order."""

    layout_seconds: float
    """Time of the chapter task that runs once its sentences are done."""

    encode_seconds: float
    """Time of the encode task that runs after every chapter's layout, or 0 when the
    pipeline encodes in the chapter task."""

    @property
    def total_seconds(self) -> float:
        """Synthesis, layout and encoding of the whole chapter in one task."""
        return sum(self.sentence_seconds) + self.layout_seconds + self.encode_seconds


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--book",
        type=Path,
        default=benchlib.DEFAULT_CORPUS / "alice-1916-abridged.epub",
        help="Book for part (a). [default: alice-1916-abridged.epub in the corpus]",
    )
    parser.add_argument(
        "--minutes", type=float, default=15.0,
        help="Audio of the part (a) excerpt, in minutes, estimated at 15 characters per second. [default: 15]",
    )
    parser.add_argument("--rounds", type=int, default=3, help="Part (a): rounds of 1 and 2 workers. [default: 3]")
    parser.add_argument(
        "--corpus", type=Path, default=benchlib.DEFAULT_CORPUS,
        help="Folder of books for part (b). [default: ../shared/corpus]",
    )
    parser.add_argument("--sample", type=int, default=30, help="Part (b): sentences measured per book. [default: 30]")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the sentence sample. [default: 1]")
    parser.add_argument(
        "--overhead-tasks", type=int, default=2000,
        help="No-op tasks run to measure Dask's cost per task. [default: 2000]",
    )
    benchlib.add_common_arguments(parser)
    return parser.parse_args()


def measure_workers(args: argparse.Namespace, scratch: Path) -> dict[str, object]:
    """Part (a): build an excerpt with 1 and 2 workers alternately and return times and medians."""
    book, settings, sentences = prepare_book(args.book, SynthesisSettings(language=""))
    target_chars = round(args.minutes * 60 * benchlib.CHARS_PER_SECOND)
    selection = benchlib.select_chapters(book, sentences, target_chars, cut_last=True)
    book_path = scratch / "scaling-excerpt.md"
    benchlib.write_markdown_book(book_path, book.title, settings.language, selection.chapters)
    logger.info(
        "part (a): %d sentences, %d characters from chapters %s of %s",
        selection.sentence_count, selection.characters,
        [chapter.index for chapter in selection.chapters], args.book.name,
    )

    walls: dict[int, list[float]] = {1: [], 2: []}
    audio_seconds = 0.0
    for round_index in range(1, args.rounds + 1):
        for workers in (1, 2):
            output = scratch / "scaling.m4b"
            report_path = scratch / "scaling-report.json"
            command = benchlib.audiobook_command(
                "build", str(book_path), "-o", str(output), "--overwrite",
                "--workers", str(workers), "--report", str(report_path), *benchlib.no_reuse_options(scratch),
            )
            wall = benchlib.run_timed(command, scratch / f"scaling-build-{workers}-{round_index}.log")
            report = json.loads(report_path.read_text(encoding="utf-8"))
            if report["total_sentences"] != selection.sentence_count:
                raise SystemExit(
                    f"the build spoke {report['total_sentences']} sentences, expected {selection.sentence_count}"
                )
            audio_seconds = float(report["audio_duration"])
            walls[workers].append(wall)
            logger.info("round %d/%d: %d worker(s): %.1f s", round_index, args.rounds, workers, wall)

    medians = {workers: benchlib.median(times) for workers, times in walls.items()}
    return {
        "book": str(args.book),
        "sentences": selection.sentence_count,
        "audio_seconds": audio_seconds,
        "wall_seconds": {str(workers): times for workers, times in walls.items()},
        "median_seconds": {str(workers): value for workers, value in medians.items()},
        "ratio_2_over_1": medians[2] / medians[1],
    }


def corpus_books(corpus: Path) -> list[Path]:
    """Return the corpus's book files, sorted by name."""
    return sorted(path for path in corpus.iterdir() if path.suffix in BOOK_SUFFIXES)


def measure_sentence_costs(
    engine, sentences: Sequence[Sentence], sample: int, rng: random.Random  # noqa: ANN001
) -> list[tuple[int, float, int]]:
    """Synthesize a random sample of ``sentences`` and return characters, seconds and samples of each."""
    chosen = rng.sample(list(sentences), min(sample, len(sentences)))
    measured = []
    for sentence in chosen:
        text = sentence.speech_text
        started = time.perf_counter()
        pcm = engine.synthesize(text)
        measured.append((len(text), time.perf_counter() - started, len(pcm) // 2))
    return measured


def fit_model(measured: Sequence[tuple[int, float, int]]) -> CostModel:
    """Fit the linear cost and length models by least squares."""
    chars = np.array([row[0] for row in measured], dtype=float)
    seconds = np.array([row[1] for row in measured], dtype=float)
    samples = np.array([row[2] for row in measured], dtype=float)
    seconds_slope, seconds_intercept = np.polyfit(chars, seconds, 1)
    samples_slope, samples_intercept = np.polyfit(chars, samples, 1)
    return CostModel(
        float(seconds_intercept), float(seconds_slope), float(samples_intercept), float(samples_slope), len(measured)
    )


def chapter_steps() -> tuple[Callable[..., object], Callable[..., object] | None]:
    """Return the pipeline's per-chapter steps: layout and encode, or one combined step and None.

    The graph of this version lays out each chapter (with its loudness) as soon as its
    sentences are done and encodes every chapter after all layouts, once the book's gain
    is known. With the sentence cache on (the default), the layout only measures, and the
    encode lays the chapter out again before encoding it. Versions without
    ``build_chapter_layout`` do both in one chapter task.
    """
    import pipeline.audio

    layout = getattr(pipeline.audio, "build_chapter_layout", None)
    encode = getattr(pipeline.audio, "encode_chapter", None)
    if layout is None or encode is None:
        return pipeline.audio.build_chapter_audio, None
    return layout, encode


def measure_chapter_costs(sample_rate: int) -> dict[str, tuple[float, float]]:
    """Time the chapter steps on noise of a few lengths, split into 5-second sentences.

    Returns, per step (``layout`` and ``encode``), the fitted intercept in seconds and
    seconds per audio second. ``encode`` is (0, 0) when the pipeline has one chapter step.
    """
    layout_step, encode_step = chapter_steps()
    settings = SynthesisSettings()
    rng = np.random.default_rng(0)
    sentence_samples = 5 * sample_rate
    times: dict[str, list[float]] = {"layout": [], "encode": []}

    for seconds in ENCODE_LENGTHS_SECONDS:
        count = seconds // 5
        sentences = [Sentence(1, number, "benchmark", paragraph_end=True) for number in range(1, count + 1)]
        audios = [
            SpeechAudio(1, number, rng.normal(0, 3000, sentence_samples).astype("<i2").tobytes(), sample_rate)
            for number in range(1, count + 1)
        ]
        measure_only = "keep_audio" in inspect.signature(layout_step).parameters
        started = time.perf_counter()
        if measure_only:
            layout = layout_step(1, "Benchmark", sentences, audios, settings, keep_audio=False)
        else:
            layout = layout_step(1, "Benchmark", sentences, audios, settings)
        times["layout"].append(time.perf_counter() - started)

        started = time.perf_counter()
        if measure_only:
            layout = layout_step(1, "Benchmark", sentences, audios, settings, loudness=layout.loudness)
        if encode_step is not None:
            encode_step(layout, ENCODE_GAIN_DB, settings, ENCODE_LIMIT_DBFS)
        times["encode"].append(time.perf_counter() - started)

    lengths = np.array(ENCODE_LENGTHS_SECONDS, dtype=float)
    fits = {"encode": (0.0, 0.0)}
    for step, values in times.items():
        if step == "encode" and encode_step is None:
            continue
        slope, intercept = np.polyfit(lengths, np.array(values), 1)
        fits[step] = (float(intercept), float(slope))
        logger.info("chapter %s: %.3f s + %.5f s per audio second", step, fits[step][0], fits[step][1])
    return fits


def _no_op(value: int) -> int:
    return value


def measure_task_overhead(tasks: int) -> float:
    """Run ``tasks`` no-op tasks on a 2-worker embedded cluster and return wall seconds per task."""
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.gather(client.map(_no_op, range(100), pure=False))
        started = time.perf_counter()
        client.gather(client.map(_no_op, range(tasks), pure=False))
        per_task = (time.perf_counter() - started) / tasks
    logger.info("Dask: %.2f ms per no-op task on 2 local workers", per_task * 1000)
    return per_task


def predict_chapters(
    sentences: Sequence[Sequence[Sentence]],
    model: CostModel,
    settings: SynthesisSettings,
    sample_rate: int,
    steps: dict[str, tuple[float, float]],
) -> list[ChapterCost]:
    """Predict every chapter's sentence costs and chapter step costs, with the layout's silences."""
    chapters = []
    for chapter_sentences in sentences:
        costs = tuple(model.seconds(len(sentence.speech_text)) for sentence in chapter_sentences)
        speech = sum(model.samples(len(sentence.speech_text)) for sentence in chapter_sentences) / sample_rate
        silence = 2 * settings.chapter_silence + sum(
            settings.paragraph_silence if sentence.paragraph_end else settings.sentence_silence
            for sentence in chapter_sentences[:-1]
        )
        audio = speech + silence
        layout_cost = steps["layout"][0] + steps["layout"][1] * audio
        encode_cost = steps["encode"][0] + steps["encode"][1] * audio
        chapters.append(ChapterCost(costs, layout_cost, encode_cost))
    return chapters


def simulate_sentence_graph(chapters: Sequence[ChapterCost], workers: int, task_overhead: float) -> float:
    """Return the makespan of list-scheduling the sentence graph onto ``workers`` workers.

    Sentence tasks go out in book order to the earliest free worker. A chapter's layout
    task becomes ready when its last sentence finishes and goes before the next
    sentence. The encode tasks start after the last layout, in chapter order. The
    scheduler starts tasks one after another, at least ``task_overhead`` seconds apart.
    """
    queue = [(chapter, cost) for chapter, chapter_cost in enumerate(chapters) for cost in chapter_cost.sentence_seconds]
    remaining = [len(chapter.sentence_seconds) for chapter in chapters]
    ready_at = [0.0] * len(chapters)
    ready: list[tuple[float, int]] = []
    free = [0.0] * workers
    next_sentence = 0
    last_start = -task_overhead
    layouts_done = 0.0

    while next_sentence < len(queue) or ready:
        now = heapq.heappop(free)
        if ready and (ready[0][0] <= now or next_sentence == len(queue)):
            ready_time, chapter = heapq.heappop(ready)
            start = max(now, ready_time, last_start + task_overhead)
            finish = start + chapters[chapter].layout_seconds
            layouts_done = max(layouts_done, finish)
        else:
            chapter, cost = queue[next_sentence]
            next_sentence += 1
            start = max(now, last_start + task_overhead)
            finish = start + cost
            ready_at[chapter] = max(ready_at[chapter], finish)
            remaining[chapter] -= 1
            if remaining[chapter] == 0:
                heapq.heappush(ready, (ready_at[chapter], chapter))
        last_start = start
        heapq.heappush(free, finish)

    makespan = max(free)
    for chapter in chapters:
        if chapter.encode_seconds == 0:
            continue
        start = max(heapq.heappop(free), layouts_done, last_start + task_overhead)
        last_start = start
        heapq.heappush(free, start + chapter.encode_seconds)
        makespan = max(makespan, start + chapter.encode_seconds)
    return makespan


def simulate_chapter_tasks(chapters: Sequence[ChapterCost], workers: int) -> float:
    """Return the makespan of one task per chapter, longest first onto the least loaded worker."""
    loads = [0.0] * workers
    for cost in sorted((chapter.total_seconds for chapter in chapters), reverse=True):
        heapq.heapreplace(loads, loads[0] + cost)
    return max(loads)


def model_corpus(args: argparse.Namespace) -> tuple[dict[str, list[ChapterCost]], dict[str, object]]:
    """Part (b), measuring: fit a cost model per corpus book and predict all its chapters."""
    from pipeline.speech.piper import PiperEngine

    engine = PiperEngine(threads=1)
    engine.synthesize("This sentence warms the engine up.")
    steps = measure_chapter_costs(engine.sample_rate)
    rng = random.Random(args.seed)
    predictions: dict[str, list[ChapterCost]] = {}
    models: dict[str, object] = {}

    for path in corpus_books(args.corpus):
        book, settings, sentences = prepare_book(path, SynthesisSettings(language=""))
        flat = [sentence for chapter in sentences for sentence in chapter]
        try:
            measured = measure_sentence_costs(engine, flat, args.sample, rng)
        except EngineError as err:
            logger.warning("%s: Piper failed on the sample, book left out: %s", path.name, err)
            models[path.name] = {"error": str(err)}
            continue
        model = fit_model(measured)
        predictions[path.name] = predict_chapters(sentences, model, settings, engine.sample_rate, steps)
        models[path.name] = {
            "sentences": len(flat),
            "chapters": len(sentences),
            "model": model.__dict__,
            "measured": measured,
        }
        logger.info(
            "%s: %d sentences in %d chapters; %.3f s + %.2f ms per character",
            path.name, len(flat), len(sentences), model.seconds_intercept, model.seconds_per_char * 1000,
        )
    return predictions, {"books": models, "chapter_steps": steps}


def simulate(predictions: dict[str, list[ChapterCost]], task_overhead: float) -> dict[str, dict[int, tuple[float, float]]]:
    """Return, per book and worker count, the makespans of the sentence graph and of chapter tasks."""
    results: dict[str, dict[int, tuple[float, float]]] = {}
    for name, chapters in predictions.items():
        results[name] = {
            workers: (
                simulate_sentence_graph(chapters, workers, task_overhead),
                simulate_chapter_tasks(chapters, workers),
            )
            for workers in WORKER_COUNTS
        }
    return results


def corpus_totals(makespans: dict[str, dict[int, tuple[float, float]]], workers: int) -> tuple[float, float]:
    """Return the summed makespans of all books, sentence graph and chapter tasks, at ``workers``."""
    sentence_total = sum(book[workers][0] for book in makespans.values())
    chapter_total = sum(book[workers][1] for book in makespans.values())
    return sentence_total, chapter_total


def print_tables(
    workers_result: dict[str, object],
    predictions: dict[str, list[ChapterCost]],
    makespans: dict[str, dict[int, tuple[float, float]]],
) -> None:
    """Print part (a), the corpus totals per cluster size and the per-book table."""
    medians = workers_result["median_seconds"]
    print(f"(a) {workers_result['sentences']} sentences, {workers_result['audio_seconds'] / 60:.1f} min of audio")
    print(benchlib.markdown_table(
        ["workers", "wall times (s)", "median (s)"],
        [[workers, ", ".join(f"{wall:.1f}" for wall in walls), f"{medians[workers]:.1f}"]
         for workers, walls in workers_result["wall_seconds"].items()],
    ))
    print(f"(a) ratio 2 workers/1 worker wall time = {workers_result['ratio_2_over_1']:.2f}")

    rows = []
    for workers in WORKER_COUNTS:
        sentence_total, chapter_total = corpus_totals(makespans, workers)
        rows.append([workers, f"{sentence_total:.0f}", f"{chapter_total:.0f}", f"{sentence_total / chapter_total:.3f}"])
    serial = sum(chapter.total_seconds for chapters in predictions.values() for chapter in chapters)
    print(f"\n(b) corpus total, one book after another ({serial:.0f} s of work on one worker)")
    print(benchlib.markdown_table(["workers", "sentence graph (s)", "chapter tasks (s)", "ratio"], rows))

    book_rows = []
    for name, chapters in predictions.items():
        sentence_time, chapter_time = makespans[name][REPORTED_WORKERS]
        longest = max(chapter.total_seconds for chapter in chapters)
        book_rows.append([
            name, sum(len(chapter.sentence_seconds) for chapter in chapters), len(chapters),
            f"{longest:.0f}", f"{sentence_time:.0f}", f"{chapter_time:.0f}", f"{sentence_time / chapter_time:.3f}",
        ])
    print(f"\n(b) per book at {REPORTED_WORKERS} workers")
    print(benchlib.markdown_table(
        ["book", "sentences", "chapters", "longest chapter (s)", "sentence graph (s)", "chapter tasks (s)", "ratio"],
        book_rows,
    ))


def main() -> None:
    """Run both parts, print the tables, then the ratio at 64 workers as the last line."""
    args = parse_arguments()
    benchlib.configure_logging(args.verbose)

    with benchlib.scratch_folder(args.output_dir, "scaling", args.keep) as scratch:
        workers_result = measure_workers(args, scratch)

    predictions, model_result = model_corpus(args)
    task_overhead = measure_task_overhead(args.overhead_tasks)
    makespans = simulate(predictions, task_overhead)

    print_tables(workers_result, predictions, makespans)
    sentence_total, chapter_total = corpus_totals(makespans, REPORTED_WORKERS)
    ratio = sentence_total / chapter_total
    benchlib.write_result(
        args.output_dir,
        "scaling",
        {
            "workers": workers_result,
            "model": model_result,
            "task_overhead_seconds": task_overhead,
            "makespans": {
                name: {str(workers): list(pair) for workers, pair in book.items()} for name, book in makespans.items()
            },
            "ratio_at_64_workers": round(ratio, 4),
        },
    )
    print(
        f"ratio sentence-graph/chapter-tasks makespan at {REPORTED_WORKERS} workers = {ratio:.3f} "
        f"(corpus total; lower is better; 2 workers/1 worker measured = {workers_result['ratio_2_over_1']:.2f})"
    )


if __name__ == "__main__":
    sys.exit(main())
