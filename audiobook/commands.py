"""The ``build``, ``inspect`` and ``voices`` commands; each parses options and calls one function."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from audiobook.cli import InvalidInput, RunFailed, configure_logging, fail, main
from audiobook.cluster import ClusterRequest, embedded_workers, engine_threads, open_client
from audiobook.config import setting
from audiobook.output_options import output_options, parse_loudness, resolve_output_options
from pipeline.errors import EngineError, FfmpegError, InvalidBookError, OutputCheckError
from pipeline.normalize import LexiconError, load_lexicon
from pipeline.checkpoints import default_work_root
from pipeline.records import CacheSettings, SynthesisSettings

logger = logging.getLogger(__name__)

LEXICON_HELP = (
    "Pronunciation lexicon: a UTF-8 file with one 'word = spoken form' (or tab-separated) entry per line, "
    "matched as whole words in any letter case."
)
ENGINE_HELP = "Speech engine: piper, espeak, or module:Class for an engine of your own. [default: piper]"


def synthesis_settings(
    engine: str | None, voice: str | None, language: str | None, threads: int
) -> SynthesisSettings:
    """Merge command-line options over dask.config into the run's settings."""
    return SynthesisSettings(
        engine=setting("engine", engine),
        voice=setting("voice", voice) or "",
        language=setting("language", language) or "",
        length_scale=float(setting("length-scale")),
        sentence_silence=float(setting("silence.sentence")),
        paragraph_silence=float(setting("silence.paragraph")),
        chapter_silence=float(setting("silence.chapter")),
        engine_threads=threads,
        audio_bitrate=str(setting("bitrate") or ""),
        output_format=str(setting("format")),
        sample_rate=int(setting("sample-rate") or 0),
        loudness_target=parse_loudness(setting("loudness")),
        true_peak_ceiling=float(setting("true-peak")),
    )


def cluster_request(
    scheduler: str | None, scheduler_file: Path | None, workers: int | None
) -> tuple[ClusterRequest, int]:
    """Merge the cluster options over dask.config; return the request and the engine threads.

    An attached cluster's workers already run one task per core, so each engine call gets
    one thread there; an embedded cluster divides the cores between its workers.
    """
    cluster = ClusterRequest(
        scheduler=setting("scheduler", scheduler),
        scheduler_file=str(setting("scheduler-file", scheduler_file) or "") or None,
        workers=setting("workers", workers),
        threads_per_worker=int(setting("threads-per-worker")),
        dashboard_address=str(setting("dashboard-address")),
    )
    attached = bool(cluster.scheduler or cluster.scheduler_file)
    threads = 1 if attached else engine_threads(embedded_workers(cluster), cluster.threads_per_worker)
    return cluster, threads


