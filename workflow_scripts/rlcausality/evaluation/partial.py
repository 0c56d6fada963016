"""Predictions saved chunk by chunk while an evaluation runs, so a killed job resumes.

The partial file is not a declared output (Snakemake deletes those when a job fails). It is
JSON Lines: a header ``{"partial": "predictions", "fingerprint": …, "items": N}``, then one
prediction per line, in the order they were generated (``generation.generate_transformers``
orders every item once, resumed ones too), appended one chunk of whole batches at a time (a
single write, flushed and fsynced). A SIGKILL during a write leaves at worst a torn tail: ``resume``
keeps the complete lines before it, rounded down to whole batches (so the rest is generated in
the same batches as an uninterrupted run), and rewrites the file without the tail. A header
whose fingerprint differs (other settings, items, data or model) means the file belongs to
another run: it is discarded and the run starts afresh. The chunk size is not in the
fingerprint: it decides when predictions are saved, not what they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.io import write_text
from rlcausality.settings.blocks import Settings, deciding


def fingerprint(settings: Settings, ids: Sequence[Any], **context: Any) -> str:
    """Hash of what decides the predictions: settings (less ``settings.OPERATIONAL_KEYS``), item
    ids in order, data and model hashes."""
    payload = {"settings": deciding(settings.to_dict()), "ids": list(ids), **context}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _lines(records: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


class PartialPredictions:
    """The partial predictions of one evaluation: resumed, appended to, removed at the end."""

    def __init__(self, path: str | os.PathLike[str], key: str, ids: Sequence[Any], batch_size: int):
        self.path = Path(path)
        self.ids = list(ids)
        self.batch_size = max(1, int(batch_size))
        self.header = {"partial": "predictions", "fingerprint": key, "items": len(self.ids)}

    def _read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The header and the complete prediction lines of known, not yet seen items (a torn
        tail, or anything after a line that is not one, is dropped)."""
        header, records = None, []
        known, seen = set(self.ids), set()
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    break
                if number == 0:
                    header = value if isinstance(value, dict) else None
                    continue
                item = value.get("id") if isinstance(value, dict) else None
                if item not in known or item in seen:
                    break
                seen.add(item)
                records.append(value)
        return header, records

    def resume(self) -> tuple[list[dict[str, Any]], str]:
        """The predictions already made (whole chunks) and a line saying what was found."""
        if not self.path.exists():
            self._write([])
            return [], f"resume: no partial predictions at {self.path}; starting at item 0"
        header, records = self._read()
        if header is None or header.get("fingerprint") != self.header["fingerprint"]:
            self._write([])
            return [], (
                f"resume: partial predictions at {self.path} are for other settings, items, "
                "data or model (fingerprint differs): starting afresh"
            )
        keep = len(records)
        if keep < len(self.ids):
            keep -= keep % self.batch_size
        self._write(records[:keep])
        return records[:keep], (
            f"resume: {keep} of {len(self.ids)} items already predicted in {self.path}; "
            f"generating the other {len(self.ids) - keep}"
        )

    def _write(self, records: Sequence[Mapping[str, Any]]) -> None:
        write_text(self.path, _lines([self.header, *records]))

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append one chunk of predictions in one write, on disk before this returns."""
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(_lines(records))
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        """Delete the partial file (and its folder when that is left empty)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()
