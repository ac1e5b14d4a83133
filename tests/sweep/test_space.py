from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.cli import parse_time
from bot.backtest.params import BacktestConfigError
from bot.sim.history import bundled_data_dir
from bot.sweep.engine import SweepRequest, run_study
from bot.sweep.runners import InlineRunner
from bot.sweep.space import SpaceError, load_space
from bot.sweep.storage import open_storage, storage_url
from bot.sweep.worker import Window


def _space(tmp_path: Path, text: str, base: dict | None = None):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return load_space(path, base)


def test_ranges_are_exact_decimals_and_the_grid_is_every_combination(tmp_path: Path) -> None:
    space = _space(
        tmp_path,
        """
[strategy]
entry_threshold_apr = { low = "0.1", high = "0.3", step = "0.05" }
max_symbols = [2, 4]
[backtest]
eval_every_hours = { low = 1, high = 8, step = 7 }
""",
        {"strategy": {"baseline_weight": "0.5"}},
    )
    assert space.dimension("strategy.entry_threshold_apr").choices == ("0.1", "0.15", "0.2", "0.25", "0.3")
    assert space.dimension("backtest.eval_every_hours").choices == (1, 8)
    grid = space.grid()
    assert len(grid) == space.grid_size() == 20 and len({tuple(g.values()) for g in grid}) == 20
    params = space.params(grid[-1])
    assert params.strategy.entry_threshold_apr == Decimal("0.3")
    assert params.strategy.baseline_weight == Decimal("0.5")
    assert params.options.eval_every_hours == 8 and params.strategy.max_symbols == 4


def test_a_combination_the_strategy_refuses_is_named(tmp_path: Path) -> None:
    space = _space(tmp_path, '[strategy]\npredicted_weight = ["0.1", "0.6"]\n')
    space.params({"strategy.predicted_weight": "0.1"})
    refused = r"predicted_weight \(0.6\) \+ baseline_weight \(0.6\) must be at most 1"
    with pytest.raises(BacktestConfigError, match=refused):
        space.params({"strategy.predicted_weight": "0.6"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[strategy]\nmax_symbol = [1]\n", "max_symbol is not a parameter of [strategy]; did you mean max_symbols?"),
        ("[stratgy]\nmax_symbols = [1]\n", "unknown section(s) stratgy"),
        ("[strategy]\nmax_symbols = { low = 1.5, high = 3, step = 1 }\n", "is not a whole number"),
        ("[strategy]\nmax_symbols = { low = 1, high = 3, step = 0 }\n", "step must be positive"),
        ("[strategy]\npredicted_weight = { low = 0.5, high = 0.5 }\n", "empty range: low equals high"),
        ("[strategy]\nfee_kind = { low = 1, high = 2 }\n", "is not a number; give a list of its values"),
        ("[strategy]\nmax_symbols = [2, 2]\n", "repeats a value"),
        ("[strategy]\n", "no parameter to sweep"),
    ],
)
def test_bad_spaces_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpaceError) as err:
        _space(tmp_path, text)
    assert message in str(err.value)


def test_storage_url_is_the_ledger_setting_with_a_sync_driver() -> None:
    assert str(storage_url("sqlite+aiosqlite:////data/fundbot.db")) == "sqlite:////data/fundbot-sweeps.db"
    pg = storage_url("postgresql+asyncpg://bot:pw@db:5432/fundbot")
    assert pg.drivername == "postgresql+psycopg" and pg.database == "fundbot" and pg.password == "pw"


@pytest.mark.slow
def test_random_search_resumed_draws_new_points_and_tpe_runs(tmp_path: Path) -> None:
    space = _space(
        tmp_path, "[strategy]\nentry_threshold_apr = { low = 0.06, high = 0.3 }\nmax_symbols = { low = 1, high = 4 }\n"
    )
    window = Window(
        str(bundled_data_dir()), ("SOLUSDT", "XRPUSDT"), parse_time("2025-07-20", ""), parse_time("2025-07-21", "")
    )
    storage = open_storage(f"sqlite+aiosqlite:///{(tmp_path / 'l.db').as_posix()}")
    req = SweepRequest(space, window, Decimal(10000), "random", trials=2, study_name="r")
    first = run_study(req, InlineRunner(), storage)
    more = run_study(
        SweepRequest(space, window, Decimal(10000), "random", trials=3, study_name="r"), InlineRunner(), storage
    )
    assert (first.ran, more.ran, len(more.rows)) == (2, 1, 3)
    drawn = [tuple(r.values.values()) for r in more.rows]
    assert len(set(drawn)) == 3, "the resumed search did not redraw its first points"
    for values in drawn:
        assert 0.06 <= float(values[0]) <= 0.3 and values[1] in (1, 2, 3, 4)
        assert isinstance(values[0], str), "a Decimal field gets the decimal text --config would hold"
    tpe = run_study(
        SweepRequest(space, window, Decimal(10000), "tpe", trials=2, study_name="t"), InlineRunner(), storage
    )
    assert tpe.ran == 2 and all(r.state == "ok" for r in tpe.rows)
