"""Reports: one HTML page per model and stage, and a summary across everything (HTML + Markdown).

CLI::

    python -m rlcausality.report stage --metrics M1.json [M2.json ...] [--manifest MANIFEST] \
        [--log-history LOG] --out results/reports/{model}/{stage}.html
    python -m rlcausality.report summary --metrics M.json ... [--baselines B.json ...] \
        [--log-history LOG ...] [--expected MODEL:STAGE:TESTSET ...] \
        --out-html results/reports/summary.html --out-md results/reports/summary.md \
        --plots-dir results/reports/plots

A report is built as a list of blocks (headings, paragraphs, tables, images) rendered twice: to
self-contained HTML (inline CSS, every image embedded as a base64 PNG) and to Markdown (images
linked relative to the Markdown file, from the plots directory). Every number comes with where
it came from: the provenance table names model, stage, test set, data hash and settings hashes.
A log history is named ``MODEL:STAGE=PATH``, or just ``PATH`` when it lies at
``.../{model}/{stage}/log_history.json``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from rlcausality.corr2cause.graphs import RELATIONS
from rlcausality.io import atomic_open, read_json, write_text

STAGE_ORDER = ("base", "sft", "grpo")
PRIMARY_TEST_SET = "test"
ROBUSTNESS_SETS = ("test_paraphrased", "test_refactored")
BASELINE_LABELS = {
    "majority": "always invalid (majority)",
    "random": "random at prior (expected)",
    "symbolic": "exact symbolic reasoner",
}
METRIC_COLUMNS = (
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1 (valid)"),
    ("parse_rate", "parse rate"),
    ("mean_completion_tokens", "mean tokens"),
)
CURVES = {
    "sft": (("loss", "SFT training loss"),),
    "grpo": (
        ("reward", "GRPO mean reward"),
        ("rewards/correctness/mean", "GRPO correctness reward"),
        ("rewards/format/mean", "GRPO format reward"),
    ),
}
TEMPLATES = Path(__file__).parent / "templates"
Key = tuple[str, str, str]  # model, stage, test set


def relation_order(name: str) -> tuple[int, str]:
    """Sort key: the paper's relation order, anything else after it alphabetically."""
    return (RELATIONS.index(name), name) if name in RELATIONS else (len(RELATIONS), name)


# --------------------------------------------------------------------------- document model


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    caption: str = ""
    row_classes: list[str] = field(default_factory=list)


@dataclass
class Image:
    png: bytes
    alt: str
    path: Path | None = None  # where the PNG was written (Markdown links to it)


@dataclass
class Text:
    text: str
    kind: str = "p"  # p, note, warning, ok, h2, h3


Block = Table | Image | Text


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_html(title: str, subtitle: str, blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Text):
            text = html.escape(block.text)
            if block.kind in ("h2", "h3"):
                parts.append(f"<{block.kind}>{text}</{block.kind}>")
            elif block.kind == "p":
                parts.append(f"<p>{text}</p>")
            else:
                parts.append(f'<p class="{block.kind}">{text}</p>')
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        else:
            data = base64.b64encode(block.png).decode("ascii")
            alt = html.escape(block.alt)
            parts.append(
                f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                f"<figcaption>{alt}</figcaption></figure>"
            )
    page = Template((TEMPLATES / "page.html").read_text("utf-8"))
    return page.substitute(
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        css=(TEMPLATES / "report.css").read_text("utf-8"),
        body="\n".join(parts),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )


