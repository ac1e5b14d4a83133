"""Reproducible installs: the lock pins every dependency and fits pyproject.toml; the daemon needs no
backtest extra; the README's commands and the image install with the lock."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            out[canonicalize_name(name)] = version.strip()
    return out


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith("fundbot")]
    return reqs


def test_the_lock_satisfies_every_requirement_of_pyproject() -> None:
    """An edit of pyproject.toml that the lock no longer fits means: run scripts/lock."""
    locked = pins()
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in constraints.txt: run scripts/lock"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={locked[name]}, outside {req}: run scripts/lock"
        )


def test_every_installed_dependency_is_pinned() -> None:
    """Nothing the project pulls in (directly or through another package) floats."""
    locked = pins()
    todo = [Requirement(f"fundbot[{','.join(metadata.metadata('fundbot').get_all('Provides-Extra') or [])}]")]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python (its marker is false here)
        if name != "fundbot":
            assert name in locked, f"{req.name} (installed {dist.version}) is not in constraints.txt: run scripts/lock"
        for text in dist.requires or []:
            sub = Requirement(text)  # wanted when its marker holds here, for no extra or one asked for
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *req.extras}):
                todo.append(sub)


@pytest.mark.slow
def test_the_daemon_and_the_emulator_run_without_the_backtest_extra() -> None:
    """`pip install fundbot` (no extras) must run `fundbot run`, `emulator` and `demo`; only `backtest`
    needs matplotlib, and says so before it starts instead of failing at its plots."""
    blocked = "import sys; sys.modules['matplotlib'] = None\n"
    imports = (
        "import bot.cli as c; c._register_all()\n"
        "import bot.engine.daemon, bot.engine.demo, bot.venues.paper_venue, bot.emulator.server\n"
        "assert 'matplotlib' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    out = subprocess.run([sys.executable, "-c", blocked + imports], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    run = blocked + "sys.argv = ['fundbot', 'backtest', '--no-baselines']\nfrom bot.cli import main; main()\n"
    out = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "pip install 'fundbot[backtest]'" in " ".join(out.stderr.split())


def test_the_readme_commands_and_the_image_install_with_the_lock() -> None:
    readme = (ROOT / "README.md").read_text()
    for marker in ("main-command", "test-command"):
        block = readme.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
        commands = [line for line in block.splitlines() if line.strip() and not line.startswith("```")]
        assert len(commands) == 1 and "pip install -c constraints.txt -e " in commands[0], commands
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install -c constraints\.txt \.\s", dockerfile), "the image installs the daemon only"
    assert "constraints.txt" in re.search(r"COPY .*constraints\.txt", dockerfile).group(0)
