"""One row per evaluated run: F1 with its interval, and paired differences against baselines.

For the learning curve in docs/demo.md: each run is an evaluation folder
(``results/eval/{model}/{stage}/{test_set}``, as the workflow writes it, possibly in another
clone) holding ``metrics.json`` and ``predictions.jsonl``. Against the baselines of the same
test set (``results/eval/baselines/{test_set}.json`` and its ``.predictions.jsonl``), on the
identical items of each run, it prints a markdown table: n, F1 [95% class-bootstrap CI], the
number of Yes answers, the trace agreement when the run has one (whole adjacency lists equal to
the oracle's; the share of all variable pairs classed right, beside that of listing every pair:
``metrics.trace_metrics``), and the paired ΔF1 [95% CI]
of the run minus always-valid and minus the relation prior, with McNemar's p for accuracy.
With ``--items`` (the formatted test rows the runs answered, whose prompts give each item's
premise), also how often the answer is the one the completion's own lists imply, and the F1 of
those implied answers (``trace_metrics``' ``consistent`` and ``lists_answer``).
Every interval is the workflow's own (``rlcausality.evaluation.uncertainty``).

Runs given the same label are runs of one configuration (seeds): each keeps its row (labelled
``LABEL #1``, ``#2``, ...), and a row ``LABEL, mean of k`` follows them with the mean F1 over
the runs and the mean paired ΔF1 against each baseline, on the items all of them share, each
with its class-bootstrap interval (``uncertainty.mean_paired_comparison``; the same draws for
every run), and the runs' own ΔF1 in place of McNemar's p.

    python benchmarks/curve.py --baselines results/eval/baselines/test.json \
        "trace 320=results/eval/smollm2-135m/sft/test" \
        "answer 320=../answer/results/eval/smollm2-135m/sft/test"
    python benchmarks/curve.py --baselines results/eval/baselines/test.json \
        "trace 640=../seed42/results/eval/smollm2-135m/sft/test" \
        "trace 640=../seed43/results/eval/smollm2-135m/sft/test"

``--versus A B`` adds a table of B - A, run by run: the k-th run labelled B against the k-th
labelled A (say each seed's GRPO against the SFT it was trained from), each pair's paired ΔF1
[95% CI] and McNemar's p (with the items only A and only B got right), and with several pairs
their mean with its class-bootstrap interval (``uncertainty.mean_of_paired_differences``):

    python benchmarks/curve.py --baselines results/eval/baselines/test.json --versus SFT GRPO \
        "SFT=../s42/results/eval/smollm2-135m/sft/test" \
        "GRPO=../s42/results/eval/smollm2-135m/grpo/test" \
        "SFT=../s43/results/eval/smollm2-135m/sft/test" \
        "GRPO=../s43/results/eval/smollm2-135m/grpo/test"

``--by-relation`` adds a row per run and a column per relation: the items right of n, the Yes
answers and how many of them are valid, and with ``--items`` how many the answer the run's own
lists imply gets right and how many stated answers are that answer (where a prior sits, and
whether the lists or the check fail).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcausality.data.corr2cause.graphs import RELATIONS
from rlcausality.evaluation.metrics import lists_answer_metrics, trace_metrics
from rlcausality.evaluation.uncertainty import (
    mean_of_paired_differences,
    mean_paired_comparison,
    paired_comparison,
)
from rlcausality.io import read_json, read_jsonl
from rlcausality.reporting.cells import baseline_predictions_path
from rlcausality.reporting.paired import baseline_answers
from rlcausality.reporting.render import Estimate, fmt
from rlcausality.task import item_input

BASELINES = ("always_valid", "relation_prior")


def _share(value: float | None, reference: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} ({reference:.3f})" if reference is not None else f"{value:.3f}"


def _p(p: float) -> str:
    return f"{p:.2g}"


def baseline_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Each baseline's per-item predictions (rows with ``answer``) on the test set."""
    rows = list(read_jsonl(baseline_predictions_path(str(path))))
    return {name: baseline_answers(rows, name) for name in BASELINES}


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


Inputs = Mapping[str, str | None] | None  # each item's model input by id (``--items``)


def item_inputs(path: Path | None) -> Inputs:
    """Each formatted row's item by id (``task.item_input``); None without ``path``."""
    return None if path is None else {str(r["id"]): item_input(r) for r in read_jsonl(path)}