def _html_table(table: Table) -> str:
    out = ["<table>"]
    if table.caption:
        out.append(f"<caption>{html.escape(table.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr>")
    for index, row in enumerate(table.rows):
        css = table.row_classes[index] if index < len(table.row_classes) else ""
        attr = f' class="{css}"' if css else ""
        cells = "".join(
            f'<td class="text">{html.escape(fmt(c))}</td>'
            if isinstance(c, str) and i > 0
            else f"<td>{html.escape(fmt(c))}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr{attr}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_markdown(title: str, subtitle: str, blocks: Sequence[Block], md_path: Path) -> str:
    lines = [f"# {title}", "", subtitle, ""]
    for block in blocks:
        if isinstance(block, Text):
            prefix = {"h2": "## ", "h3": "### ", "warning": "> **", "note": "> ", "ok": "> "}
            suffix = "**" if block.kind == "warning" else ""
            lines += [f"{prefix.get(block.kind, '')}{block.text}{suffix}", ""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"**{block.caption}**", ""]
            lines.append("| " + " | ".join(block.headers) + " |")
            lines.append("|" + "|".join("---" for _ in block.headers) + "|")
            for row in block.rows:
                lines.append("| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |")
            lines.append("")
        elif block.path is not None:
            link = Path(os.path.relpath(block.path, md_path.parent)).as_posix()
            lines += [f"![{block.alt}]({link})", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- inputs


def load_metrics(paths: Sequence[str]) -> dict[Key, dict[str, Any]]:
    cells: dict[Key, dict[str, Any]] = {}
    for path in paths:
        metrics = read_json(path)
        key = (str(metrics["model"]), str(metrics["stage"]), str(metrics["test_set"]))
        if key in cells:
            raise ValueError(f"{path}: a second metrics file for {':'.join(key)}")
        cells[key] = {**metrics, "_path": str(path)}
    return cells


def load_baselines(paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    result = {}
    for path in paths:
        data = read_json(path)
        result[str(data["test_set"])] = {**data, "_path": str(path)}
    return result


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


def curve_series(log_history: Sequence[Mapping[str, Any]], key: str) -> tuple[list, list]:
    """(steps, values) of ``key`` in a Trainer log history (entries lacking it are skipped)."""
    steps, values = [], []
    for entry in log_history:
        if key in entry and "step" in entry and entry[key] is not None:
            steps.append(entry["step"])
            values.append(float(entry[key]))
    return steps, values


def parse_expected(items: Sequence[str]) -> list[Key]:
    keys = []
    for item in items:
        parts = item.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"--expected {item!r}: write MODEL:STAGE:TESTSET")
        keys.append((parts[0], parts[1], parts[2]))
    return keys


def ordered_keys(keys: Sequence[Key], order_hint: Sequence[Key] = ()) -> list[Key]:
    models: list[str] = []
    for model, _, _ in [*order_hint, *keys]:
        if model not in models:
            models.append(model)
    tests: list[str] = []
    for _, _, test in [*order_hint, *keys]:
        if test not in tests:
            tests.append(test)

    def sort_key(key: Key) -> tuple[int, int, int]:
        stage = STAGE_ORDER.index(key[1]) if key[1] in STAGE_ORDER else len(STAGE_ORDER)
        return (models.index(key[0]), stage, tests.index(key[2]))

    return sorted(set(keys), key=sort_key)


# --------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def save_png(png: bytes, path: Path) -> Path:
    with atomic_open(path, "wb") as handle:
        handle.write(png)
    return path


def plot_training_curves(
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
) -> bytes | None:
    panels = [(stage, key, title) for stage, curves in CURVES.items() for key, title in curves]
    panels = [
        p
        for p in panels
        if any(curve_series(h, p[1])[0] for (_, s), h in histories.items() if s == p[0])
    ]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (stage, key, title) in zip(axes[0], panels, strict=True):
        for (model, hist_stage), history in sorted(histories.items()):
            steps, values = curve_series(history, key)
            if hist_stage == stage and steps:
                ax.plot(steps, values, marker=".", label=model)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def plot_f1_by_stage(
    cells: Mapping[Key, Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]]
) -> bytes | None:
    if not cells:
        return None
    plt = _pyplot()
    keys = ordered_keys(list(cells))
    models = list(dict.fromkeys(k[0] for k in keys))
    tests = list(dict.fromkeys(k[2] for k in keys))
    stages = [s for s in STAGE_ORDER if any(k[1] == s for k in keys)]
    fig, axes = plt.subplots(1, len(tests), figsize=(5 * len(tests), 3.8), squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, test in zip(axes[0], tests, strict=True):
        for index, model in enumerate(models):
            xs = [i + index * width for i in range(len(stages))]
            ys = [cells.get((model, s, test), {}).get("f1", float("nan")) for s in stages]
            ax.bar(xs, ys, width=width, label=model)
        for name, style in (("random", ":"), ("symbolic", "--")):
            value = baselines.get(test, {}).get("baselines", {}).get(name, {}).get("f1")
            if value is not None:
                ax.axhline(value, linestyle=style, color="gray", label=BASELINE_LABELS[name])
        ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(stages))], stages)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"F1 (valid) on {test}")
        ax.set_ylabel("F1")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)


