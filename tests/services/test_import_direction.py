"""The layering of bot/services and bot/ops, read from the source with ``ast``: runtime producers
(bot/services) never import the read-only views and operator commands (bot/ops), and the helpers both share
(bot/format.py, bot/ledger/reads.py) import neither. Every import counts: module level, inside functions and
under ``if TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` (a file of ``package``, dotted) imports, relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from bot import ops`
    return found


def _package(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in files:
        for imported in sorted(imported_modules(path.read_text(), _package(path))):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {imported}")
    return out


def test_runtime_services_never_import_the_views() -> None:
    files = sorted((ROOT / "bot" / "services").rglob("*.py"))
    assert len(files) >= 5  # __init__, alerts, health, metrics, notify: the walk found the package
    assert _violations(files, ("bot.ops",)) == []


def test_the_shared_helpers_import_neither_layer() -> None:
    files = [ROOT / "bot" / "format.py", ROOT / "bot" / "ledger" / "reads.py"]
    assert _violations(files, ("bot.ops", "bot.services")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from bot.ops.api import ApiService",
        "import bot.ops.report",
        "from bot import ops",
        "from ..ops import views",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.ops.api import ApiService",
        "def f():\n    from bot.ops.status import collect_status\n    return collect_status",
    ],
)
def test_every_kind_of_import_of_a_view_is_caught(source: str) -> None:
    """The check above would pass vacuously if it missed a spelling; each of these must be reported."""
    names = imported_modules(source, "bot.services")
    assert any(n == "bot.ops" or n.startswith("bot.ops.") for n in names), names


def test_a_service_importing_a_service_is_allowed() -> None:
    names = imported_modules("from .health import HealthState\nimport bot.format", "bot.services")
    assert names == {"bot.services.health", "bot.services.health.HealthState", "bot.format"}
