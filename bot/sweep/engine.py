"""The sweep loop: Optuna asks for parameters, a runner backtests them, Optuna is told each result once.

``grid`` enqueues every combination not yet finished in the study, in file order; ``random`` and
``tpe`` draw from Optuna's samplers (seeded; on resume the seed moves on by the trials already in the
study, so a resumed random search does not redraw its first points). At most ``runner.capacity`` trials
are in flight, so TPE learns from the finished ones while the others run.

Resume: the study (``--study``) keeps finished trials; an invalid combination is finished too (it would
fail again). A trial left running by a stopped sweep, or whose worker raised, is run again. The study
remembers the data, window, capital, space and objective it was started with and refuses to continue
with others (its trials would not be comparable).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from bot.sweep.runners import TrialRunner
from bot.sweep.space import SweepSpace, Value
from bot.sweep.worker import TrialOutcome, TrialTask, Window

METHODS = ("grid", "random", "tpe")
DEFAULT_TRIALS = 50  # random/tpe without --trials


class StudyMismatchError(ValueError):
    """``--study`` names a study run on other data, window, space or objective."""


@dataclass(frozen=True)
class SweepRequest:
    space: SweepSpace
    window: Window
    capital: Decimal
    method: str = "grid"
    trials: int | None = None
    objective: str = "apr"
    max_drawdown: float | None = None
    seed: int = 0
    study_name: str = "sweep"


@dataclass
class TrialRow:
    """One finished trial as the report and the CSV show it."""

    number: int
    values: dict[str, Value]
    state: str  # "ok" | "invalid" | "error"
    objective: float | None
    feasible: bool
    metrics: dict[str, float] | None
    error: str | None = None


@dataclass
class StudyOutcome:
    name: str
    rows: list[TrialRow]
    ran: int  # trials run by this call (the others were finished before: resume)
    seconds: float
    worker_pids: dict[int, int] = field(default_factory=dict)  # pid -> datasets it read from files

    def best(self, k: int = 1) -> list[TrialRow]:
        """The ``k`` best feasible trials; ties go to the earlier trial."""
        ok = [r for r in self.rows if r.state == "ok" and r.feasible and r.objective is not None]
        return sorted(ok, key=lambda r: (-(r.objective or 0.0), r.number))[:k]


Progress = Callable[[int, int, float | None], None]  # (done, total, best objective so far)


def _context(req: SweepRequest) -> dict[str, Any]:
    w = req.window
    return {
        "data_dir": w.data_dir,
        "symbols": list(w.symbols) if w.symbols else None,
        "start_ms": w.start_ms,
        "end_ms": w.end_ms,
        "capital": str(req.capital),
        "objective": req.objective,
        "max_drawdown": req.max_drawdown,
        "method": req.method,
        "space": [asdict(d) for d in req.space.dimensions],
        "base": req.space.base,
    }


def _suggest(trial: Any, space: SweepSpace) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for d in space.dimensions:
        raw: Value
        if d.choices is not None:
            raw = trial.suggest_categorical(d.name, list(d.choices))
        elif d.kind == "int":
            raw = trial.suggest_int(d.name, int(d.low or 0), int(d.high or 0), log=d.log)
        else:
            raw = trial.suggest_float(d.name, float(d.low or 0.0), float(d.high or 0.0), log=d.log)
            if d.kind == "decimal":  # the shortest decimal that is this float: what --config would hold
                raw = format(Decimal(repr(raw)).normalize(), "f")
        values[d.name] = raw
    return values


def _sampler(req: SweepRequest, offset: int) -> Any:
    import optuna

    seed = req.seed + offset
    if req.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)  # reads the constraints each trial is told with
    return optuna.samplers.RandomSampler(seed=seed)


def _finished(trial: Any) -> bool:
    from optuna.trial import TrialState

    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and trial.user_attrs.get("state") == "invalid"
    )


def _key(values: dict[str, Value]) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def open_study(req: SweepRequest, storage: Any) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=req.study_name, direction="maximize", load_if_exists=True)
    ctx = json.loads(json.dumps(_context(req), default=str))
    old = study.user_attrs.get("context")
    if old is None:
        study.set_user_attr("context", ctx)
    elif old != ctx:
        changed = sorted(k for k in set(old) | set(ctx) if old.get(k) != ctx.get(k))
        raise StudyMismatchError(
            f"study {req.study_name!r} was run with another {', '.join(changed)}; resume it with the same "
            "options or give a new --study"
        )
    return study


def _requeue_stale(study: Any) -> None:
    """Trials a stopped sweep left running run again (a worker error's trial is not finished either: a grid
    enqueues its combination again, a random search draws a new one in its place)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study._storage.set_trial_user_attr(t._trial_id, "state", "stopped")
        if study.user_attrs.get("context", {}).get("method") != "grid":
            study.enqueue_trial(t.params, skip_if_exists=True)


