"""A real Dask cluster on loopback for the sweep tests: ``dask scheduler`` and ``dask worker`` processes,
started once per session (about 5 s on a loaded 2-core machine), and a small sweep space.

The window is three days of the bundled real data (all eight symbols), where the swept values give four
different results, each backtest well under a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START, END = "2025-07-20", "2025-07-23"
SPACE = """
[strategy]
max_per_symbol_fraction = ["0.1", "0.2"]
max_symbols = { low = 2, high = 4, step = 2 }
"""
DASK_BIN = Path(sys.executable).parent / "dask"


@dataclass
class DaskCluster:
    address: str
    scheduler_file: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, nanny: bool = True) -> subprocess.Popen[bytes]:
        args = [
            str(DASK_BIN),
            "worker",
            "--scheduler-file",
            str(self.scheduler_file),
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            "--nanny" if nanny else "--no-nanny",
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_for_workers(self, n: int, timeout_s: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            client.wait_for_workers(n, timeout=timeout_s)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A scheduler and two single-threaded workers, real processes on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("dask")
    sfile = folder / "scheduler.json"
    sched = subprocess.Popen(
        [
            str(DASK_BIN),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sfile),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not sfile.exists() or not sfile.read_text().strip():
        if sched.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("dask scheduler did not start")
        time.sleep(0.1)
    cluster = DaskCluster(json.loads(sfile.read_text())["address"], sfile, [sched])
    try:
        cluster.start_worker()
        cluster.start_worker()
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path
