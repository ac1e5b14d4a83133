"""Settings: defaults, env parsing, clear errors naming the variable, secrets never shown."""

from pathlib import Path

import pytest

from bot.config import ConfigError, Mode, load_settings, render_env_example

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_offline_sqlite(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    s = load_settings()
    assert s.mode is Mode.DRY_RUN
    assert s.resolved_database_url() == "sqlite+aiosqlite:///var/fundbot-dryrun.db"
    assert s.symbols == []  # empty: the universe (bot.engine.universe)


def test_live_mode_uses_its_own_ledger(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNDBOT_MODE", "live")
    monkeypatch.setenv("FUNDBOT_DATA_DIR", "/data")
    assert load_settings().resolved_database_url() == "sqlite+aiosqlite:////data/fundbot.db"


def test_symbols_from_comma_list(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNDBOT_SYMBOLS", "BTC/USDT, ETH/USDT")
    assert load_settings().symbols == ["BTC/USDT", "ETH/USDT"]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("FUNDBOT_MODE", "paper", "FUNDBOT_MODE"),
        ("FUNDBOT_SYMBOLS", "BTCUSDT", "FUNDBOT_SYMBOLS"),
        ("FUNDBOT_LOG_LEVEL", "LOUD", "FUNDBOT_LOG_LEVEL"),
        # the band as a whole, with the values (it blamed FUNDBOT_TREASURY__HIGH_RATIO)
        (
            "FUNDBOT_TREASURY__LOW_RATIO",
            "0.8",
            "FUNDBOT_TREASURY: Value error, need low_ratio < target_ratio < high_ratio, got 0.8 / 0.5 / 0.7",
        ),
        # a misspelled top-level variable was ignored and the default ran (a nested one was caught)
        ("FUNDBOT_SYMBOL", "BTC/USDT", "FUNDBOT_SYMBOL: unknown setting; did you mean FUNDBOT_SYMBOLS?"),
        ("FUNDBOT_TREASURY_LOW_RATIO", "0.3", "did you mean FUNDBOT_TREASURY__LOW_RATIO?"),
        ("FUNDBOT_DATABASE_UR", "x", "did you mean FUNDBOT_DATABASE_URL?"),
        (
            "FUNDBOT_TREASURY__LOW_RATO",
            "0.3",
            "FUNDBOT_TREASURY__LOW_RATO: unknown setting; did you mean FUNDBOT_TREASURY__LOW_RATIO?",
        ),
        # any other ccxt id was accepted and ignored: the bot still traded Binance
        (
            "FUNDBOT_EXCHANGE",
            "kraken",
            "FUNDBOT_EXCHANGE: Value error, 'kraken' is not supported: fundbot trades binance only",
        ),
        ("FUNDBOT_DATA_DIR", __file__, "FUNDBOT_DATA_DIR: Value error, "),
        (
            "FUNDBOT_CONNECTION_FILE",
            ".",
            "FUNDBOT_CONNECTION_FILE: Value error, . is a directory, not a connection file",
        ),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, tmp_path, var, value, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)


def test_exchange_is_case_insensitive(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNDBOT_EXCHANGE", " Binance ")
    assert load_settings().exchange == "binance"


def test_an_empty_value_means_the_default_in_the_environment_and_in_dotenv(monkeypatch, tmp_path):
    """`.env.example` writes unset values as NAME= : the empty capital limit was an invalid decimal (every
    command exited 2) and the empty connection file became '.', a directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "FUNDBOT_ENGINE__CAPITAL_LIMIT=\nFUNDBOT_CONNECTION_FILE=\nFUNDBOT_HTTP__PORT=\nFUNDBOT_SYMBOLS=\n"
        "FUNDBOT_DATA_DIR=\n"
    )
    for name in ("FUNDBOT_TREASURY__LOW_RATIO", "FUNDBOT_MODE", "FUNDBOT_DATABASE_URL", "FUNDBOT_EXCHANGE"):
        monkeypatch.setenv(name, "")
    s = load_settings()
    assert s.engine.capital_limit is None and s.connection_file is None and s.http.port == 8787
    assert s.symbols == [] and s.data_dir == Path("var") and s.exchange == "binance"
    assert s.treasury.low_ratio == load_settings(treasury={}).treasury.low_ratio and s.mode is Mode.DRY_RUN
    assert s.resolved_database_url() == "sqlite+aiosqlite:///var/fundbot-dryrun.db"


def test_the_example_copied_as_it_is_loads_the_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((REPO / ".env.example").read_text())
    assert load_settings().model_dump() == load_settings(_env_file=None).model_dump()


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FUNDBOT_LOG_LEVEL=debug\n")
    assert load_settings().log_level == "DEBUG"


def test_secrets_are_masked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNDBOT_API_SECRET", "s3cr3t-value")
    s = load_settings()
    assert "s3cr3t-value" not in repr(s)
    assert "s3cr3t-value" not in str(s.model_dump())
    assert s.api_secret.get_secret_value() == "s3cr3t-value"


def test_env_example_matches_the_code():
    """.env.example documents every setting with its default; regenerate with `fundbot config example`."""
    assert (REPO / ".env.example").read_text().strip() == render_env_example().strip()


def test_readme_table_matches_the_code():
    """README's configuration table is generated by `fundbot config example --markdown`."""
    from bot.config import render_settings_table

    text = (REPO / "README.md").read_text()
    table = text.split("<!-- settings-table -->")[1].split("<!-- /settings-table -->")[0]
    assert table.strip() == render_settings_table().strip()


def test_strategy_collateral_must_match_the_treasury(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUNDBOT_STRATEGY__MARGIN_BUFFER_FRACTION", "0.05")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "FUNDBOT_TREASURY__TARGET_RATIO" in text and "raise the buffer to 0.1667" in text
    monkeypatch.setenv("FUNDBOT_STRATEGY__MARGIN_BUFFER_FRACTION", "0.2")
    monkeypatch.setenv("FUNDBOT_ENGINE__LEVERAGE", "1")  # initial margin = the whole notional
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "raise the buffer to 0.6667" in str(info.value)


def test_misspelled_variable_in_dotenv_and_unparsable_section(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("# comment\nFUNDBOT_LOG_LEVLE=debug\n")
    with pytest.raises(ConfigError, match="FUNDBOT_LOG_LEVLE: unknown setting; did you mean FUNDBOT_LOG_LEVEL"):
        load_settings()
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("FUNDBOT_ENGINE", "notjson")
    with pytest.raises(ConfigError, match="set the section's fields one by one"):
        load_settings()
    monkeypatch.delenv("FUNDBOT_ENGINE")
    monkeypatch.setenv("FUNDBOT_TEST_POSTGRES_URL", "x")  # the tests' own variable is not a setting
    monkeypatch.setenv("FUNDBOT_POSTGRES_PASSWORD", "x")  # docker-compose.yml's
    assert load_settings().log_level == "INFO"