def cache_settings(url: str | None, fresh: bool) -> CacheSettings | None:
    """Return the sentence cache from ``--cache`` or dask.config, or None when it is turned off."""
    from pipeline.cache import default_cache_url

    url = setting("cache", url) or default_cache_url()
    if str(url).lower() in ("off", "none", "false"):
        return None
    return CacheSettings(url=str(url), read=not fresh)


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Audiobook to write; default: INPUT with the format's suffix (.m4b).")
@click.option("--engine", help=ENGINE_HELP)
@click.option("--voice", help="Piper: path of an .onnx voice; espeak: a voice name (see `audiobook voices`).")
@click.option("--language", help="Language tag of the text (en, en-GB, fr); default: the book's own.")
@click.option("--lexicon", type=click.Path(path_type=Path), help=LEXICON_HELP)
@click.option("--workers", type=click.IntRange(min=1), help="Embedded cluster: worker processes. [default: one per core]")
@click.option("--scheduler", help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--scheduler-file", type=click.Path(path_type=Path), help="Scheduler file written by `dask scheduler --scheduler-file`.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Sentences per synthesize task. [default: 1]")
@click.option("--gpu", is_flag=True, help="Run speech tasks only on workers started with `--resources GPU=1`, using CUDA there.")
@click.option("--performance-report", type=click.Path(path_type=Path), help="Write Dask's performance report of the run to this HTML file.")
@click.option("--cache", "cache_url", help="fsspec URL of the sentence cache (file://, s3://, memory://); 'off' disables it. [default: the user's cache folder]")
@click.option("--fresh", is_flag=True, help="Ignore finished chapters and cached sentences of earlier runs, and synthesize everything.")
@click.option("--work-dir", type=click.Path(path_type=Path), help="Folder for the finished chapters of unfinished books. [default: the user's cache folder]")
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write a JSON report of the run to this file.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks.")
@output_options
def build(
    input_path: Path,
    output: Path | None,
    engine: str | None,
    voice: str | None,
    language: str | None,
    lexicon: Path | None,
    workers: int | None,
    scheduler: str | None,
    scheduler_file: Path | None,
    batch_size: int | None,
    gpu: bool,
    performance_report: Path | None,
    cache_url: str | None,
    fresh: bool,
    work_dir: Path | None,
    report_path: Path | None,
    overwrite: bool,
    verbose: bool,
    **options: Any,
) -> None:
    """Convert the e-book INPUT (EPUB, text, Markdown, HTML) into an audiobook (M4B by default)."""
    from distributed import performance_report as dask_performance_report

    from audiobook.coordinator import BuildRequest, OutputExistsError, RunFailedError, build_audiobook
    from audiobook.report import build_report, write_json

    configure_logging(verbose)
    choice = resolve_output_options(input_path, output, str(setting("format")), overwrite, options)
    output = choice.path
    if not output.parent.is_dir():
        raise InvalidInput(f"output folder {str(output.parent)!r} does not exist; create it first")

    cluster, threads = cluster_request(scheduler, scheduler_file, workers)
    request = BuildRequest(
        input=input_path,
        output=output,
        settings=replace(synthesis_settings(engine, voice, language, threads), use_cuda=gpu, **choice.settings),
        batch_size=int(setting("batch-size", batch_size)),
        retries=int(setting("retries")),
        overwrite=overwrite,
        progress_interval=float(setting("progress-interval")),
        speech_resources={"GPU": 1} if gpu else None,
        lexicon=lexicon,
        cache=cache_settings(cache_url, fresh),
        work_root=Path(setting("work-dir", work_dir) or default_work_root()),
        fresh=fresh,
        split_chapters=choice.split_chapters,
        captions=choice.captions,
        metadata=choice.metadata,
    )
    _check_request(request, verbose)

    try:
        with open_client(cluster) as client:
            click.echo(f"Dashboard: {client.dashboard_link}", err=True)
            with dask_performance_report(str(performance_report)) if performance_report else nullcontext():
                result = build_audiobook(request, client)
    except (InvalidBookError, LexiconError, OutputExistsError) as err:
        fail(err, verbose, InvalidInput)
    except (RunFailedError, EngineError, FfmpegError, OutputCheckError, OSError) as err:
        fail(err, verbose, RunFailed)

    report = build_report(result, input_path, output)
    if report_path:
        write_json(report, report_path)
    click.echo(
        f"Wrote {output}: {len(result.marks)} chapters, {report['audio_duration']:.1f} s of audio "
        f"in {result.wall_time:.1f} s"
    )


def _check_request(request, verbose: bool) -> None:  # noqa: ANN001
    """Fail fast, before a cluster starts, on inputs and voices that cannot work."""
    from audiobook.coordinator import OutputExistsError
    from pipeline.ingest import read_book
    from pipeline.speech import engine_class

    if request.output.exists() and not request.overwrite:
        fail(OutputExistsError(f"{request.output} already exists; pass --overwrite to replace it"), verbose, InvalidInput)
    if request.work_root.exists() and not request.work_root.is_dir():
        fail(InvalidInput(f"work folder {str(request.work_root)!r} is a file; give --work-dir a folder"), verbose, InvalidInput)
    try:
        if request.lexicon:
            load_lexicon(request.lexicon)
        read_book(request.input)
        engine_class(request.settings.engine)
        if request.settings.engine == "piper":
            from pipeline.speech.piper import resolve_voice_path

            resolve_voice_path(request.settings.voice)
    except (InvalidBookError, LexiconError, EngineError) as err:
        fail(err, verbose, InvalidInput)


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--engine", help="Engine whose sentence length limit applies. [default: piper]")
@click.option("--language", help="Language tag of the text; default: the book's own.")
@click.option("--lexicon", type=click.Path(path_type=Path), help=LEXICON_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, with every chapter's sentences.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks.")
def inspect(
    input_path: Path, engine: str | None, language: str | None, lexicon: Path | None, as_json: bool, verbose: bool
) -> None:
    """Show INPUT's chapters, sentence and word counts and estimated length, without synthesis."""
    from audiobook.coordinator import prepare_book
    from audiobook.report import inspect_book

    configure_logging(verbose)
    settings = synthesis_settings(engine, None, language, 1)
    try:
        book, settings, sentences = prepare_book(input_path, settings, lexicon)
    except (InvalidBookError, LexiconError, EngineError) as err:
        fail(err, verbose, InvalidInput)

    summary = inspect_book(book, sentences)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return

    authors = ", ".join(book.authors) or "unknown author"
    click.echo(f"{book.title} by {authors} [{book.language}]")
    for chapter in summary["chapters"]:
        click.echo(
            f"{chapter['index']:4d}  {chapter['title'][:50]:50}  {chapter['sentence_count']:5d} sentences"
            f"  {chapter['word_count']:6d} words  ~{chapter['estimated_seconds'] / 60:5.1f} min"
        )
    click.echo(
        f"{len(summary['chapters'])} chapters, {summary['sentence_count']} sentences, "
        f"{summary['word_count']} words, about {format_length(summary['estimated_seconds'])} of audio"
    )


def format_length(seconds: float) -> str:
    """Write a length in minutes below an hour, else in hours."""
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@main.command()
@click.option("--engine", type=click.Choice(["piper", "espeak"]), help="List only this engine's voices.")
def voices(engine: str | None) -> None:
    """List the speech engines and voices available on this machine."""
    from pipeline.speech import list_voices

    configure_logging(False)
    for voice in list_voices(engine):
        click.echo(f"{voice.engine:7} {voice.name:28} {voice.language:10} {voice.description}")


@main.command()
@click.option("--scheduler", help="Address of the scheduler whose workers to list.")
@click.option("--scheduler-file", type=click.Path(path_type=Path), help="Scheduler file written by `dask scheduler --scheduler-file`.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks.")
def workers(scheduler: str | None, scheduler_file: Path | None, as_json: bool, verbose: bool) -> None:
    """List the workers of a cluster and have each speak a test phrase with every engine.

    Exits with 1 when a worker cannot speak with the configured engine.
    """
    import dataclasses

    from audiobook.workers import survey_workers

    configure_logging(verbose)
    cluster = ClusterRequest(
        scheduler=setting("scheduler", scheduler),
        scheduler_file=str(setting("scheduler-file", scheduler_file) or "") or None,
        workers=setting("workers"),
        dashboard_address=str(setting("dashboard-address")),
    )
    settings = synthesis_settings(None, None, None, 1)
    settings = replace(settings, language=settings.language or "en")
    with open_client(cluster) as client:
        reports = survey_workers(client, settings)

    if as_json:
        click.echo(json.dumps([dataclasses.asdict(report) for report in reports], indent=2))
    else:
        for report in reports:
            resources = ", ".join(f"{name}={value:g}" for name, value in report.resources.items()) or "none"
            click.echo(
                f"{report.address}  threads={report.threads}  memory={report.memory_limit / 2**30:.1f} GiB"
                f"  device={report.device}  resources={resources}  voices: {'; '.join(report.voices)}"
            )
            for check in report.checks:
                outcome = f"ok, {check.seconds:.2f} s ({check.voice})" if not check.error else f"FAILED: {check.error}"
                click.echo(f"    {check.engine:7} {outcome}")

    broken = [
        report.address for report in reports
        for check in report.checks if check.engine in (settings.engine, "all") and check.error
    ]
    if broken:
        raise RunFailed(f"{len(broken)} worker(s) cannot speak with {settings.engine}: {', '.join(broken)}")


@main.command()
@click.argument("inbox")
@click.argument("outdir")
@click.option("--engine", help=ENGINE_HELP)
@click.option("--voice", help="Piper: path of an .onnx voice; espeak: a voice name.")
@click.option("--language", help="Language tag of the text; default: each book's own.")
@click.option("--workers", type=click.IntRange(min=1), help="Embedded cluster: worker processes. [default: one per core]")
@click.option("--scheduler", help="Address of a running Dask scheduler.")
@click.option("--scheduler-file", type=click.Path(path_type=Path), help="Scheduler file written by `dask scheduler --scheduler-file`.")
@click.option("--books-in-flight", type=click.IntRange(min=1), default=2, show_default=True, help="Books converted at the same time.")
@click.option("--cache", "cache_url", help="fsspec URL of the sentence cache; 'off' disables it.")
@click.option("--wait", is_flag=True, help="Wait for a running batch into OUTDIR to finish instead of exiting.")
@click.option("--summary", "summary_path", type=click.Path(path_type=Path), help="Also write the JSON summary to this file.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks.")
def batch(
    inbox: str,
    outdir: str,
    engine: str | None,
    voice: str | None,
    language: str | None,
    workers: int | None,
    scheduler: str | None,
    scheduler_file: Path | None,
    books_in_flight: int,
    cache_url: str | None,
    wait: bool,
    summary_path: Path | None,
    verbose: bool,
) -> None:
    """Convert every book in INBOX that has no up-to-date audiobook in OUTDIR (both fsspec URLs).

    Prints a JSON summary. Exits with 0 when every book is converted, up to date or skipped
    (invalid and unchanged since it failed), 1 when any failed, and 0 with a message when
    another batch into OUTDIR is running.
    """
    from audiobook.batch import BatchLocked, batch_lock, run_batch, summarize
    from audiobook.coordinator import BuildRequest
    from audiobook.report import write_json

    configure_logging(verbose)
    cluster, threads = cluster_request(scheduler, scheduler_file, workers)
    work_root = Path(setting("work-dir") or default_work_root())
    template = BuildRequest(
        input=Path(), output=Path(),
        settings=synthesis_settings(engine, voice, language, threads),
        batch_size=int(setting("batch-size")),
        retries=int(setting("retries")),
        progress_interval=float(setting("progress-interval")),
        cache=cache_settings(cache_url, False),
        work_root=work_root,
        progress_bar=False,
    )

    try:
        with batch_lock(outdir, work_root.parent / "locks", wait):
            with open_client(cluster) as client:
                click.echo(f"Dashboard: {client.dashboard_link}", err=True)
                outcomes = run_batch(inbox, outdir, template, client, books_in_flight)

                # Printed before the cluster closes, so the summary is out even if closing fails.
                summary = summarize(inbox, outdir, outcomes)
                click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
                if summary_path:
                    write_json(summary, summary_path)
    except BatchLocked as err:
        click.echo(f"{err}; nothing to do (pass --wait to wait for it)", err=True)
        return
    except InvalidBookError as err:
        fail(err, verbose, InvalidInput)

    if summary["failed"]:
        raise RunFailed(f"{summary['failed']} of {len(outcomes)} book(s) failed; see the summary")


@main.group()
def cache() -> None:
    """Manage the sentence cache."""


@cache.command()
@click.option("--older-than", required=True, help="Age of entries to delete: 30d, 12h, 90m or 3600s.")
@click.option("--cache", "cache_url", help="fsspec URL of the sentence cache. [default: the configured one]")
def prune(older_than: str, cache_url: str | None) -> None:
    """Delete sentence cache entries not written for longer than --older-than."""
    from pipeline.cache import SentenceCache

    configure_logging(False)
    seconds = parse_age(older_than)
    settings = cache_settings(cache_url, False)
    if settings is None:
        raise InvalidInput("the sentence cache is turned off; pass --cache URL to prune one")
    removed, freed = SentenceCache(settings.url).prune(seconds)
    click.echo(f"Removed {removed} entries ({freed / 2**20:.1f} MiB) from {settings.url}")


def parse_age(text: str) -> float:
    """Parse ``30d``, ``12h``, ``90m`` or ``3600s`` into seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or value < 0:
        raise InvalidInput(f"invalid age {text!r}; use a number and a unit, such as 30d, 12h, 90m or 3600s")
    return value * units[unit]
