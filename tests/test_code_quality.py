"""The tree's code-quality gates, run by the README's test command so CI fails on an unformatted file or a
type error: `ruff format --check` over the repository and mypy over bot/ and strategies/ (pyproject.toml's
[tool.mypy]: strict for strategies/, bot/domain.py and bot/ledger/). Each gate fails with the tool's own
output and the command that reproduces it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from mypy.main import process_options
from mypy.options import Options

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
# the modules held to `mypy --strict` (issue 21); each name is checked against the effective configuration
STRICT_MODULES = (
    "strategies",
    "strategies.forecast",
    "strategies.funding_carry",
    "bot.domain",
    "bot.ledger",
    "bot.ledger.repository",
    "bot.ledger.migrations.versions.0001_initial",
)
OURS = ("bot", "strategies")


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a tool of this venv (`python -m <tool>`) at the repository root."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def test_tree_is_ruff_formatted() -> None:
    done = _run(["ruff", "format", "--check", "."], timeout_s=120)
    if done.returncode != 0:
        pytest.fail(
            "`ruff format --check .` failed; run `.venv/bin/ruff format <files>` and commit:\n"
            + done.stdout
            + done.stderr,
            pytrace=False,
        )


@pytest.mark.slow  # about 40 s from a cold cache (.mypy_cache/, ignored by git), a few seconds warm
def test_mypy_passes() -> None:
    done = _run(["mypy", "--config-file", str(PYPROJECT)], timeout_s=900)
    if done.returncode != 0:
        pytest.fail("`.venv/bin/mypy` (bot/ and strategies/) failed:\n" + done.stdout + done.stderr, pytrace=False)


def _mypy_options(args: list[str]) -> Options:
    """The options mypy itself derives from `args` (its own parser, so the test reads what mypy reads)."""
    return process_options(args)[1]


def test_strict_modules_get_every_flag_of_mypy_strict() -> None:
    """`strict` cannot be set per module, so pyproject spells its flags out: this keeps that list equal to the
    installed mypy's --strict (a mypy upgrade that adds a flag fails here until the flag is added)."""
    bare = _mypy_options(["--config-file", "", "-c", "pass"])
    strict = _mypy_options(["--strict", "--config-file", "", "-c", "pass"])
    flags = [
        name
        for name in dir(strict)
        if not name.startswith("_")
        and not callable(getattr(strict, name))
        and getattr(strict, name) != getattr(bare, name)
    ]
    assert "disallow_untyped_defs" in flags, f"could not read mypy's --strict flags: {flags}"
    ours = _mypy_options(["--config-file", str(PYPROJECT), str(ROOT / "bot" / "domain.py")])
    for module in STRICT_MODULES:
        effective = ours.clone_for_module(module)
        missing = [f for f in flags if getattr(effective, f) != getattr(strict, f)]
        assert not missing, f"{module} is meant to be checked strictly but pyproject's [tool.mypy] misses {missing}"
    loose = ours.clone_for_module("bot.engine.core")
    assert loose.check_untyped_defs, "every module of ours has its function bodies checked"


def test_no_package_of_ours_is_exempt_from_mypy() -> None:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["mypy"]
    assert set(config["files"]) == set(OURS)
    assert not config.get("ignore_errors") and not config.get("ignore_missing_imports")
    for override in config.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        for module in modules:
            if module.split(".")[0] in OURS:
                assert not override.get("ignore_errors"), f"[tool.mypy] override {module}: ignore_errors"
                assert override.get("follow_imports") != "skip", f"[tool.mypy] override {module}: skipped"


_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")
_REASON = re.compile(r"\s*#\s*\S")


def test_every_type_ignore_names_its_error_and_says_why() -> None:
    """A `# type: ignore[code]` says why the checker is wrong there or the fix is not cheap: in a `# ...`
    after it on its line, or in a comment line right above it. (mypy itself rejects a bare `# type: ignore`
    here: enable_error_code = ignore-without-code.)"""
    bad = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                found = _IGNORE.search(line)
                if found is None:
                    continue
                above = lines[i - 1].strip() if i else ""
                if not found["codes"] or not (_REASON.match(found["rest"]) or above.startswith("#")):
                    bad.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    assert not bad, (
        "each `# type: ignore[code]` needs its reason (`  # why` after it, or a comment above):\n" + "\n".join(bad)
    )
