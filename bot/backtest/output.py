"""``--out`` is written whole or not at all: a run writes into a hidden staging folder beside it and
moves its files in only once everything (ledger, baselines, report) is written. A run stopped by bad
data, an error or Ctrl-C leaves ``--out`` as it was (and no staging folder)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def staged_out(out_dir: Path, stale: Sequence[str] = ()) -> Iterator[Path]:
    """Yield the staging folder; on success its entries replace their namesakes in ``out_dir`` (and the
    ``stale`` entries an earlier run left there go, so they cannot pass for this run's)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if not out_dir.exists():
        stage.rename(out_dir)
        return
    for name in stale:
        _remove(out_dir / name)
    for entry in sorted(stage.iterdir()):
        _remove(out_dir / entry.name)
        entry.rename(out_dir / entry.name)
    stage.rmdir()