def _trace_cells(
    predictions: Sequence[Mapping[str, Any]], inputs: Inputs, reference: bool = True
) -> list[str]:
    """Whole lists right, pairs right (beside listing every pair, with ``reference``), the
    answers that follow the lists and the F1 of the lists' answers; "–" where none."""
    # from the predictions: older metrics.json lack the pair figures and the lists' answers
    trace = trace_metrics(predictions, inputs) or {}
    pairs = trace.get("adjacency_pairs") or {}
    every = pairs.get("every_pair_accuracy") if reference else None
    return [
        _number(trace.get("adjacency_match")),
        _share(pairs.get("accuracy"), every),
        _number(trace.get("consistent")),
        _number((trace.get("lists_answer") or {}).get("f1")),
    ]


def _yes(predictions: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for p in predictions if p.get("answer") == 1)


def _markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def run_row(
    label: str, folder: Path, baselines: Mapping[str, list[dict[str, Any]]], inputs: Inputs = None
) -> list[str]:
    metrics = read_json(folder / "metrics.json")
    predictions = list(read_jsonl(folder / "predictions.jsonl"))
    cells = [
        label,
        str(metrics["n"]),
        fmt(Estimate(metrics["f1"], metrics.get("f1_ci95"))),
        str(_yes(predictions)),
        *_trace_cells(predictions, inputs),
    ]
    for name in BASELINES:
        paired = paired_comparison(baselines[name], predictions)
        cells.append(
            f"{fmt(Estimate(paired['delta_f1'], paired['delta_f1_ci95']))}, "
            f"p {_p(paired['mcnemar_p'])}"
        )
    return cells


def table(runs: Sequence[tuple[str, Path]], baselines_path: Path, inputs: Inputs = None) -> str:
    baselines = baseline_rows(baselines_path)
    head = [
        "run",
        "n",
        "F1 [95% CI]",
        "Yes answers",
        "adjacencies = oracle",
        "pairs right (listing every pair)",
        "answer = its lists' answer",
        "F1 of its lists' answer",
        "ΔF1 vs always-valid [95% CI], McNemar p",
        "ΔF1 vs relation prior [95% CI], McNemar p",
    ]
    rows = []
    for label, folders in grouped(runs):
        if len(folders) == 1:
            rows.append(run_row(label, folders[0], baselines, inputs))
            continue
        rows += [
            run_row(f"{label} #{i}", path, baselines, inputs) for i, path in enumerate(folders, 1)
        ]
        rows.append(mean_row(label, folders, baselines, inputs))
    return _markdown(head, rows)


def grouped(runs: Sequence[tuple[str, Path]]) -> list[tuple[str, list[Path]]]:
    """The runs by label, in the order each label first appears."""
    groups: dict[str, list[Path]] = {}
    for label, path in runs:
        groups.setdefault(label, []).append(path)
    return list(groups.items())


def mean_row(
    label: str,
    folders: Sequence[Path],
    baselines: Mapping[str, list[dict[str, Any]]],
    inputs: Inputs = None,
) -> list[str]:
    """The mean of several runs of one configuration (see the module's docstring)."""
    runs = [list(read_jsonl(folder / "predictions.jsonl")) for folder in folders]
    means = {name: mean_paired_comparison(baselines[name], runs) for name in BASELINES}
    shared = means[BASELINES[0]]  # n and the runs' F1 are the same against every baseline
    traces = [_trace_cells(run, inputs, reference=False) for run in runs]
    cells = [
        f"{label}, mean of {len(runs)}",
        str(shared["n"]),
        fmt(Estimate(shared["mean_f1"], shared["mean_f1_ci95"])),
        f"{sum(_yes(run) for run in runs) / len(runs):.1f}",
        *(" / ".join(cells) for cells in zip(*traces, strict=True)),
    ]
    for name in BASELINES:
        mean = means[name]
        each = ", ".join(f"{d:+.3f}" for d in mean["delta_f1_runs"])
        cells.append(f"{fmt(Estimate(mean['delta_f1'], mean['delta_f1_ci95']))}; runs {each}")
    return cells


