"""docker-compose.yml: the offline profile can work (the emulator and its clients speak loopback only)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _service(text: str, name: str) -> str:
    """The block of one service (its indented lines)."""
    lines = text.splitlines()
    start = lines.index(f"  {name}:")
    block = []
    for line in lines[start + 1 :]:
        if line and not line.startswith("   "):
            break
        block.append(line)
    return "\n".join(block)


def test_offline_daemon_shares_the_emulators_loopback() -> None:
    """The emulator refuses a non-loopback --host and its TLS certificate names 127.0.0.1: the compose
    file started it with --host 0.0.0.0 (exit 2), and a second container could not have reached it."""
    text = (ROOT / "docker-compose.yml").read_text()
    emulator, offline = _service(text, "emulator"), _service(text, "fundbot-offline")
    assert "--host" not in emulator
    assert 'network_mode: "service:emulator"' in offline
    assert "fundbot-offline-data:/data" in offline and "fundbot-offline-data:/data" in emulator
    assert "fundbot-data:/data" in _service(text, "fundbot"), "the online daemon keeps its own ledger"


def test_a_restarted_offline_stack_carries_on() -> None:
    """A restarted emulator replayed from its start again (the paper account was then in the market's
    future), an earlier run's emulator.json passed the healthcheck, and an explicit depends_on next to
    network_mode hangs `docker compose restart`."""
    text = (ROOT / "docker-compose.yml").read_text()
    emulator, offline = _service(text, "emulator"), _service(text, "fundbot-offline")
    assert '"--clock-file", "/data/emulator-clock.json"' in emulator
    assert "socket.create_connection(('127.0.0.1', c['http_port'])" in emulator  # the file's port answers
    assert "    depends_on:" not in offline and '"--dry-run", "--connection-file", "/data/emulator.json"' in offline
    for name in ("fundbot", "emulator", "fundbot-offline", "postgres"):
        assert "restart: unless-stopped" in _service(text, name), name


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (v1) validates the file")
def test_compose_file_validates(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    for args in (["config", "-q"], ["--profile", "offline", "config", "-q"], ["--profile", "postgres", "config", "-q"]):
        out = subprocess.run(["docker-compose", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
