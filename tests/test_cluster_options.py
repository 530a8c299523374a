"""Cluster options: bind address, TLS, GPU resources, dask.config settings, the dask subcommand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster, wait

from audiobook.cluster import ClusterRequest, open_client
from audiobook.config import setting
from graphs.book_graph import compile_book_graph, submit_book_graph
from pipeline.records import Book, Chapter, SynthesisSettings
from pipeline.text import split_chapter
from tests.checks import build, chapters_of
from tests.cluster import environment, real_cluster
from tests.fixtures.books import make_text_book
from tests.tls import write_self_signed

BOOK = Book("b.txt", "Resources", (), "en", (Chapter(1, "One", ("First. Second.",)),))


def test_setting_reads_dask_config() -> None:
    with dask.config.set({"audiobook.engine": "espeak", "audiobook.silence.paragraph": 1.5}):
        assert setting("engine") == "espeak"
        assert setting("silence.paragraph") == 1.5
        assert setting("engine", "piper") == "piper"


def test_setting_reads_environment_variable() -> None:
    code = "import audiobook.config as c; print(c.setting('batch-size'))"
    env = dict(os.environ, DASK_AUDIOBOOK__BATCH_SIZE="7")

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)

    assert completed.stdout.strip() == "7"


@pytest.mark.slow
def test_embedded_cluster_binds_to_loopback() -> None:
    with open_client(ClusterRequest(workers=1, dashboard_address="127.0.0.1:0")) as client:
        workers = client.scheduler_info()["workers"]
        scheduler_address = client.scheduler.address
        dashboard = client.dashboard_link

    assert scheduler_address.startswith("tcp://127.0.0.1:")
    assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert dashboard.startswith("http://127.0.0.1:")


def test_cluster_close_failure_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def timing_out(self: LocalCluster, *args: object, **kwargs: object) -> None:
        original_close(self, *args, **kwargs)
        raise TimeoutError("workers still stopping after 20 s")

    original_close = LocalCluster.close
    monkeypatch.setattr(LocalCluster, "close", timing_out)

    with open_client(ClusterRequest(workers=1, dashboard_address="127.0.0.1:0")) as client:
        total = client.submit(sum, [1, 2, 3]).result()

    assert total == 6
    assert "LocalCluster did not close cleanly (TimeoutError: workers still stopping after 20 s)" in caplog.text


@pytest.mark.slow
def test_speech_tasks_request_gpu_resource() -> None:
    sentences = [split_chapter(chapter, "en", 400) for chapter in BOOK.chapters]
    graph = compile_book_graph(BOOK, sentences, SynthesisSettings(), speech_resources={"GPU": 1})

    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0", resources={"GPU": 1}) as cluster:
        with Client(cluster) as client:
            futures = submit_book_graph(client, graph, retries=0)
            wait([*futures.chapters, *futures.batches])
            restrictions = client.run_on_scheduler(
                lambda dask_scheduler: {
                    str(key): task.resource_restrictions for key, task in dask_scheduler.tasks.items()
                }
            )
            client.cancel([*futures.chapters, *futures.batches, futures.timeline])

    synthesize = {key: value for key, value in restrictions.items() if key.startswith("synthesize-")}
    chapters = {key: value for key, value in restrictions.items() if key.startswith("chapter-")}
    assert synthesize and all(value == {"GPU": 1} for value in synthesize.values())
    assert chapters and all(not value for value in chapters.values())


@pytest.mark.slow
def test_build_over_tls(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    tls_options = ("--tls-ca-file", str(cert), "--tls-cert", str(cert), "--tls-key", str(key))
    book = make_text_book(tmp_path / "tls.txt", [("Chapter 1", ["Over an encrypted wire."])])
    env = environment() | {
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(cert),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(cert),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key),
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
    }
    os.environ.update({name: value for name, value in env.items() if name.startswith("DASK_DISTRIBUTED")})
    dask.config.refresh()
    try:
        with real_cluster(tmp_path, workers=1, worker_arguments=tls_options,
                          scheduler_arguments=("--protocol", "tls", *tls_options)) as cluster:
            assert cluster.address.startswith("tls://127.0.0.1:")
            outcome = build(book, tmp_path / "tls.m4b", "--scheduler", cluster.address, "--engine", "espeak", env=env)
            plain = build(book, tmp_path / "plain.m4b", "--scheduler", cluster.address.replace("tls://", "tcp://"),
                          "--engine", "espeak", env=environment())
    finally:
        for name in list(os.environ):
            if name.startswith("DASK_DISTRIBUTED__COMM"):
                del os.environ[name]
        dask.config.refresh()

    assert outcome.returncode == 0, outcome.stderr
    assert [marker.title for marker in chapters_of(tmp_path / "tls.m4b")] == ["Chapter 1"]
    assert plain.returncode != 0
    assert not (tmp_path / "plain.m4b").exists()


def test_dask_subcommand_runs_audiobook() -> None:
    dask_cli = str(Path(sys.executable).with_name("dask"))

    completed = subprocess.run([dask_cli, "audiobook", "--help"], capture_output=True, text=True, check=False)

    assert completed.returncode == 0, completed.stderr
    assert "build" in completed.stdout
    assert "workers" in completed.stdout


@pytest.mark.slow
def test_build_writes_performance_report(tmp_path: Path) -> None:
    book = make_text_book(tmp_path / "book.txt", [("Chapter 1", ["A short run, reported."])])
    report = tmp_path / "performance.html"

    outcome = build(book, tmp_path / "book.m4b", "--engine", "espeak", "--workers", "1",
                    "--performance-report", str(report))

    assert outcome.returncode == 0, outcome.stderr
    assert report.stat().st_size > 10_000
    assert "synthesize" in report.read_text(errors="replace")
    assert "Dashboard: http://127.0.0.1:" in outcome.stderr
