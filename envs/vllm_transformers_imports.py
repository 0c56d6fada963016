"""Which names vLLM's sources import from transformers that the installed transformers lacks.

    pip download --no-deps vllm==0.30.0 -d /tmp/vllm
    unzip -q -o '/tmp/vllm/vllm-0.30.0-*.whl' 'vllm/*.py' -d /tmp/vllm/src
    OMP_NUM_THREADS=1 .venv/bin/python envs/vllm_transformers_imports.py /tmp/vllm/src/vllm

Walks every ``from transformers… import X`` (and ``import transformers.X``) in the sources with
``ast``, imports each in this environment, and prints the ones that fail: a name that is gone,
or a module that cannot load here. A module that needs torchvision (its PyPI build needs CUDA
torch, which a CPU machine lacks) is read instead: its source file must exist and name it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from collections import defaultdict
from pathlib import Path


def transformers_imports(root: Path) -> dict[tuple[str, str | None], set[str]]:
    found: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text("utf-8"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] == "transformers":
                    for alias in node.names:
                        found[(node.module, alias.name)].add(str(path.relative_to(root)))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("transformers."):
                        found[(alias.name, None)].add(str(path.relative_to(root)))
    return found


def failure(module: str, name: str | None) -> str | None:
    try:
        loaded = importlib.import_module(module)
        if name not in (None, "*") and not hasattr(loaded, name):
            importlib.import_module(f"{module}.{name}")  # a submodule
    except Exception as err:  # any failure to import is the finding
        return "needs torchvision" if "torchvision" in repr(err) else type(err).__name__
    return None


def in_sources(module: str, name: str | None) -> bool:
    """Whether ``module``'s source file exists and mentions ``name`` (without importing it)."""
    package = importlib.util.find_spec("transformers")
    base = Path(package.origin).parent.parent
    for path in (
        base / f"{module.replace('.', '/')}.py",
        base / module.replace(".", "/") / "__init__.py",
    ):
        if path.is_file():
            return (
                name is None or re.search(rf"\b{re.escape(name)}\b", path.read_text()) is not None
            )
    return False


def main(root: str) -> None:
    import transformers

    found = transformers_imports(Path(root))
    failed = [(key, failure(*key)) for key in sorted(found, key=lambda k: (k[0], k[1] or ""))]
    failed = [(key, why) for key, why in failed if why]
    unreadable = [key for key, why in failed if why == "needs torchvision"]
    gone = [(key, why) for key, why in failed if why != "needs torchvision"]
    gone += [(key, "not in the sources") for key in unreadable if not in_sources(*key)]
    present = [key for key in unreadable if in_sources(*key)]
    print(f"{len(found)} distinct names imported from transformers in {root}")
    print(f"transformers {transformers.__version__}: {len(gone)} gone; {len(present)} more are "
          "in its sources but load torchvision, not importable here")  # fmt: skip
    for (module, name), why in gone:
        print(f"  {module}.{name} ({why}) in {', '.join(sorted(found[(module, name)]))}")


if __name__ == "__main__":
    main(sys.argv[1])
