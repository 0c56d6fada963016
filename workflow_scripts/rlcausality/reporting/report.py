"""Reports: one HTML page per model and stage, and a summary across everything (HTML + Markdown).

CLI::

    python -m rlcausality.reporting.report stage --metrics M1.json [M2.json ...] \
        [--manifest MANIFEST] [--log-history LOG] [--predictions P1.jsonl ...] \
        --out results/reports/{model}/{stage}.html
    python -m rlcausality.reporting.report summary --metrics M.json ... \
        [--predictions P.jsonl ...] \
        [--baselines B.json ...] [--baseline-predictions BP.jsonl ...] \
        [--log-history LOG ...] [--expected MODEL:STAGE:TESTSET ...] \
        --out-html results/reports/summary.html --out-md results/reports/summary.md \
        --plots-dir results/reports/plots

A log history is named ``MODEL:STAGE=PATH``, or just ``PATH`` when it lies at
``.../{model}/{stage}/log_history.json``. A predictions file belongs to the metrics file in
its folder (``predictions.jsonl`` beside ``metrics.json``), a baselines' predictions file to
the baselines file ``{test_set}.json`` beside it (``{test_set}.predictions.jsonl``); they feed
the summary's paired comparisons and the stage report's right and wrong answers per relation;
a GRPO stage report shows the completions its run facts' ``completions_path`` holds
(``training_run.json``, beside the manifest). The reports
themselves are built in
:mod:`rlcausality.reporting`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rlcausality.io import read_json, write_text
from rlcausality.reporting.cells import (
    Key,
    load_baseline_predictions,
    load_baselines,
    load_metrics,
    load_predictions,
)
from rlcausality.reporting.documents import stage_document, summary_document
from rlcausality.reporting.examples import load_completions
from rlcausality.reporting.paired import comparison_rows
from rlcausality.reporting.render import render_html, render_markdown
from rlcausality.reporting.tidy import metrics_frame, write_tsv
from rlcausality.settings import cli


def parse_log_history_arg(text: str) -> tuple[str, str, Path]:
    """``MODEL:STAGE=PATH`` or a PATH at ``.../{model}/{stage}/log_history.json``."""
    if "=" in text:
        label, path = text.split("=", 1)
        model, _, stage = label.rpartition(":")
        if not model or not stage:
            raise ValueError(f"--log-history {text!r}: write MODEL:STAGE=PATH")
        return model, stage, Path(path)
    path = Path(text)
    return path.parent.parent.name, path.parent.name, path


def parse_expected(items: Sequence[str]) -> list[Key]:
    keys = []
    for item in items:
        parts = item.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"--expected {item!r}: write MODEL:STAGE:TESTSET")
        keys.append((parts[0], parts[1], parts[2]))
    return keys


def stage_report(args: argparse.Namespace) -> None:
    cells = load_metrics(args.metrics)
    pairs = {(m, s) for m, s, _ in cells}
    if len(pairs) != 1:
        raise SystemExit(f"stage report: metrics span several model/stage pairs: {sorted(pairs)}")
    manifest = read_json(args.manifest) if args.manifest else None
    candidates = [args.log_history, (manifest or {}).get("log_history_path")]
    history_path = next((p for p in candidates if p and Path(p).exists()), None)
    history = read_json(history_path) if history_path else None
    predictions = load_predictions(args.predictions, cells)
    facts_path = (manifest or {}).get("training_run_path")  # the run facts beside the manifest
    facts = read_json(facts_path) if facts_path and Path(facts_path).is_file() else {}
    kept = facts.get("completions_path")
    completions = load_completions(kept) if kept and Path(kept).is_dir() else None
    doc = stage_document(cells, manifest, history, predictions, completions)
    write_text(args.out, render_html(doc.title, doc.subtitle, doc.blocks))


def summary_report(args: argparse.Namespace) -> None:
    cells = load_metrics(args.metrics)
    baselines = load_baselines(args.baselines)
    histories, absent = {}, []
    for item in args.log_history:
        model, stage, path = parse_log_history_arg(item)
        if path.exists():
            histories[(model, stage)] = read_json(path)
        else:  # a stage not built (yet): the report says so instead of failing
            absent.append(f"{model}:{stage}")
    expected = parse_expected(args.expected)
    plots_dir = Path(args.plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    comparisons = comparison_rows(
        load_predictions(args.predictions, cells),
        baselines,
        load_baseline_predictions(args.baseline_predictions, baselines),
    )
    frame = metrics_frame(cells, baselines)
    write_tsv(frame, args.out_tsv or Path(args.out_md).with_name("metrics.tsv"))
    doc = summary_document(
        cells, baselines, histories, absent, expected, plots_dir, comparisons, frame
    )
    write_text(args.out_html, render_html(doc.title, doc.subtitle, doc.blocks))
    md = render_markdown(doc.title, doc.subtitle, doc.blocks, Path(args.out_md))
    write_text(args.out_md, md)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    stage = sub.add_parser("stage", help="one model and stage, all its test sets")
    stage.add_argument("--metrics", nargs="+", required=True)
    stage.add_argument("--manifest", default=None)
    stage.add_argument("--log-history", default=None)
    stage.add_argument("--predictions", nargs="*", default=[], help="beside --metrics files")
    stage.add_argument("--out", required=True)
    summary = sub.add_parser("summary", help="every model, stage and test set, with baselines")
    summary.add_argument("--metrics", nargs="*", default=[])
    summary.add_argument("--predictions", nargs="*", default=[], help="beside --metrics files")
    summary.add_argument("--baselines", nargs="*", default=[])
    summary.add_argument(
        "--baseline-predictions", nargs="*", default=[], help="beside --baselines files"
    )
    summary.add_argument("--log-history", nargs="*", default=[])
    summary.add_argument("--expected", nargs="*", default=[], metavar="MODEL:STAGE:TESTSET")
    summary.add_argument("--out-html", required=True)
    summary.add_argument("--out-md", required=True)
    summary.add_argument(
        "--out-tsv",
        default=None,
        help="the tidy table of every number (metrics.tsv beside --out-md)",
    )
    summary.add_argument("--plots-dir", required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "stage":
        stage_report(args)
    else:
        summary_report(args)


if __name__ == "__main__":
    cli.entry(main)