def run_study(
    req: SweepRequest, runner: TrialRunner, storage: Any, progress: Progress | None = None, want_equity: bool = False
) -> StudyOutcome:
    """Run the request's trials on ``runner`` into the study ``req.study_name`` (resumed if it exists)."""
    from optuna.trial import TrialState

    t0 = time.perf_counter()
    study = open_study(req, storage)
    _requeue_stale(study)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if _finished(t)]
    if req.method == "grid":
        grid = req.space.grid()
        target = min(req.trials or len(grid), len(grid))
        done_keys = {_key(t.params) for t in finished}
        queued = {_key(t.params) for t in trials if t.state == TrialState.WAITING}
        missing = [v for v in grid if _key(v) not in done_keys]
        for values in missing[: max(target - len(finished), 0)]:
            if _key(values) not in queued:
                study.enqueue_trial(values)
    else:
        target = req.trials or DEFAULT_TRIALS
    study.sampler = _sampler(req, len(trials))
    to_run = max(target - len(finished), 0)
    best = max((t.value for t in finished if t.value is not None and t.user_attrs.get("feasible")), default=None)
    done = len(finished)
    if progress:
        progress(done, target, best)
    pending: dict[Any, tuple[Any, TrialTask]] = {}
    told: set[int] = set()
    pids: dict[int, int] = {}
    submitted = 0
    while submitted < to_run or pending:
        while submitted < to_run and len(pending) < runner.capacity:
            trial = study.ask()
            values = _suggest(trial, req.space)
            trial.set_user_attr("values", values)  # as the trial's --config holds them (decimal text)
            task = TrialTask(
                f"{req.study_name}/{trial.number}",
                trial.number,
                req.window,
                req.capital,
                req.space.config(values),
                want_equity,
            )
            pending[runner.submit(task)] = (trial, task)
            submitted += 1
        fin, _rest = runner.wait_any(set(pending))
        for fut in fin:
            trial, _task = pending.pop(fut)
            if trial.number in told:  # a result is told once, whatever the runner did
                continue
            told.add(trial.number)
            value = _tell(study, trial, fut, req)
            if value is not None and (best is None or value > best):
                best = value
            outcome = _outcome(fut)
            if outcome is not None:
                pids[outcome.worker_pid] = max(pids.get(outcome.worker_pid, 0), outcome.dataset_loads)
            done += 1
            if progress:
                progress(done, target, best)
    return StudyOutcome(req.study_name, study_rows(study, req.space), len(told), time.perf_counter() - t0, pids)


def _outcome(fut: Any) -> TrialOutcome | None:
    try:
        return fut.result()
    except Exception:
        return None


def _tell(study: Any, trial: Any, fut: Any, req: SweepRequest) -> float | None:
    """Record one trial; the objective when it is feasible (for 'best so far')."""
    from optuna.trial import TrialState

    try:
        out: TrialOutcome = fut.result()
    except Exception as err:  # the worker raised or died too often: a bug or a broken worker, run again
        first = (str(err).strip().splitlines() or [""])[0]
        trial.set_user_attr("state", "error")
        trial.set_user_attr("error", f"{type(err).__name__}: {first}"[:500])
        study.tell(trial, state=TrialState.FAIL)
        return None
    trial.set_user_attr("worker_pid", out.worker_pid)
    if out.metrics is None:
        trial.set_user_attr("state", "invalid")
        trial.set_user_attr("error", (out.error or "")[:500])
        study.tell(trial, state=TrialState.FAIL)
        return None
    m = out.metrics
    feasible = m.feasible(req.max_drawdown)
    value = m.value(req.objective)
    trial.set_user_attr("state", "ok")
    trial.set_user_attr("metrics", asdict(m))
    trial.set_user_attr("feasible", feasible)
    # Optuna's convention, <= 0 is feasible: TPE models the infeasible trials apart
    trial.set_constraint("liquidations", float(m.liquidations))
    if req.max_drawdown is not None:
        trial.set_constraint("max_drawdown", m.max_drawdown - req.max_drawdown)
    study.tell(
        trial,
        value if math.isfinite(value) else None,
        state=TrialState.COMPLETE if math.isfinite(value) else TrialState.FAIL,
    )
    return value if feasible and math.isfinite(value) else None


def study_rows(study: Any, space: SweepSpace) -> list[TrialRow]:
    """The study's finished trials (every run of it) as rows, in trial order."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not _finished(t):
            continue
        state = t.user_attrs.get("state", "ok")
        given = t.user_attrs.get("values") or t.params
        values = {d.name: given.get(d.name) for d in space.dimensions}
        rows.append(
            TrialRow(
                t.number,
                values,
                state,
                t.value if state == "ok" else None,
                bool(t.user_attrs.get("feasible", False)),
                t.user_attrs.get("metrics"),
                t.user_attrs.get("error"),
            )
        )
    return rows
