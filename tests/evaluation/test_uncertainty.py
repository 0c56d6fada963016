"""Bootstrap intervals over equivalence classes, paired comparisons and McNemar's exact test."""

from __future__ import annotations

import random
import time

import pytest

from rlcausality.data import chat_format
from rlcausality.data.corr2cause.load import class_id_of
from rlcausality.evaluation import uncertainty
from rlcausality.evaluation.metrics import compute_metrics
from rlcausality.io import write_jsonl


def classes_of_identical_items(classes: int, per_class: int, seed: int = 0) -> list[dict]:
    """``classes`` classes whose ``per_class`` items share label and answer (a model that is
    right or wrong on a whole class at once)."""
    rng = random.Random(seed)
    rows = []
    for c in range(classes):
        label = int(rng.random() < 0.3)
        answer = label if rng.random() < 0.7 else 1 - label
        for j in range(per_class):
            rows.append({"id": f"c{c}-{j}", "class_id": f"c{c}", "label": label, "answer": answer})
    return rows


def width(ci: list[float]) -> float:
    return ci[1] - ci[0]


def test_interval_contains_the_point_estimate():
    rows = classes_of_identical_items(150, 4)
    metrics = compute_metrics(rows)
    result = uncertainty.intervals(rows)
    for name in uncertainty.CI_METRICS:
        lo, hi = result[f"{name}_ci95"]
        assert lo <= metrics[name] <= hi and lo < hi, name
    assert result["ci"]["cluster"] == "class_id" and result["ci"]["n_clusters"] == 150
    assert result["ci"]["resamples"] >= 1000


def test_interval_is_deterministic_with_its_seed():
    rows = classes_of_identical_items(80, 3)
    assert uncertainty.intervals(rows) == uncertainty.intervals(rows)
    assert uncertainty.intervals(rows, seed=1) == uncertainty.intervals(rows, seed=1)
    assert uncertainty.intervals(rows, seed=1) != uncertainty.intervals(rows, seed=2)


def test_interval_widens_with_fewer_classes():
    many = uncertainty.intervals(classes_of_identical_items(400, 3))
    few = uncertainty.intervals(classes_of_identical_items(25, 3))
    for name in ("accuracy", "f1"):
        assert width(few[f"{name}_ci95"]) > 2 * width(many[f"{name}_ci95"]), name


def test_items_of_a_class_move_together():
    """Six identical items per class: resampling classes gives about sqrt(6) times the width
    of resampling items, which would treat them as six independent observations."""
    rows = classes_of_identical_items(100, 6)
    by_class = uncertainty.intervals(rows)
    by_item = uncertainty.intervals([{**r, "class_id": None} for r in rows])
    assert by_item["ci"]["cluster"].startswith("item") and by_item["ci"]["n_clusters"] == 600
    for name in ("accuracy", "f1"):
        ratio = width(by_class[f"{name}_ci95"]) / width(by_item[f"{name}_ci95"])
        assert 1.8 < ratio < 3.2, (name, ratio)  # sqrt(6) = 2.45


def test_resample_weights_draw_whole_classes():
    weights = uncertainty.resample_weights(7, resamples=50, seed=3)
    assert weights.shape == (50, 7)
    assert (weights.sum(axis=1) == 7).all()  # each resample draws as many classes as there are


def test_no_items_no_interval():
    result = uncertainty.intervals([])
    assert result["f1_ci95"] is None and result["ci"]["n_clusters"] == 0


def test_bootstrap_is_fast():
    rows = classes_of_identical_items(1162, 1)  # one item per class: 1,162 clusters
    start = time.perf_counter()
    uncertainty.intervals(rows, resamples=2000)
    assert time.perf_counter() - start < 1.0


def test_mcnemar_exact_by_hand():
    # 1 vs 9 discordant: 2 * P(X <= 1), X ~ Binomial(10, 1/2) = 2 * (1 + 10) / 1024
    assert uncertainty.mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert uncertainty.mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert uncertainty.mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert uncertainty.mcnemar_exact(3, 3) == 1.0  # capped at 1
    assert uncertainty.mcnemar_exact(0, 0) == 1.0


def test_paired_comparison_on_identical_items():
    a = classes_of_identical_items(60, 3, seed=1)
    b = [
        {**row, "answer": row["label"] if k % 4 else 1 - row["label"]}
        for k, row in enumerate(classes_of_identical_items(60, 3, seed=1))
    ]
    b_extra = [*reversed(b), {"id": "only-in-b", "class_id": "x", "label": 1, "answer": 1}]
    result = uncertainty.paired_comparison(a, b_extra)
    assert result["n"] == len(a) and result["n_clusters"] == 60  # joined by id, not position
    delta = compute_metrics(b)["f1"] - compute_metrics(a)["f1"]
    assert result["delta_f1"] == pytest.approx(delta)
    lo, hi = result["delta_f1_ci95"]
    assert lo <= delta <= hi
    a_right = {r["id"] for r in a if r["answer"] == r["label"]}
    b_right = {r["id"] for r in b if r["answer"] == r["label"]}
    assert result["a_only_correct"] == len(a_right - b_right)
    assert result["b_only_correct"] == len(b_right - a_right)
    expected = uncertainty.mcnemar_exact(len(a_right - b_right), len(b_right - a_right))
    assert result["mcnemar_p"] == expected
    same = uncertainty.paired_comparison(a, a)
    assert same["delta_f1"] == 0 and same["delta_f1_ci95"] == [0.0, 0.0]
    assert same["mcnemar_p"] == 1.0


