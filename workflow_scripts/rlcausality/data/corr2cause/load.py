"""Load Corr2Cause in the published format (``input``, ``label``) from the Hugging Face hub
or from CSV/JSONL files, validate it, and parse every row into the generator's schema."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rlcausality.data.corr2cause.text import ParseError, parse_input, split_input
from rlcausality.io import DataError, read_jsonl_numbered

Row = dict[str, Any]
DEFAULT_HUB_ID = "causalnlp/corr2cause"
DEFAULT_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
REQUIRED_COLUMNS = ("input", "label")


def class_id_of(premise: str) -> str:
    """The class id of published data, which has none: items of one class share the premise."""
    return "p" + hashlib.sha256(premise.encode("utf-8")).hexdigest()[:16]


def premise_class_id(input_text: str) -> str | None:
    """``class_id_of`` the premise of a model input, or None if it is not ``Premise: ...
    Hypothesis: ...``."""
    try:
        premise, _ = split_input(input_text)
    except ParseError:
        return None
    return class_id_of(premise)


def parse_label(value: Any) -> int:
    """0/1 as int, integral float or string; anything else raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"label must be 0 or 1, got {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if value in ("0", "1"):
            return int(value)
    elif isinstance(value, int | float) and value in (0, 1):
        return int(value)
    raise ValueError(f"label must be 0 or 1, got {value!r}")


def convert_row(raw: Mapping[str, Any], where: str, row_id: str) -> Row:
    """One published-format row -> the common schema; errors name ``where`` (file:line)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in raw or raw[c] is None]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; expected 'input' and 'label'")
    if not isinstance(raw["input"], str):
        raise DataError(f"{where}: 'input' must be a string, got {type(raw['input']).__name__}")
    try:
        label = parse_label(raw["label"])
        parsed = parse_input(raw["input"])
    except (ValueError, ParseError) as err:
        raise DataError(f"{where}: {err}") from None
    return {
        "id": str(raw.get("id") or row_id),
        "input": raw["input"],
        "label": label,
        "premise": parsed.premise_text,
        "hypothesis": parsed.hypothesis_text,
        "relation": parsed.relation,
        "num_variables": parsed.num_variables,
        "class_id": class_id_of(parsed.premise_text),
    }


# ---------------------------------------------------------------------------
# raw readers with line numbers
# ---------------------------------------------------------------------------


# utf-8-sig: files saved by Excel and other Windows tools start with a byte-order mark, which
# plain utf-8 would glue to the first column's name.
def _read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    return read_jsonl_numbered(path, encoding="utf-8-sig")


def _read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        start = 1
        header: list[str] | None = None
        try:
            for record in reader:
                lineno, start = start, reader.line_num + 1
                if not record:
                    continue
                if header is None:
                    header = record
                    missing = [c for c in REQUIRED_COLUMNS if c not in header]
                    if missing:
                        raise DataError(
                            f"{path}:{lineno}: header lacks column(s) {missing}; expected a "
                            f"header with 'input' and 'label'"
                        )
                    continue
                if len(record) != len(header):
                    raise DataError(
                        f"{path}:{lineno}: {len(record)} fields, expected {len(header)} "
                        f"({', '.join(header)})"
                    )
                yield lineno, dict(zip(header, record, strict=True))
        except csv.Error as err:
            raise DataError(f"{path}:{start}: malformed CSV ({err})") from None
    if header is None:
        raise DataError(f"{path}:1: empty file; expected a header with 'input' and 'label'")


def read_published(path: str | os.PathLike[str]) -> list[tuple[int, Row]]:
    """(line, raw row) pairs from a ``.csv`` or ``.jsonl`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return list(_read_csv(path))
    if suffix in (".jsonl", ".json"):
        return list(_read_jsonl(path))
    raise DataError(f"{path}: unknown format {suffix!r}; expected .csv or .jsonl")


# ---------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------


def load_file_split(path: str | os.PathLike[str], split: str) -> list[Row]:
    raw = read_published(path)
    if not raw:
        raise DataError(f"{path}:1: split {split!r} is empty; expected at least one row")
    return [
        convert_row(row, f"{path}:{lineno}", f"{split}-{k:06d}")
        for k, (lineno, row) in enumerate(raw)
    ]


def rows_from_dataset(dataset: Iterable[Mapping[str, Any]], source: str, split: str) -> list[Row]:
    """Convert a ``datasets.Dataset`` (or any iterable of rows) in the published format.
    Errors name ``source`` and the 1-based row number."""
    rows = [
        convert_row(raw, f"{source}:{k + 1}", f"{split}-{k:06d}") for k, raw in enumerate(dataset)
    ]
    if not rows:
        raise DataError(f"{source}:1: split {split!r} is empty; expected at least one row")
    return rows


def load_hub(hub: Mapping[str, Any]) -> dict[str, list[Row]]:
    import datasets  # heavy import, only for this source

    repo = hub.get("id") or DEFAULT_HUB_ID
    revision = hub.get("revision")
    splits = dict(hub.get("splits") or DEFAULT_SPLITS)
    out = {}
    for name, hub_split in splits.items():
        dataset = datasets.load_dataset(repo, split=hub_split, revision=revision)
        out[name] = rows_from_dataset(
            dataset, f"hub:{repo}@{revision or 'main'}[{hub_split}]", name
        )
    return out


def load_files(files: Mapping[str, str]) -> dict[str, list[Row]]:
    if not files:
        raise DataError("settings.file: no split files given; expected {split: path}")
    return {split: load_file_split(path, split) for split, path in files.items()}


def load_corpus(settings: Mapping[str, Any]) -> dict[str, list[Row]]:
    """``config["data"]["load"]``-style settings -> {split: rows}."""
    source = settings.get("source", "hub")
    if source == "hub":
        return load_hub(settings.get("hub") or {})
    if source == "file":
        return load_files(settings.get("file") or {})
    raise ValueError(f"source must be 'hub' or 'file', got {source!r}")
