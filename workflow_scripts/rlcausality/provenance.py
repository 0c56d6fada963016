"""What made a result: package versions, git commit, hashes. Goes into every manifest and metric."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from typing import Any

PACKAGES = (
    "rlcausality",
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "accelerate",
    "bitsandbytes",
    "deepspeed",
    "vllm",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_commit(cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def settings_hash(settings: Any) -> str:
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def model_source(settings: Any) -> dict[str, Any] | None:
    """Which base model the settings load: hub id, revision and the path it loads from; for a
    downloaded hub model (``hub``) the revision asked for and the commit it resolved to."""
    model = settings.get("model") if isinstance(settings, dict) else None
    if not isinstance(model, dict):
        return None
    return {key: model.get(key) for key in ("id", "revision", "path", "hub")}


def provenance(settings: Any = None) -> dict[str, Any]:
    """A dict to embed in manifests and metrics."""
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "git_commit": git_commit(os.getcwd()),
        "settings_hash": settings_hash(settings) if settings is not None else None,
        "model_source": model_source(settings),
        "host": platform.node(),
    }
