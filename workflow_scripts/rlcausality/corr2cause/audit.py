"""Audit a published-format Corr2Cause file: recompute every label from the text alone."""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from rlcausality.corr2cause import graphs, symbolic
from rlcausality.corr2cause.load import parse_label, read_published
from rlcausality.corr2cause.text import ParseError, parse_input
from rlcausality.io import DataError, atomic_open


def summary_path(out: str | os.PathLike[str]) -> Path:
    """``audit.jsonl`` -> ``audit.summary.json``."""
    return Path(out).with_suffix(".summary.json")


def audit_rows(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows with ``exact_label`` and ``premise_consistent`` added, and a summary."""
    raw_rows = read_published(path)
    if not raw_rows:
        raise DataError(f"{path}:1: no rows; expected at least one row with 'input' and 'label'")
    out: list[dict[str, Any]] = []
    tally: dict[str, dict[str, dict[str, int]]] = {
        "by_relation": defaultdict(lambda: defaultdict(int)),
        "by_num_variables": defaultdict(lambda: defaultdict(int)),
    }
    disagreeing: list[int] = []
    inconsistent: list[int] = []
    for lineno, raw in raw_rows:
        where = f"{path}:{lineno}"
        missing = [c for c in ("input", "label") if c not in raw or raw[c] is None]
        if missing:
            raise DataError(f"{where}: missing column(s) {missing}; expected 'input' and 'label'")
        try:
            given = parse_label(raw["label"])
            if not isinstance(raw["input"], str):
                raise ParseError("'input' must be a string")
            parsed = parse_input(raw["input"])
        except (ValueError, ParseError) as err:
            raise DataError(f"{where}: {err}") from None
        table = symbolic.premise_relations(parsed.premise)
        hyp = parsed.hypothesis
        exact = None
        if table is not None:
            exact = int(table[graphs.RELATIONS.index(hyp.relation), hyp.x, hyp.y])
        row = {
            **raw,
            "line": lineno,
            "relation": hyp.relation,
            "num_variables": parsed.num_variables,
            "exact_label": exact,
            "premise_consistent": table is not None,
            "agrees": exact == given if exact is not None else None,
        }
        out.append(row)
        for key, value in (
            ("by_relation", hyp.relation),
            ("by_num_variables", str(parsed.num_variables)),
        ):
            bucket = tally[key][value]
            bucket["rows"] += 1
            bucket["inconsistent"] += exact is None
            bucket["disagreements"] += exact is not None and exact != given
        if exact is None:
            inconsistent.append(lineno)
        elif exact != given:
            disagreeing.append(lineno)
    summary = {
        "file": str(path),
        "rows": len(out),
        "consistent_rows": len(out) - len(inconsistent),
        "inconsistent_rows": len(inconsistent),
        "disagreements": len(disagreeing),
        "by_relation": {k: dict(v) for k, v in sorted(tally["by_relation"].items())},
        "by_num_variables": {k: dict(v) for k, v in sorted(tally["by_num_variables"].items())},
        "disagreeing_lines": disagreeing,
        "inconsistent_lines": inconsistent,
    }
    return out, summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['file']}: {summary['rows']} rows, {summary['disagreements']} label(s) "
        f"disagree with the exact label, {summary['inconsistent_rows']} row(s) with an "
        f"inconsistent premise"
    ]
    for key in ("by_relation", "by_num_variables"):
        for value, c in summary[key].items():
            lines.append(
                f"  {key.removeprefix('by_')}={value}: {c['disagreements']}/{c['rows']} disagree, "
                f"{c['inconsistent']} inconsistent"
            )
    return "\n".join(lines)


def audit_file(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the audited rows to ``out`` and the summary next to it; both or neither."""
    rows, summary = audit_rows(path)
    summary["output"] = str(out)
    with contextlib.ExitStack() as stack:
        rows_handle = stack.enter_context(atomic_open(out))
        summary_handle = stack.enter_context(atomic_open(summary_path(out)))
        rows_handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        summary_handle.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
