"""Connect to the Dask cluster: an existing scheduler, or an embedded LocalCluster."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import dask.config
from distributed import Client, LocalCluster

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterRequest:
    """The cluster to run on: an existing scheduler, or the shape of an embedded cluster."""

    scheduler: str | None = None
    """Address of a running scheduler (``tcp://HOST:PORT``), or None."""

    scheduler_file: str | None = None
    """JSON file written by ``dask scheduler --scheduler-file``, or None."""

    workers: int | None = None
    """Worker processes of the embedded cluster; None means one per core."""

    threads_per_worker: int = 1
    """Threads in each embedded worker process."""

    dashboard_address: str = "127.0.0.1:8787"
    """Host and port of the embedded cluster's dashboard."""


def core_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def engine_threads(workers: int, threads_per_worker: int) -> int:
    """Threads each engine call may use so that workers times threads fits the cores."""
    return max(1, core_count() // max(1, workers * threads_per_worker))


def embedded_workers(request: ClusterRequest) -> int:
    """Worker processes the embedded cluster will start."""
    return request.workers or core_count()


@contextlib.contextmanager
def open_client(request: ClusterRequest) -> Iterator[Client]:
    """Yield a connected Client and close it (and any embedded cluster) afterwards.

    With neither ``scheduler`` nor ``scheduler_file`` set, Dask's own
    ``scheduler-address`` setting is tried before an embedded cluster is started, so
    clusters that export it (dask-jobqueue, dask-kubernetes) are picked up.
    """
    address = request.scheduler or dask.config.get("scheduler-address", None)
    if request.scheduler_file:
        logger.info("connecting to the scheduler in %s", request.scheduler_file)
        with Client(scheduler_file=request.scheduler_file) as client:
            yield client
        return

    if address:
        logger.info("connecting to the scheduler at %s", address)
        with Client(address) as client:
            yield client
        return

    workers = embedded_workers(request)
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=request.threads_per_worker,
        processes=True,
        host="127.0.0.1",
        dashboard_address=request.dashboard_address,
    )
    try:
        client = Client(cluster)
    except BaseException:
        _close_quietly(cluster)
        raise

    logger.info(
        "embedded cluster: %d worker(s) x %d thread(s), dashboard %s",
        workers, request.threads_per_worker, client.dashboard_link,
    )
    try:
        yield client
    finally:
        _close_quietly(client)
        _close_quietly(cluster)


def _close_quietly(resource: Client | LocalCluster) -> None:
    """Close the embedded cluster or its client, logging a failure instead of raising it.

    The run's outputs are written by then. Closing can still fail, for example when
    stopping the workers times out, and that must not turn a finished run into a failed one.
    """
    try:
        resource.close()
    except Exception as err:  # noqa: BLE001 - any failure to stop is reported, not raised
        logger.warning(
            "the embedded cluster's %s did not close cleanly (%s: %s); its processes end with this one",
            type(resource).__name__, type(err).__name__, err,
        )