def plot_relation_heatmap(cells: Mapping[Key, Mapping[str, Any]], test_set: str) -> bytes | None:
    keys = [k for k in ordered_keys(list(cells)) if k[2] == test_set]
    relations = sorted(
        {r for k in keys for r in cells[k].get("by_relation", {})}, key=relation_order
    )
    if not keys or not relations:
        return None
    plt = _pyplot()
    grid = [
        [cells[k].get("by_relation", {}).get(r, {}).get("f1", float("nan")) for r in relations]
        for k in keys
    ]
    fig, ax = plt.subplots(figsize=(1.4 * len(relations) + 3, 0.5 * len(keys) + 1.8))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(relations)), relations, rotation=30, ha="right")
    ax.set_yticks(range(len(keys)), [f"{m} / {s}" for m, s, _ in keys])
    for row, values in enumerate(grid):
        for col, value in enumerate(values):
            if value == value:  # not NaN
                color = "white" if value < 0.5 else "black"
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=color)
    ax.set_title(f"F1 (valid) by relation on {test_set}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return figure_png(fig)


def robustness_rows(cells: Mapping[Key, Mapping[str, Any]]) -> list[list[Any]]:
    """Per model and stage: F1 on test, and F1 and its drop on each robustness set."""
    rows = []
    pairs = list(dict.fromkeys((m, s) for m, s, _ in ordered_keys(list(cells))))
    for model, stage in pairs:
        base = cells.get((model, stage, PRIMARY_TEST_SET), {}).get("f1")
        row: list[Any] = [f"{model} / {stage}", base]
        present = False
        for test in ROBUSTNESS_SETS:
            value = cells.get((model, stage, test), {}).get("f1")
            present = present or value is not None
            drop = base - value if base is not None and value is not None else None
            row += [value, drop]
        if base is not None and present:
            rows.append(row)
    return rows


def plot_robustness(rows: Sequence[Sequence[Any]]) -> bytes | None:
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows) + 2), 3.8))
    width = 0.8 / len(ROBUSTNESS_SETS)
    for index, test in enumerate(ROBUSTNESS_SETS):
        drops = [r[3 + 2 * index] if r[3 + 2 * index] is not None else float("nan") for r in rows]
        ax.bar([i + index * width for i in range(len(rows))], drops, width=width, label=test)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([i + width / 2 for i in range(len(rows))], [r[0] for r in rows], rotation=20)
    ax.set_ylabel("F1(test) − F1(variant)")
    ax.set_title("Robustness: F1 drop from test to its variants (higher = less robust)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


# --------------------------------------------------------------------------- tables


def metric_row(label: str, metrics: Mapping[str, Any]) -> list[Any]:
    return [label, *(metrics.get(key) for key, _ in METRIC_COLUMNS)]


def metric_headers(first: str) -> list[str]:
    return [first, *(title for _, title in METRIC_COLUMNS)]


def confusion_table(metrics: Mapping[str, Any]) -> Table:
    c = metrics["confusion"]
    unparsed = metrics.get("unparsed_by_label", {})
    return Table(
        headers=["", "predicted valid (1)", "predicted invalid (0, incl. unparsed)", "unparsed"],
        rows=[
            ["label valid (1)", c["tp"], c["fn"], unparsed.get("1")],
            ["label invalid (0)", c["fp"], c["tn"], unparsed.get("0")],
        ],
        caption="Confusion matrix (an unparsed answer is counted as predicted invalid)",
    )


def breakdown_table(metrics: Mapping[str, Any], key: str, title: str) -> Table:
    groups = metrics.get(key, {})
    names = sorted(groups, key=relation_order) if key == "by_relation" else list(groups)
    if key == "by_num_variables":
        names = sorted(groups, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))
    return Table(
        headers=metric_headers(title),
        rows=[metric_row(name, groups[name]) for name in names],
        caption=f"By {title}",
    )


