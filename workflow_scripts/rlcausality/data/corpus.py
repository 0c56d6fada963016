"""Corr2Cause data CLI: ``python -m rlcausality.data.corpus {generate,load,audit} ...``.

Bad input data (rlcausality.io.DataError) ends with a one-line message on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from rlcausality.data.corr2cause.audit import audit_file, format_summary
from rlcausality.data.corr2cause.generate import (
    corpus_stats,
    generate_corpus,
    parse_settings,
    write_corpus,
)
from rlcausality.data.corr2cause.load import load_corpus
from rlcausality.io import DataError
from rlcausality.provenance import provenance
from rlcausality.settings import cli


def _cmd_generate(args: argparse.Namespace) -> None:
    settings = parse_settings(args.settings)
    corpus = generate_corpus(settings)
    stats = {"splits": corpus_stats(corpus), "settings": args.settings}
    stats["provenance"] = provenance(args.settings)
    write_corpus(corpus, args.outdir, stats)
    print(json.dumps({split: len(rows) for split, rows in corpus.items()}))


def _cmd_load(args: argparse.Namespace) -> None:
    corpus = load_corpus(args.settings)
    stats = {"splits": corpus_stats(corpus), "settings": args.settings}
    stats["provenance"] = provenance(args.settings)
    write_corpus(corpus, args.outdir, stats)
    print(json.dumps({split: len(rows) for split, rows in corpus.items()}))


def _cmd_audit(args: argparse.Namespace) -> None:
    print(format_summary(audit_file(args.file, args.out)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlcausality.data.corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate the Corr2Cause corpus")
    gen.add_argument("--settings", type=cli.json_object, default={}, help="JSON object")
    gen.add_argument("--outdir", required=True)
    gen.set_defaults(func=_cmd_generate)
    load = sub.add_parser("load", help="load Corr2Cause from the hub or files")
    load.add_argument("--settings", type=cli.json_object, required=True, help="JSON object")
    load.add_argument("--outdir", required=True)
    load.set_defaults(func=_cmd_load)
    audit = sub.add_parser("audit", help="recompute every label of a published-format file")
    audit.add_argument("file")
    audit.add_argument("--out", required=True, help="OUT.jsonl; summary goes to OUT.summary.json")
    audit.set_defaults(func=_cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # bad settings
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    cli.entry(main)
