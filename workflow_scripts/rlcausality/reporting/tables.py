"""The tables of the reports: metrics, breakdowns, settings, robustness and provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlcausality.evaluation.uncertainty import CI_METRICS
from rlcausality.reporting.cells import (
    BASELINE_LABELS,
    PRIMARY_TEST_SET,
    ROBUSTNESS_SETS,
    Key,
    ordered_keys,
    relation_order,
)
from rlcausality.reporting.render import Estimate, Table
from rlcausality.reporting.tidy import BASELINE, cell_metrics

METRIC_COLUMNS = (
    ("n", "n"),
    ("n_classes", "classes"),
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1 (valid)"),
    ("parse_rate", "parse rate"),
    ("mean_completion_tokens", "mean tokens"),
    ("truncation_rate", "truncated"),
)
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


def estimate(metrics: Mapping[str, Any], key: str) -> Any:
    """The metric, with its 95% interval where ``<key>_ci95`` gives one."""
    value, ci = metrics.get(key), metrics.get(f"{key}_ci95")
    return Estimate(value, ci) if key in CI_METRICS and ci and value is not None else value


def metric_row(label: str, metrics: Mapping[str, Any]) -> list[Any]:
    row: list[Any] = [label]
    for key, _ in METRIC_COLUMNS:
        if key == "n_classes":  # the classes the bootstrap resampled
            row.append((metrics.get("ci") or {}).get("n_clusters"))
        else:
            row.append(estimate(metrics, key))
    return row


def metric_headers(first: str) -> list[str]:
    return [first, *(title for _, title in METRIC_COLUMNS)]


def overview_table(cells: Mapping[Key, Mapping[str, Any]], keys: Sequence[Key]) -> Table:
    return Table(
        headers=metric_headers("test set"),
        rows=[metric_row(k[2], cells[k]) for k in keys],
        caption="Overview",
    )


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


def manifest_table(manifest: Mapping[str, Any]) -> Table:
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
    return Table(headers=["setting", "value"], rows=rows, caption="Manifest")


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


def provenance_table(
    cells: Mapping[Key, Mapping[str, Any]], keys: Sequence[Key], caption: str = ""
) -> Table:
    return Table(PROVENANCE_HEADERS, [provenance_row(k, cells[k]) for k in keys], caption)


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


def robustness_table(rows: list[list[Any]]) -> Table:
    headers = ["model / stage", f"F1 {PRIMARY_TEST_SET}"]
    for test in ROBUSTNESS_SETS:
        headers += [f"F1 {test}", f"drop ({test})"]
    return Table(headers, rows, "F1 on test and on its variants")


def f1_pivot(
    frame: Any,
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    expected: Sequence[Key],
) -> Table:
    """F1 of every model/stage (rows) on every test set (columns), read from the tidy table
    (``reporting.tidy``); ``cells`` and ``baselines`` give only which rows and columns exist."""
    keys = ordered_keys([*cells, *expected], expected)
    tests = list(dict.fromkeys(k[2] for k in keys)) or list(baselines)
    tests += [t for t in baselines if t not in tests]
    pairs = list(dict.fromkeys((m, s) for m, s, _ in keys))
    rows, classes = [], []
    for model, stage in pairs:
        row: list[Any] = [f"{model} / {stage}"]
        for test in tests:
            metrics = cell_metrics(frame, model, stage, test)
            expected_here = (model, stage, test) in expected
            missing = "NOT BUILT" if expected_here else None
            row.append(estimate(metrics, "f1") if metrics else missing)
        rows.append(row)
        classes.append("missing" if "NOT BUILT" in row else "")
    for name, label in BASELINE_LABELS.items():
        row = [f"baseline: {label}"]
        for test in tests:
            row.append(estimate(cell_metrics(frame, BASELINE, name, test), "f1"))
        rows.append(row)
        classes.append("baseline")
    return Table(["model / stage", *tests], rows, "F1 of the valid class", classes)


def summary_table(
    frame: Any,
    cells: Mapping[Key, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    expected: Sequence[Key],
) -> Table:
    """Every metric of every cell and baseline, read from the tidy table (``reporting.tidy``)."""
    keys = ordered_keys([*cells, *expected], expected)
    rows, classes = [], []
    for key in keys:
        if key in cells:
            rows.append(metric_row(" / ".join(key), cell_metrics(frame, *key)))
            classes.append("")
        else:
            rows.append([" / ".join(key), "NOT BUILT", *([None] * (len(METRIC_COLUMNS) - 1))])
            classes.append("missing")
    for test in baselines:
        for name, label in BASELINE_LABELS.items():
            metrics = cell_metrics(frame, BASELINE, name, test)
            if metrics:
                rows.append(metric_row(f"baseline {label} / {test}", metrics))
                classes.append("baseline")
    return Table(metric_headers("model / stage / test set"), rows, "All cells", classes)


def missing_table(missing: Sequence[Key]) -> Table:
    return Table(
        ["model", "stage", "test set"],
        [list(k) for k in missing],
        "Expected cells without metrics",
        ["missing"] * len(missing),
    )


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
