"""What Snakemake recorded of earlier jobs: which files on disk were made from which inputs.

Snakemake reruns a job whose output is missing only when a job downstream has to run. So when a
job fails after a change (Snakemake deletes its outputs) or its output is deleted, the files an
earlier run made from that output stay "up to date", and the next run does nothing: a report
shows the results of a model that no longer exists, trained with settings that are no longer
configured. The workflow looks up such files here before it lists a missing input and stops
with the command that rebuilds it and all that was made from it (``rules/common.smk``,
``made``).

The records are Snakemake's own (``.snakemake/metadata``, one JSON file per output, named by the
output path in URL-safe base64, split into folders of ``@``-prefixed parts when long).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections import defaultdict
from pathlib import Path

METADATA = Path(".snakemake/metadata")


def record_path(record: Path, root: Path) -> str | None:
    """The output path a metadata record is named for, or None for a file that is not one."""
    parts = record.relative_to(root).parts
    encoded = "".join(part.removeprefix("@") for part in parts)
    try:
        return base64.urlsafe_b64decode(encoded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def outputs_by_input(root: Path = METADATA) -> dict[str, list[str]]:
    """Every recorded output under the inputs its job read, as Snakemake recorded them."""
    made: dict[str, list[str]] = defaultdict(list)
    if not root.is_dir():
        return made
    for folder, _, files in os.walk(root):
        for name in files:
            record = Path(folder, name)
            output = record_path(record, root)
            if output is None:
                continue
            try:
                inputs = json.loads(record.read_text("utf-8")).get("input") or []
            except (OSError, ValueError, AttributeError):
                continue
            for path in inputs:
                made[path].append(output)
    return made


def made_from(path: str, index: dict[str, list[str]]) -> list[str]:
    """The files still on disk that an earlier job made from ``path``, sorted."""
    return sorted(output for output in index.get(path, ()) if os.path.exists(output))


def stale_message(path: str, outputs: list[str], shown: int = 3) -> str:
    """Why the DAG stops: ``path`` is gone and files made from it would pass as up to date."""
    listed = ", ".join(outputs[:shown])
    more = f" and {len(outputs) - shown} more" if len(outputs) > shown else ""
    return (
        f"{path} is missing (its job failed after a change, or it was deleted), but files an "
        f"earlier run made from it are still here: {listed}{more}. Snakemake would keep them as "
        f"up to date and rebuild nothing. Rerun with --forcerun {path} to rebuild it and "
        "everything made from it."
    )