def test_mean_of_one_run_is_the_paired_comparison():
    a = classes_of_identical_items(60, 3, seed=1)
    b = classes_of_identical_items(60, 3, seed=2)
    b = [{**row, "label": a[k]["label"]} for k, row in enumerate(b)]  # the same items
    single = uncertainty.paired_comparison(a, b)
    mean = uncertainty.mean_paired_comparison(a, [b])
    assert mean["runs"] == 1 and mean["n"] == single["n"] == len(a)
    assert mean["delta_f1"] == pytest.approx(single["delta_f1"])
    assert mean["delta_f1_ci95"] == pytest.approx(single["delta_f1_ci95"])
    assert mean["f1_runs"] == [pytest.approx(single["f1_b"])]


def test_mean_of_runs_averages_their_differences_on_shared_items():
    a = classes_of_identical_items(80, 3, seed=3)
    runs = []
    for flip in (3, 5, 7):  # three runs, each wrong on a different share of the items
        runs.append([
            {**row, "answer": row["label"] if k % flip else 1 - row["label"]}
            for k, row in enumerate(a)
        ])  # fmt: skip
    extra = {"id": "only-in-one-run", "class_id": "x", "label": 1, "answer": 1}
    result = uncertainty.mean_paired_comparison(a, [runs[0] + [extra], runs[1], runs[2]])
    assert result["n"] == len(a) and result["runs"] == 3  # the extra item is not shared
    f1_a = compute_metrics(a)["f1"]
    f1s = [compute_metrics(run)["f1"] for run in runs]
    assert result["f1_runs"] == pytest.approx(f1s)
    assert result["delta_f1_runs"] == pytest.approx([f - f1_a for f in f1s])
    assert result["delta_f1"] == pytest.approx(sum(f1s) / 3 - f1_a)
    lo, hi = result["delta_f1_ci95"]
    assert lo <= result["delta_f1"] <= hi and lo < hi
    lo, hi = result["mean_f1_ci95"]
    assert lo <= result["mean_f1"] <= hi
    # the mean's interval is no wider than the widest of the runs' own
    widths = [width(uncertainty.paired_comparison(a, run)["delta_f1_ci95"]) for run in runs]
    assert width(result["delta_f1_ci95"]) <= max(widths) + 1e-9


def test_mean_of_no_runs_is_refused():
    with pytest.raises(ValueError, match="at least one run"):
        uncertainty.mean_paired_comparison(classes_of_identical_items(5, 2), [])


def test_paired_comparison_refuses_items_whose_labels_differ():
    a = [{"id": "x", "label": 1, "answer": 1}]
    with pytest.raises(ValueError, match="'x' has label 1 and 0"):
        uncertainty.paired_comparison(a, [{"id": "x", "label": 0, "answer": 1}])


def test_formatting_carries_the_class_or_derives_it_from_the_premise(tmp_path):
    premise = "Suppose there is a closed system of 2 variables, A and B. A correlates with B."
    rows = [
        {"id": "g", "input": f"Premise: {premise}\nHypothesis: A causes B.", "label": 1,
         "class_id": "n2-c0001"},
        {"id": "p1", "input": f"Premise: {premise}\nHypothesis: A causes B.", "label": 1},
        {"id": "p2", "input": f"Premise: {premise}\nHypothesis: B causes A.", "label": 0},
        {"id": "odd", "input": "no premise here", "label": 0},
    ]  # fmt: skip
    write_jsonl(tmp_path / "test.jsonl", rows)
    read = {row["id"]: row["class_id"] for row in chat_format.read_rows(tmp_path / "test.jsonl")}
    assert read["g"] == "n2-c0001"
    assert read["p1"] == read["p2"] == class_id_of(premise)  # one premise, one class
    assert read["odd"] is None  # its own cluster in the bootstrap


def test_mean_of_paired_differences_averages_each_pairs_own_difference():
    a = classes_of_identical_items(80, 3, seed=3)

    def wrong_every(flip: int) -> list[dict]:
        return [
            {**r, "answer": r["label"] if k % flip else 1 - r["label"]} for k, r in enumerate(a)
        ]

    pairs = [(wrong_every(3), wrong_every(5)), (wrong_every(7), wrong_every(4))]
    result = uncertainty.mean_of_paired_differences(pairs)
    each = [compute_metrics(b)["f1"] - compute_metrics(x)["f1"] for x, b in pairs]
    assert result["runs"] == 2 and result["n"] == len(a)
    assert result["delta_f1_runs"] == pytest.approx(each)
    assert result["delta_f1"] == pytest.approx(sum(each) / 2)
    lo, hi = result["delta_f1_ci95"]
    assert lo <= result["delta_f1"] <= hi
    one = uncertainty.mean_of_paired_differences(pairs[:1])
    assert one["delta_f1_ci95"] == pytest.approx(
        uncertainty.paired_comparison(*pairs[0])["delta_f1_ci95"]
    )
    with pytest.raises(ValueError, match="at least one pair"):
        uncertainty.mean_of_paired_differences([])
