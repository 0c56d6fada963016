"""The project's own checks: ruff, snakefmt and Snakemake's linter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_check_and_format() -> None:
    paths = ["workflow_scripts", "tests", "benchmarks"]
    check = _run(str(BIN / "ruff"), "check", *paths)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", *paths)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_snakefmt() -> None:
    proc = _run(str(BIN / "snakefmt"), "--check", "Snakefile", "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


PACKAGE = REPO / "workflow_scripts" / "rlcausality"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _project_imports(tree: ast.Module, modules: dict[str, Path]) -> list[tuple[ast.AST, str]]:
    """(node, imported module) for every import of a project module in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlcausality"):
            if node.module in modules:  # ``from pkg import mod`` runs pkg/__init__.py first
                found.append((node, node.module))
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    found.append((node, full))
        elif isinstance(node, ast.Import):
            found += [(node, a.name) for a in node.names if a.name.startswith("rlcausality")]
    return found


def test_the_package_imports_form_no_circle() -> None:
    """The import graph of the package has no circle, and no project import hides in a function
    (where it would dodge one)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    hidden = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"))
        top = {id(node) for node in tree.body}
        graph[name] = set()
        for node, imported in _project_imports(tree, modules):
            graph[name].add(imported)
            if id(node) not in top:
                hidden.append(f"{name}: {imported}")
    assert not hidden, hidden
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for imported in sorted(graph.get(name, ())):
            if state.get(imported) == 1:
                circles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, circles
    assert len(graph) > 60  # the walk saw the package
