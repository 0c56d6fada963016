"""Audit a published-format Corr2Cause file: recompute every label from the text alone."""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcausality.data.corr2cause import symbolic
from rlcausality.data.corr2cause.load import parse_label, read_published
from rlcausality.data.corr2cause.text import ParsedInput, ParseError, parse_input
from rlcausality.io import DataError, atomic_open


def summary_path(out: str | os.PathLike[str]) -> Path:
    """``audit.jsonl`` -> ``audit.summary.json``."""
    return Path(out).with_suffix(".summary.json")


def _counts() -> defaultdict[str, defaultdict[str, int]]:
    return defaultdict(lambda: defaultdict(int))


@dataclass
class _Tally:
    """Rows, inconsistent premises and disagreeing labels, by relation and by variable count."""

    by_relation: defaultdict[str, defaultdict[str, int]] = field(default_factory=_counts)
    by_num_variables: defaultdict[str, defaultdict[str, int]] = field(default_factory=_counts)
    disagreeing: list[int] = field(default_factory=list)  # file lines
    inconsistent: list[int] = field(default_factory=list)

    def add(self, lineno: int, parsed: ParsedInput, exact: int | None, given: int) -> None:
        for counts, value in (
            (self.by_relation, parsed.hypothesis.relation),
            (self.by_num_variables, str(parsed.num_variables)),
        ):
            bucket = counts[value]
            bucket["rows"] += 1
            bucket["inconsistent"] += exact is None
            bucket["disagreements"] += exact is not None and exact != given
        if exact is None:
            self.inconsistent.append(lineno)
        elif exact != given:
            self.disagreeing.append(lineno)

    def summary(self, path: str | os.PathLike[str], rows: int) -> dict[str, Any]:
        return {
            "file": str(path),
            "rows": rows,
            "consistent_rows": rows - len(self.inconsistent),
            "inconsistent_rows": len(self.inconsistent),
            "disagreements": len(self.disagreeing),
            "by_relation": {k: dict(v) for k, v in sorted(self.by_relation.items())},
            "by_num_variables": {k: dict(v) for k, v in sorted(self.by_num_variables.items())},
            "disagreeing_lines": self.disagreeing,
            "inconsistent_lines": self.inconsistent,
        }


def _parsed_row(where: str, raw: dict[str, Any]) -> tuple[int, ParsedInput]:
    """The row's given label and parsed input; a DataError naming ``where`` if either is bad."""
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
    return given, parsed


def audit_rows(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows with ``exact_label`` and ``premise_consistent`` added, and a summary."""
    raw_rows = read_published(path)
    if not raw_rows:
        raise DataError(f"{path}:1: no rows; expected at least one row with 'input' and 'label'")
    out: list[dict[str, Any]] = []
    tally = _Tally()
    for lineno, raw in raw_rows:
        given, parsed = _parsed_row(f"{path}:{lineno}", raw)
        exact = symbolic.exact_label(parsed)
        out.append(
            {
                **raw,
                "line": lineno,
                "relation": parsed.hypothesis.relation,
                "num_variables": parsed.num_variables,
                "exact_label": exact,
                "premise_consistent": exact is not None,
                "agrees": exact == given if exact is not None else None,
            }
        )
        tally.add(lineno, parsed, exact, given)
    return out, tally.summary(path, len(out))


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
