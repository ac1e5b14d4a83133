"""Rename a class (or any top-level name) defined in one module, everywhere it is imported from there.

    python3 scripts/rename_symbol.py bot.venues.base Fill VenueFill

Mechanical and replayable: the files touched are the defining module, every module that imports the name
from it (or from a package that re-exports it), and nothing else, so a same-named class of another module
is left alone. Only Python name tokens change, plus the name as a whole string (``__all__``) and in
double backticks, alone or dotted after its module (docstrings); prose that happens to use the word is
untouched. A file that imports the same name from two modules is refused (rename it by hand). Prints
each file it rewrote; run ``ruff check --fix --select I`` and ``ruff format`` on them after.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOTS = ("bot", "strategies", "tests", "benchmarks", "scripts")


def module_of(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] == "tests":  # tests import their helpers as top-level packages (rootdir on sys.path)
        return ".".join(parts[1:])
    return ".".join(parts)


def imports_of(tree: ast.AST, name: str) -> set[str]:
    """Modules this file imports ``name`` from (absolute imports)."""
    return {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0 and any(a.name == name for a in n.names)
    }


def rewrite(source: str, module: str, old: str, new: str) -> str:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        text = tok.string
        if tok.type == tokenize.NAME and text == old:
            text = new
        elif tok.type == tokenize.STRING and text in (f'"{old}"', f"'{old}'"):
            text = text.replace(old, new)
        elif tok.type in (tokenize.STRING, tokenize.COMMENT):
            text = text.replace(f"``{old}``", f"``{new}``").replace(f"{module}.{old}``", f"{module}.{new}``")
        out.append(tok._replace(string=text))
    return tokenize.untokenize(out)


def main(module: str, old: str, new: str) -> int:
    files = sorted(p for root in ROOTS if Path(root).is_dir() for p in Path(root).rglob("*.py"))
    trees = {p: ast.parse(p.read_text(), str(p)) for p in files}
    defining = [p for p in files if module_of(p) == module]
    if not defining:
        sys.exit(f"no module {module} under {', '.join(ROOTS)}")
    sources = {module}
    targets = set(defining)
    changed = True
    while changed:  # follow re-exports (a package __init__ importing the name)
        changed = False
        for p, tree in trees.items():
            if p not in targets and imports_of(tree, old) & sources:
                targets.add(p)
                if p.name == "__init__.py":
                    sources.add(module_of(p))
                changed = True
    for p in sorted(targets):
        others = imports_of(trees[p], old) - sources
        if others:
            sys.exit(f"{p} imports {old} from {module} and from {', '.join(sorted(others))}: rename by hand")
    for p in sorted(targets):
        text = p.read_text()
        new_text = rewrite(text, module, old, new)
        if new_text != text:
            p.write_text(new_text)
            print(p)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
