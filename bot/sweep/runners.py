"""Where trials run: a Dask cluster (a ``LocalCluster`` by default, or ``--scheduler``), or a plain process
pool (the benchmark's reference). Both take ``TrialTask``s and hand back finished futures as they finish.

Dask re-runs a task whose worker died on another worker (the scheduler's own bookkeeping), so a killed
worker loses no trial; the sweep tells each trial's result once (``bot.sweep.engine``), so none counts
twice even when a task ran partly on a worker that died.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import uuid
from typing import Any, Protocol

from bot.sweep.worker import TrialTask, run_trial


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached (or has no worker); the message names the address."""


class TrialRunner(Protocol):
    @property
    def capacity(self) -> int: ...

    def submit(self, task: TrialTask) -> Any: ...

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    return max(os.cpu_count() or 1, 1)


class DaskRunner:
    """Trials as Dask tasks. ``scheduler`` None starts a ``LocalCluster`` of ``workers`` single-threaded
    worker processes on loopback (no dashboard: its fixed port would collide between sweeps)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None, timeout_s: float = 10.0) -> None:
        from distributed import Client, LocalCluster

        self._cluster = None
        if scheduler is None:
            import dask

            # the workers' statistical profiler samples every thread each 10 ms: on a pure-Python backtest
            # that is GIL time taken from the trial (on another cluster, set
            # DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False for its workers)
            dask.config.set({"distributed.worker.profile.enabled": False})
            self._cluster = LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                scheduler_port=0,
                dashboard_address=None,
                worker_dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(scheduler, timeout=timeout_s)
            except (OSError, TimeoutError) as err:
                raise SchedulerError(
                    f"cannot reach the Dask scheduler at {scheduler} within {timeout_s:g} s "
                    f"({type(err).__name__}); start it (dask scheduler) or fix --scheduler"
                ) from None
            try:
                self.client.wait_for_workers(1, timeout=timeout_s)
            except (OSError, TimeoutError):
                self.client.close()
                raise SchedulerError(
                    f"the Dask scheduler at {scheduler} has no worker after {timeout_s:g} s; start one "
                    f"(dask worker {scheduler})"
                ) from None
        if self.client.scheduler is None:  # connected above, so only a Dask change could leave it unset
            raise SchedulerError(f"the Dask client has no scheduler connection to {scheduler}")
        self.address = self.client.scheduler.address

    @property
    def capacity(self) -> int:
        return max(sum(self.client.nthreads().values()), 1)

    def submit(self, task: TrialTask) -> Any:
        # a key unique to this submission: two sweeps on one scheduler never share a task
        return self.client.submit(run_trial, task, key=f"fundbot-trial-{task.key}-{uuid.uuid4().hex[:8]}", pure=False)

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        from distributed import wait

        done, rest = wait(list(pending), return_when="FIRST_COMPLETED")
        return set(done), set(rest)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


class PoolRunner:
    """Trials in a ``ProcessPoolExecutor`` (spawned processes, each with its own data cache)."""

    def __init__(self, workers: int | None = None) -> None:
        self.capacity = workers or default_workers()
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.capacity, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(self, task: TrialTask) -> Any:
        return self._pool.submit(run_trial, task)

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        done, rest = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        return set(done), set(rest)

    def close(self) -> None:
        self._pool.shutdown()


class InlineRunner:
    """Trials one by one in this process (the reference the Dask results are compared with)."""

    capacity = 1

    def submit(self, task: TrialTask) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            fut.set_result(run_trial(task))
        except Exception as err:  # the same path as a worker's exception
            fut.set_exception(err)
        return fut

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        return set(pending), set()

    def close(self) -> None:
        pass
