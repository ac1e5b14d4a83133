"""docker-compose.yml, parsed (PyYAML): the offline profile can work (the emulator and its clients speak
loopback only), and a restarted stack carries on."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]


def _option(command: list[str], flag: str) -> str | None:
    """The value after ``flag`` in an exec-form command, None when the flag is absent."""
    return command[command.index(flag) + 1] if flag in command else None


def test_the_file_parses_with_the_four_services_and_their_volumes() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"fundbot", "emulator", "fundbot-offline", "postgres"}
    declared = set(compose["volumes"])
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in declared, f"{name} mounts the undeclared volume {source}"


def test_offline_daemon_shares_the_emulators_loopback(services: dict[str, dict[str, Any]]) -> None:
    """The emulator refuses a non-loopback --host and its TLS certificate names 127.0.0.1: the compose
    file started it with --host 0.0.0.0 (exit 2), and a second container could not have reached it."""
    emulator, offline = services["emulator"], services["fundbot-offline"]
    assert emulator["command"][0] == "emulator" and "--host" not in emulator["command"]
    assert offline["network_mode"] == "service:emulator"
    assert "ports" not in offline  # its health port is published by the emulator, whose network it uses
    assert any(p.endswith(":8787") for p in emulator["ports"])
    assert "fundbot-offline-data:/data" in offline["volumes"] and "fundbot-offline-data:/data" in emulator["volumes"]
    assert services["fundbot"]["volumes"] == ["fundbot-data:/data"], "the online daemon keeps its own ledger"
    assert set(emulator["profiles"]) == set(offline["profiles"]) == {"offline"}


def test_a_restarted_offline_stack_carries_on(services: dict[str, dict[str, Any]]) -> None:
    """A restarted emulator replayed from its start again (the paper account was then in the market's
    future), an earlier run's emulator.json passed the healthcheck, and an explicit depends_on next to
    network_mode hangs `docker compose restart`."""
    emulator, offline = services["emulator"], services["fundbot-offline"]
    assert _option(emulator["command"], "--clock-file") == "/data/emulator-clock.json"
    assert _option(emulator["command"], "--connection-file") == "/data/emulator.json"
    probe = emulator["healthcheck"]["test"]
    assert probe[:2] == ["CMD", "python"]
    assert "socket.create_connection(('127.0.0.1', c['http_port'])" in probe[-1]  # the file's port answers
    assert "depends_on" not in offline
    assert offline["command"][:2] == ["run", "--dry-run"]
    assert _option(offline["command"], "--connection-file") == "/data/emulator.json"
    for name, svc in services.items():
        assert svc["restart"] == "unless-stopped", name


def test_the_daemons_stop_on_sigterm_with_time_to_finish(services: dict[str, dict[str, Any]]) -> None:
    for name in ("fundbot", "fundbot-offline"):
        svc = services[name]
        assert svc["stop_signal"] == "SIGTERM" and svc["stop_grace_period"] == "60s", name
        assert svc["environment"]["FUNDBOT_HTTP__HOST"] == "0.0.0.0", name  # reachable through the port map
        assert "/healthz" in svc["healthcheck"]["test"][-1], name


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (v1) validates the file")
def test_compose_file_validates(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    for args in (["config", "-q"], ["--profile", "offline", "config", "-q"], ["--profile", "postgres", "config", "-q"]):
        out = subprocess.run(["docker-compose", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
