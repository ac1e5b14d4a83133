import os
import signal
from decimal import Decimal
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bot.backtest.cli import parse_time
from bot.sim.history import bundled_data_dir
from bot.sweep.engine import SweepRequest, run_study
from bot.sweep.runners import DaskRunner
from bot.sweep.space import load_space
from bot.sweep.storage import open_storage
from bot.sweep.worker import Window

from .conftest import END, START, DaskCluster

pytestmark = pytest.mark.slow  # every test here is over ~2 s


def test_killing_a_worker_mid_sweep_loses_no_trial_and_counts_none_twice(
    tmp_path: Path, dask_cluster: DaskCluster
) -> None:
    space = tmp_path / "space.toml"
    space.write_text('[strategy]\nentry_threshold_apr = ["0.08", "0.12", "0.15"]\nmax_symbols = [2, 4]\n')
    victim = dask_cluster.start_worker(nanny=False)  # a third worker, the one that will die
    dask_cluster.wait_for_workers(3)
    runner = DaskRunner(dask_cluster.address)
    url = f"sqlite+aiosqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    storage = open_storage(url)
    req = SweepRequest(
        load_space(space),
        Window(str(bundled_data_dir()), None, parse_time(START, ""), parse_time(END, "")),
        Decimal(100000),
        "grid",
        study_name="kill",
    )
    killed: list[str] = []

    def kill_when_busy(done: int, total: int, best: float | None) -> None:
        """After the first result, kill the third worker while it runs a trial (SIGKILL: no goodbye)."""
        if killed or done < 1:
            return
        addr = next(a for a, pid in runner.client.run(os.getpid).items() if pid == victim.pid)
        busy = runner.client.processing().get(addr, ())
        if busy:
            killed.extend(str(k) for k in busy)
            os.killpg(victim.pid, signal.SIGKILL)

    try:
        outcome = run_study(req, runner, storage, kill_when_busy)
    finally:
        runner.close()
    victim.wait(timeout=10)
    assert killed, "the third worker was never seen running a trial"
    assert outcome.ran == 6 and sorted(r.number for r in outcome.rows) == list(range(6))
    assert all(r.state == "ok" for r in outcome.rows), [(r.number, r.state, r.error) for r in outcome.rows]
    combos = {(r.values["strategy.entry_threshold_apr"], r.values["strategy.max_symbols"]) for r in outcome.rows}
    assert len(combos) == 6, "every grid point once"
    trials = optuna.load_study(study_name="kill", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6, "six trials in the study, none twice"
    lost = [int(k.rsplit("/", 1)[1].split("-")[0]) for k in killed]  # fundbot-trial-kill/<n>-<run>
    assert all(trials[n].user_attrs["worker_pid"] != victim.pid for n in lost), "re-run on a live worker"
