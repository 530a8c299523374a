"""Start real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 for tests."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))


@dataclass
class RealCluster:
    """A scheduler and its workers, each a real process."""

    scheduler_file: Path
    """The file the scheduler wrote, for ``--scheduler-file``."""

    address: str
    """The scheduler's address."""

    processes: list[subprocess.Popen]
    """Scheduler first, then each ``dask worker``."""


def environment() -> dict[str, str]:
    """The test environment plus the repository on PYTHONPATH, for the fault engines."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    return env


def wait_for_workers(scheduler_file: Path, count: int, timeout: float = 90.0) -> None:
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout=timeout) as client:
        client.wait_for_workers(count, timeout=timeout)


@contextmanager
def real_cluster(
    tmp_path: Path, workers: int = 2, worker_arguments: tuple[str, ...] = (), scheduler_arguments: tuple[str, ...] = ()
) -> Iterator[RealCluster]:
    """Run a scheduler and ``workers`` single-threaded workers until the block ends."""
    scheduler_file = tmp_path / "scheduler.json"
    logs = tmp_path / "cluster-logs"
    logs.mkdir(exist_ok=True)
    env = environment()
    processes = []
    try:
        processes.append(subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(scheduler_file), *scheduler_arguments],
            env=env, stdout=subprocess.DEVNULL, stderr=(logs / "scheduler.log").open("wb"),
            start_new_session=True,
        ))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start; see {logs / 'scheduler.log'}")
            time.sleep(0.2)
        time.sleep(0.3)  # the file is written before it is complete on slow disks
        address = json.loads(scheduler_file.read_text())["address"]

        for number in range(workers):
            processes.append(subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                 "--nthreads", "1", "--nworkers", "1", "--name", f"worker-{number}",
                 "--dashboard-address", "127.0.0.1:0", "--no-dashboard", *worker_arguments],
                env=env, stdout=subprocess.DEVNULL, stderr=(logs / f"worker-{number}.log").open("wb"),
                start_new_session=True,
            ))
        wait_for_workers(scheduler_file, workers)
        yield RealCluster(scheduler_file, address, processes)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