def short(digest: Any, length: int = 12) -> str | None:
    return str(digest)[:length] if digest else None


def provenance_row(key: Key, metrics: Mapping[str, Any]) -> list[Any]:
    prov = metrics.get("provenance") or {}
    manifest = metrics.get("manifest") or {}
    return [
        " / ".join(key),
        short((metrics.get("data") or {}).get("sha256")),
        prov.get("settings_hash"),
        manifest.get("settings_hash"),
        manifest.get("global_step"),
        short(prov.get("git_commit"), 10),
        prov.get("created"),
        metrics.get("_path"),
    ]


PROVENANCE_HEADERS = [
    "model / stage / test set",
    "data sha256",
    "eval settings hash",
    "training settings hash",
    "train step",
    "git commit",
    "created",
    "source file",
]

DEFINITIONS = (
    "F1, precision and recall are of the valid class (label 1); a ratio 0/0 is reported as 0. "
    "An unparsed answer counts as wrong for accuracy and as predicted invalid in the confusion "
    "matrix. The random baseline's numbers are analytic expectations, not a sampled run."
)


# --------------------------------------------------------------------------- stage report


def stage_blocks(
    cells: Mapping[Key, Mapping[str, Any]],
    manifest: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
) -> list[Block]:
    keys = ordered_keys(list(cells))
    blocks: list[Block] = [Text(DEFINITIONS, "note")]
    blocks.append(
        Table(
            headers=metric_headers("test set"),
            rows=[metric_row(k[2], cells[k]) for k in keys],
            caption="Overview",
        )
    )
    for key in keys:
        metrics = cells[key]
        blocks.append(Text(f"Test set {key[2]}", "h2"))
        gen = metrics.get("generation") or {}
        blocks.append(
            Text(
                "Generation: "
                + ", ".join(f"{k}={fmt(v)}" for k, v in sorted(gen.items()))
                + f". Items: {fmt((metrics.get('data') or {}).get('evaluated'))} of "
                f"{fmt((metrics.get('data') or {}).get('rows'))}."
            )
        )
        blocks.append(confusion_table(metrics))
        blocks.append(breakdown_table(metrics, "by_relation", "relation"))
        blocks.append(breakdown_table(metrics, "by_num_variables", "number of variables"))
    if manifest is not None:
        blocks.append(Text("Training", "h2"))
        settings = manifest.get("settings") or {}
        rows = [
            ["base model", manifest.get("base_model")],
            ["adapter", manifest.get("adapter_path")],
            ["merged", manifest.get("merged_path")],
            ["global step", manifest.get("global_step")],
            ["settings hash", (manifest.get("provenance") or {}).get("settings_hash")],
        ]
        for section, values in settings.items():
            if isinstance(values, Mapping) and section != "model":
                for name, value in sorted(values.items()):
                    rows.append([f"{section}.{name}", str(value)])
        blocks.append(Table(headers=["setting", "value"], rows=rows, caption="Manifest"))
    if history:
        model, stage = keys[0][0], keys[0][1]
        png = plot_training_curves({(model, stage): history})
        if png is not None:
            blocks.append(Image(png, f"Training curves of {model} / {stage}"))
    blocks.append(Text("Provenance", "h2"))
    blocks.append(Table(PROVENANCE_HEADERS, [provenance_row(k, cells[k]) for k in keys]))
    return blocks