def versus_table(runs: Sequence[tuple[str, Path]], a: str, b: str) -> str:
    """B - A, the k-th run labelled B against the k-th labelled A (see the module's docstring)."""
    groups = dict(grouped(runs))
    for label in (a, b):
        if label not in groups:
            raise ValueError(f"--versus: no run is labelled {label!r} (labels: {sorted(groups)})")
    if len(groups[a]) != len(groups[b]):
        raise ValueError(
            f"--versus: {len(groups[a])} runs labelled {a!r} but {len(groups[b])} labelled {b!r};"
            " each B run is paired with the A run in the same place"
        )
    pairs = [
        (list(read_jsonl(x / "predictions.jsonl")), list(read_jsonl(y / "predictions.jsonl")))
        for x, y in zip(groups[a], groups[b], strict=True)
    ]
    head = ["pair", "n", f"ΔF1 {b} − {a} [95% CI]", f"McNemar p (only {a} / only {b} right)"]
    rows = []
    for k, (rows_a, rows_b) in enumerate(pairs, 1):
        paired = paired_comparison(rows_a, rows_b)
        rows.append([
            f"{b} − {a} #{k}" if len(pairs) > 1 else f"{b} − {a}",
            str(paired["n"]),
            fmt(Estimate(paired["delta_f1"], paired["delta_f1_ci95"])),
            f"{_p(paired['mcnemar_p'])} ({paired['a_only_correct']} / {paired['b_only_correct']})",
        ])  # fmt: skip
    if len(pairs) > 1:
        mean = mean_of_paired_differences(pairs)
        each = ", ".join(f"{d:+.3f}" for d in mean["delta_f1_runs"])
        rows.append([
            f"{b} − {a}, mean of {len(pairs)}",
            str(mean["n"]),
            fmt(Estimate(mean["delta_f1"], mean["delta_f1_ci95"])),
            f"runs {each}",
        ])  # fmt: skip
    return _markdown(head, rows)


def relation_cell(predictions: Sequence[Mapping[str, Any]], inputs: Inputs = None) -> str:
    """One run on the items of one relation: right of n, the Yes answers (how many valid), and
    with ``inputs`` how many the answer its own lists imply gets right and how many stated
    answers are that answer."""
    n = len(predictions)
    yes = [p for p in predictions if p.get("answer") == 1]
    right = sum(p.get("answer") == p["label"] for p in predictions)
    cell = f"{right}/{n} right, Yes {len(yes)} ({sum(p['label'] == 1 for p in yes)} valid)"
    if inputs is None:
        return cell
    found = lists_answer_metrics(predictions, inputs)
    lists_right = round((found["lists_answer"]["accuracy"] or 0.0) * n)
    return f"{cell}; lists {lists_right} right, = lists {round(found['consistent'] * n)}"


def relation_table(runs: Sequence[tuple[str, Path]], inputs: Inputs = None) -> str:
    """A row per run, a column per relation the items hold (``--by-relation``)."""
    answered = [(label, list(read_jsonl(path / "predictions.jsonl"))) for label, path in runs]
    held = {str(p.get("relation")) for _, predictions in answered for p in predictions}
    relations = [r for r in RELATIONS if r in held] + sorted(held - set(RELATIONS))
    rows = [
        [label, *(relation_cell([p for p in ps if p.get("relation") == r], inputs)
                  for r in relations)]
        for label, ps in answered
    ]  # fmt: skip
    return _markdown(["run", *relations], rows)


def parse_run(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=EVAL_FOLDER")
    path = Path(folder)
    for name in ("metrics.json", "predictions.jsonl"):
        if not (path / name).is_file():
            raise argparse.ArgumentTypeError(f"{path / name}: missing (an evaluation folder?)")
    return label, path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=parse_run, help="LABEL=EVAL_FOLDER")
    parser.add_argument("--baselines", type=Path, required=True, help="baselines/{test}.json")
    parser.add_argument(
        "--versus",
        nargs=2,
        metavar=("A", "B"),
        help="also B - A, the k-th B run against the k-th A",
    )
    parser.add_argument(
        "--items",
        type=Path,
        help="the formatted test rows (results/data/{model}/grpo/test.jsonl): adds the answers "
        "the completions' own lists imply",
    )
    parser.add_argument(
        "--by-relation",
        action="store_true",
        help="also a table of each run's answers by relation (right, Yes, with --items the "
        "lists' answers)",
    )
    args = parser.parse_args(argv)
    versus = ""
    if args.versus:
        try:
            versus = "\n\n" + versus_table(args.runs, *args.versus)
        except ValueError as err:
            parser.error(str(err))
    inputs = item_inputs(args.items)
    by_relation = "\n\n" + relation_table(args.runs, inputs) if args.by_relation else ""
    print(table(args.runs, args.baselines, inputs) + versus + by_relation)


if __name__ == "__main__":
    main()
