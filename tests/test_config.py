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
    assert s.symbols[0] == "BTC/USDT"


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
    ],
)
def test_bad_value_names_the_variable(monkeypatch, tmp_path, var, value, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)


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