def stage_report(args: argparse.Namespace) -> None:
    cells = load_metrics(args.metrics)
    pairs = {(m, s) for m, s, _ in cells}
    if len(pairs) != 1:
        raise SystemExit(f"stage report: metrics span several model/stage pairs: {sorted(pairs)}")
    model, stage = next(iter(pairs))
    manifest = read_json(args.manifest) if args.manifest else None
    candidates = [args.log_history, (manifest or {}).get("log_history_path")]
    history_path = next((p for p in candidates if p and Path(p).exists()), None)
    history = read_json(history_path) if history_path else None
    blocks = stage_blocks(cells, manifest, history)
    subtitle = f"Model {model}, stage {stage}: {len(cells)} test set(s)"
    write_text(args.out, render_html(f"rlcausality: {model} / {stage}", subtitle, blocks))


# --------------------------------------------------------------------------- summary


def missing_cells(expected: Sequence[Key], cells: Mapping[Key, Any]) -> list[Key]:
    return [k for k in expected if k not in cells]


def f1_pivot(
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    expected: Sequence[Key],
) -> Table:
    keys = ordered_keys([*cells, *expected], expected)
    tests = list(dict.fromkeys(k[2] for k in keys)) or list(baselines)
    tests += [t for t in baselines if t not in tests]
    pairs = list(dict.fromkeys((m, s) for m, s, _ in keys))
    rows, classes = [], []
    for model, stage in pairs:
        row: list[Any] = [f"{model} / {stage}"]
        for test in tests:
            metrics = cells.get((model, stage, test))
            expected_here = (model, stage, test) in expected
            row.append(metrics["f1"] if metrics else ("NOT BUILT" if expected_here else None))
        rows.append(row)
        classes.append("missing" if "NOT BUILT" in row else "")
    for name, label in BASELINE_LABELS.items():
        row = [f"baseline: {label}"]
        for test in tests:
            row.append(baselines.get(test, {}).get("baselines", {}).get(name, {}).get("f1"))
        rows.append(row)
        classes.append("baseline")
    return Table(["model / stage", *tests], rows, "F1 of the valid class", classes)


def summary_table(
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    expected: Sequence[Key],
) -> Table:
    keys = ordered_keys([*cells, *expected], expected)
    rows, classes = [], []
    for key in keys:
        if key in cells:
            rows.append(metric_row(" / ".join(key), cells[key]))
            classes.append("")
        else:
            rows.append([" / ".join(key), "NOT BUILT", *([None] * (len(METRIC_COLUMNS) - 1))])
            classes.append("missing")
    for test, data in baselines.items():
        for name, label in BASELINE_LABELS.items():
            metrics = data.get("baselines", {}).get(name)
            if metrics and "error" not in metrics:
                rows.append(metric_row(f"baseline {label} / {test}", metrics))
                classes.append("baseline")
    return Table(metric_headers("model / stage / test set"), rows, "All cells", classes)


def baseline_provenance(baselines: Mapping[str, Mapping[str, Any]]) -> Table:
    rows = []
    for test, data in baselines.items():
        prov = data.get("provenance") or {}
        errors = [
            f"{n}: {m['error']}" for n, m in data.get("baselines", {}).items() if "error" in m
        ]
        rows.append(
            [
                f"baselines / {test}",
                short(data.get("data_sha256")),
                prov.get("settings_hash"),
                data.get("n"),
                prov.get("created"),
                data.get("_path"),
                "; ".join(errors) or "ok",
            ]
        )
    headers = ["baselines", "data sha256", "settings hash", "n", "created", "source file", "status"]
    return Table(headers, rows, "Baselines")


