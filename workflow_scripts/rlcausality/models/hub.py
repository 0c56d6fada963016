"""Hub models for compute nodes without internet: one download, at one commit, read offline.

The ``hub_model`` rule (a local rule: it runs where Snakemake runs, e.g. on the login node)
calls ``snapshot_download`` once per model. The configured ``revision`` (``null`` means the
branch ``main``) is resolved to a commit there, once; the manifest, written last, records that
commit and the snapshot folder (``{cache_dir}/models--ORG--NAME/snapshots/{commit}``). Every
later job of the model loads that folder (``pin``), with the hub switched off, so what ``main``
points to later cannot change the model between jobs, and the commit is in each job's settings
(and so in every training manifest and metrics file).

CLI::

    python -m rlcausality.models.hub --settings '{"model": {...}, "hub": {...}}' \\
        --manifest results/models/{name}/hub/manifest.json
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from pathlib import Path
from typing import Any

from rlcausality.io import read_json, write_json
from rlcausality.provenance import provenance
from rlcausality.settings import cli

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def manifest_path(name: str) -> str:
    return f"results/models/{name}/hub/manifest.json"


def _workdir_relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (results/… like every
    other path the workflow records), else absolute."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def check_snapshot(repo: str, commit: str, files: list[str], patterns: list[str]) -> None:
    """A loadable snapshot has a config.json and weights; say which pattern is missing if not."""
    problems = []
    if "config.json" not in files:
        problems.append("no config.json")
    if not any(fnmatch.fnmatch(f, p) for f in files for p in WEIGHT_PATTERNS):
        problems.append("no weights (" + ", ".join(WEIGHT_PATTERNS) + ")")
    if problems:
        raise RuntimeError(
            f"hub model {repo}@{commit}: the snapshot has {' and '.join(problems)}; "
            f"hub.allow_patterns {patterns} must match them (or the repository lacks them)"
        )


def download(model: dict[str, Any], hub: dict[str, Any]) -> dict[str, Any]:
    """Download (or find in the cache) the model's snapshot; the manifest that describes it."""
    from huggingface_hub import snapshot_download

    patterns = list(hub["allow_patterns"])
    snapshot = Path(
        snapshot_download(
            model["id"],
            revision=model.get("revision"),
            cache_dir=hub["cache_dir"],
            allow_patterns=patterns,
        )
    )
    commit = snapshot.name  # snapshots/{commit}: the revision resolved
    files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    check_snapshot(model["id"], commit, files, patterns)
    return {
        "model": model.get("name"),
        "id": model["id"],
        "requested_revision": model.get("revision"),
        "commit": commit,
        "snapshot": _workdir_relative(snapshot),
        "cache_dir": hub["cache_dir"],
        "allow_patterns": patterns,
        "files": {f: (snapshot / f).stat().st_size for f in files},
        "provenance": provenance({"model": model, "hub": hub}),
    }


def pin(model: dict[str, Any], manifest: dict[str, Any], manifest_file: str) -> dict[str, Any]:
    """The model block loading the downloaded snapshot: ``path`` is the snapshot folder,
    ``revision`` the commit, and ``hub`` says where both came from."""
    return {
        **model,
        "path": manifest["snapshot"],
        "revision": manifest["commit"],
        "hub": {
            "id": manifest["id"],
            "requested_revision": manifest["requested_revision"],
            "commit": manifest["commit"],
            "manifest": manifest_file,
        },
    }


def pinned(model: dict[str, Any], manifest_file: str) -> dict[str, Any]:
    """``pin`` from the manifest once it exists (a job's input: at run time it does); before
    the download, the block as configured."""
    if not os.path.isfile(manifest_file):
        return model
    return pin(model, read_json(manifest_file), manifest_file)


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__, "JSON with 'model' and 'hub' blocks")
    parser.add_argument("--manifest", required=True, help="written last")
    args = parser.parse_args(argv)  # no model work here: threads are not applied
    settings = args.settings
    try:
        manifest = download(settings["model"], settings["hub"])
    except Exception as err:  # one line naming the model, not a traceback through httpx
        print(f"error: {settings['model'].get('id')}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    write_json(args.manifest, manifest)
    print(json.dumps({k: manifest[k] for k in ("id", "requested_revision", "commit", "snapshot")}))
    return 0


if __name__ == "__main__":
    cli.entry(main)
