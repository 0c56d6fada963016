"""The one shape of every entry point (``python -m rlcausality.X``).

* ``--settings``: a JSON object, inline or as the path of a JSON file (``json_object``), read
  into the job's typed settings (``configure``: ``config.load_settings``); ``--operational``,
  the keys that decide no output (a workflow job's params leave them out), merged over it;
* ``--threads``: CPU threads, set before any work (``configure``);
* a bad input (``DataError``) or configuration (``ConfigError``) ends the process with one line
  on stderr and exit status 2 (``entry``); ``main(argv)`` itself raises, so tests and callers
  see the exception.

Each module then reads: a ``run(...)`` with the work, a thin ``main(argv)`` that parses the
arguments and calls it, and ``if __name__ == "__main__": entry(main)``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rlcausality import launch
from rlcausality.io import DataError
from rlcausality.settings.config import ConfigError, deep_merge, load_settings


def json_object(text: str) -> dict[str, Any]:
    """``--settings``: a JSON object given inline, or the path of a file holding one."""
    source = "--settings"
    path = Path(text)
    if not text.lstrip().startswith(("{", "[", "null")) and path.is_file():
        source, text = str(path), path.read_text("utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"{source} is not valid JSON ({err.msg}) nor the path of a JSON file"
        ) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{source} must be a JSON object")
    return value


def parser(doc: str | None, settings_help: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the shared arguments (``--settings`` when its help is given)."""
    description = (doc or "").strip().split("\n\n")[0]
    made = argparse.ArgumentParser(description=description)
    if settings_help is not None:
        made.add_argument("--settings", type=json_object, required=True, help=settings_help)
        made.add_argument(
            "--operational",
            type=json_object,
            default=None,
            help="JSON: the settings that decide no output (settings.OPERATIONAL_KEYS: how "
            "often to log, save or report), merged over --settings",
        )
    made.add_argument("--threads", type=int, default=None, help="CPU threads")
    return made


def configure(
    args: argparse.Namespace, needs: Iterable[str] = (), typed: bool = True
) -> argparse.Namespace:
    """Load the settings and set threads; returns ``args``.

    ``args.settings`` becomes the job's typed settings (``config.load_settings``, which checks
    that the sections the job ``needs`` are there), or with ``typed=False`` the dict as given
    (the base-model builders, whose model block is their source's, not a stage's).
    """
    if isinstance(getattr(args, "settings", None), dict):
        if getattr(args, "operational", None):
            args.settings = deep_merge(args.settings, args.operational)
        if typed:
            args.settings = load_settings(args.settings, needs=needs)
    if not hasattr(args, "threads"):
        return args
    if args.threads:
        os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # tokenizers' pool
    launch.configure_threads(args.threads)  # torch is imported only when threads are set
    return args


def entry(main: Callable[[], Any]) -> None:
    """Run ``main`` as a process: bad data or config is one line on stderr and exit 2."""
    try:
        code = main()
    except (DataError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