def summary_blocks(
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    histories: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    expected: Sequence[Key],
    plots_dir: Path,
) -> list[Block]:
    blocks: list[Block] = []
    missing = missing_cells(expected, cells)
    if missing:
        blocks.append(
            Text(
                f"NOT BUILT: {len(missing)} of {len(expected)} expected model/stage/test-set "
                "cells have no metrics: " + ", ".join(":".join(k) for k in missing),
                "warning",
            )
        )
    elif expected:
        blocks.append(Text(f"All {len(expected)} expected cells were built.", "ok"))
    blocks.append(Text(DEFINITIONS, "note"))
    blocks.append(Text("F1 by model, stage and test set", "h2"))
    blocks.append(f1_pivot(cells, baselines, expected))

    plots: list[tuple[str, bytes | None, str]] = [
        ("f1_by_stage.png", plot_f1_by_stage(cells, baselines), "F1 (valid) by stage and model"),
        (
            "relation_f1_heatmap.png",
            plot_relation_heatmap(cells, PRIMARY_TEST_SET),
            f"Per-relation F1 on {PRIMARY_TEST_SET}",
        ),
    ]
    robust = robustness_rows(cells)
    plots.append(("robustness.png", plot_robustness(robust), "Robustness drop of F1"))
    plots.append(
        ("training_curves.png", plot_training_curves(histories), "Training curves (SFT, GRPO)")
    )
    blocks.append(Text("Plots", "h2"))
    for name, png, alt in plots:
        if png is not None:
            blocks.append(Image(png, alt, save_png(png, plots_dir / name)))
        else:
            blocks.append(Text(f"{alt}: no data to plot.", "note"))

    if robust:
        headers = ["model / stage", f"F1 {PRIMARY_TEST_SET}"]
        for test in ROBUSTNESS_SETS:
            headers += [f"F1 {test}", f"drop ({test})"]
        blocks.append(Text("Robustness", "h2"))
        blocks.append(Table(headers, robust, "F1 on test and on its variants"))
    blocks.append(Text("All metrics", "h2"))
    blocks.append(summary_table(cells, baselines, expected))
    if missing:
        blocks.append(Text("Not built", "h2"))
        blocks.append(
            Table(
                ["model", "stage", "test set"],
                [list(k) for k in missing],
                "Expected cells without metrics",
                ["missing"] * len(missing),
            )
        )
    blocks.append(Text("Provenance", "h2"))
    keys = ordered_keys(list(cells), expected)
    blocks.append(
        Table(PROVENANCE_HEADERS, [provenance_row(k, cells[k]) for k in keys], "Model cells")
    )
    if baselines:
        blocks.append(baseline_provenance(baselines))
    return blocks


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
    blocks = summary_blocks(cells, baselines, histories, expected, plots_dir)
    if absent:
        blocks.insert(1, Text("No training log history for: " + ", ".join(absent), "note"))
    missing = missing_cells(expected, cells)
    subtitle = (
        f"{len(cells)} model/stage/test-set cells, {len(baselines)} baseline set(s); "
        f"{len(missing)} expected cell(s) not built"
    )
    title = "rlcausality: Corr2Cause summary"
    write_text(args.out_html, render_html(title, subtitle, blocks))
    write_text(args.out_md, render_markdown(title, subtitle, blocks, Path(args.out_md)))


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    stage = sub.add_parser("stage", help="one model and stage, all its test sets")
    stage.add_argument("--metrics", nargs="+", required=True)
    stage.add_argument("--manifest", default=None)
    stage.add_argument("--log-history", default=None)
    stage.add_argument("--out", required=True)
    summary = sub.add_parser("summary", help="every model, stage and test set, with baselines")
    summary.add_argument("--metrics", nargs="*", default=[])
    summary.add_argument("--baselines", nargs="*", default=[])
    summary.add_argument("--log-history", nargs="*", default=[])
    summary.add_argument("--expected", nargs="*", default=[], metavar="MODEL:STAGE:TESTSET")
    summary.add_argument("--out-html", required=True)
    summary.add_argument("--out-md", required=True)
    summary.add_argument("--plots-dir", required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "stage":
        stage_report(args)
    else:
        summary_report(args)


if __name__ == "__main__":
    main()
