"""Stage and summary reports: every given cell shown, missing cells named, plots written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from eval_helpers import MISSING, REPORT_RELATIONS, TEST_SETS

from rlcausality.reporting import plots, report


def test_summary_lists_every_cell_and_the_missing_one(built):
    html = (built["out"] / "summary.html").read_text()
    md = (built["out"] / "summary.md").read_text()
    for text in (html, md):
        for path in built["metrics"]:
            cell = json.loads(Path(path).read_text())
            assert f"{cell['model']} / {cell['stage']} / {cell['test_set']}" in text
            assert f"{cell['f1']:.3f}" in text
        assert "NOT BUILT: 1 of 18 expected" in text
        assert ":".join(MISSING) in text
        assert "random at prior (expected)" in text and "exact symbolic reasoner" in text
        assert "0f0f0f0f0f0f0f0f" in text  # the settings hash, in the provenance table
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert html.count("data:image/png;base64,") == 4
    assert "http://" not in html and "https://" not in html  # self-contained
    assert "](plots/f1_by_stage.png)" in md


def test_every_number_is_in_one_tidy_table_the_summary_shows(built):
    """results/reports/metrics.tsv: one pd.read_csv gives every metric with its interval, n and
    classes; the summary's tables are built from it, so their numbers are its numbers."""
    import pandas as pd

    frame = pd.read_csv(built["out"] / "metrics.tsv", sep="\t")
    assert list(frame.columns) == [
        "model", "stage", "test_set", "metric", "value", "ci_low", "ci_high", "n", "classes",
    ]  # fmt: skip
    cells = frame[frame.model != "baseline"]
    assert len(cells.groupby(["model", "stage", "test_set"])) == len(built["metrics"])
    md = (built["out"] / "summary.md").read_text()
    for path in built["metrics"]:
        cell = json.loads(Path(path).read_text())
        key = (cell["model"], cell["stage"], cell["test_set"], "f1")
        row = frame.set_index(["model", "stage", "test_set", "metric"]).loc[key]
        assert row.value == pytest.approx(cell["f1"])
        assert [row.ci_low, row.ci_high] == pytest.approx(cell["f1_ci95"])
        assert row.n == cell["n"]
        # the summary shows the table's value and interval
        shown = f"{row.value:.3f} [{row.ci_low:.2f}, {row.ci_high:.2f}]"
        assert shown in md, shown
    baselines = frame[frame.model == "baseline"]
    assert {"always_valid", "symbolic"} <= set(baselines.stage)
    assert set(baselines.test_set) == set(TEST_SETS)


def test_summary_plots_written(built):
    plots = built["out"] / "plots"
    for name in ("f1_by_stage", "relation_f1_heatmap", "robustness", "training_curves"):
        data = (plots / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_all_built_says_so(tmp_path, built):
    one = built["metrics"][0]
    cell = json.loads(one.read_text())
    expected = f"{cell['model']}:{cell['stage']}:{cell['test_set']}"
    report.main(
        ["summary", "--metrics", str(one), "--expected", expected,
         "--out-html", str(tmp_path / "s.html"), "--out-md", str(tmp_path / "s.md"),
         "--plots-dir", str(tmp_path / "plots")]
    )  # fmt: skip
    assert "All 1 expected cells were built." in (tmp_path / "s.md").read_text()
    assert "NOT BUILT" not in (tmp_path / "s.html").read_text()


def test_stage_report(built):
    html = (built["out"] / "qwen-test" / "sft.html").read_text()
    for test in TEST_SETS:
        assert f"Test set {test}" in html
    assert "Confusion matrix" in html and "By relation" in html
    assert "By number of variables" in html and "confounder" in html
    assert "learning_rate" in html and "1234abcd5678ef90" in html
    assert html.count("data:image/png;base64,") == 1  # the SFT loss curve, from the manifest


def test_stage_report_shows_right_and_wrong_answers_per_relation(built):
    from rlcausality.reporting.examples import PER_KIND

    html = (built["out"] / "qwen-test" / "sft.html").read_text()
    for test in TEST_SETS:
        assert f"Right (green) and wrong (red) answers per relation on {test}" in html
    table = html.split("answers per relation on test,")[1].split("</table>")[0]
    rows = re.findall(
        r'<tr class="(good|bad)"><td>([^<]*)</td><td class="text">([^<]*)</td>', table
    )
    for relation in {r for _, r, _ in rows}:
        kinds = [kind for kind, r, _ in rows if r == relation]
        assert kinds.count("good") == kinds.count("bad") == PER_KIND, (relation, kinds)
    assert {r for _, r, _ in rows} == set(REPORT_RELATIONS)


def test_log_history_argument():
    assert report.parse_log_history_arg("m:sft=x/y.json") == ("m", "sft", Path("x/y.json"))
    path = "results/models/qwen/grpo/log_history.json"
    assert report.parse_log_history_arg(path) == ("qwen", "grpo", Path(path))
    steps, values = plots.curve_series([{"loss": 1.0, "step": 1}, {"step": 2}], "loss")
    assert steps == [1] and values == [1.0]
    with pytest.raises(ValueError, match="MODEL:STAGE:TESTSET"):
        report.parse_expected(["a:b"])


def test_nothing_built_yet(tmp_path):
    out = tmp_path / "reports"
    report.main(
        ["summary", "--metrics", "--baselines", "--log-history",
         str(tmp_path / "models" / "m" / "sft" / "log_history.json"),
         "--expected", "m:base:test", "m:sft:test", "--out-html", str(out / "summary.html"),
         "--out-md", str(out / "summary.md"), "--plots-dir", str(out / "plots")]
    )  # fmt: skip
    html = (out / "summary.html").read_text()
    assert "NOT BUILT: 2 of 2 expected" in html and "m:base:test, m:sft:test" in html
    assert "No training log history for: m:sft" in html
    assert "no data to plot" in html
    assert (out / "plots").is_dir()


def test_reports_show_the_truncation_rate(tmp_path, built):
    one = built["metrics"][0]
    cell = json.loads(one.read_text())
    cell.update({"truncated": 30, "truncation_rate": 0.25})
    one = tmp_path / "metrics.json"
    one.write_text(json.dumps(cell))
    report.main(
        ["summary", "--metrics", str(one), "--out-html", str(tmp_path / "s.html"),
         "--out-md", str(tmp_path / "s.md"), "--plots-dir", str(tmp_path / "plots")]
    )  # fmt: skip
    md = (tmp_path / "s.md").read_text()
    assert "| truncated |" in md and "| 0.250 |" in md
    report.main(["stage", "--metrics", str(one), "--out", str(tmp_path / "stage.html")])
    html = (tmp_path / "stage.html").read_text()
    assert "<th>truncated</th>" in html and "0.250" in html


CI = re.compile(r"\d\.\d{3} \[-?\d\.\d{2}, -?\d\.\d{2}\]")


def test_reports_show_each_metric_with_its_interval(built):
    md = (built["out"] / "summary.md").read_text()
    html = (built["out"] / "qwen-test" / "sft.html").read_text()
    for path in built["metrics"][:3]:
        cell = json.loads(Path(path).read_text())
        lo, hi = cell["f1_ci95"]
        assert f"{cell['f1']:.3f} [{lo:.2f}, {hi:.2f}]" in md
    row = next(line for line in md.splitlines() if line.startswith("| qwen-test / sft / test |"))
    assert len(CI.findall(row)) == 4  # accuracy, precision, recall, F1
    assert row.startswith("| qwen-test / sft / test | 120 | 20 |")  # items, classes (6 each)
    assert len(CI.findall(html)) >= 12  # the overview: four metrics on three test sets
    assert "bootstrap intervals" in md and "equivalence classes" in md


def test_summary_pairs_stages_and_the_best_baseline(built):
    md = (built["out"] / "summary.md").read_text()
    assert "## Paired comparisons" in md
    rows = [line for line in md.splitlines() if line.startswith(("| qwen-test |", "| phi-test |"))]
    comparisons = {tuple(cell.strip() for cell in line.split("|")[1:4]) for line in rows}
    best = json.loads(Path(built["baselines"][0]).read_text())["best_competitor"]
    assert best in ("majority", "always_valid", "relation_prior")
    for model in ("qwen-test", "phi-test"):
        assert (model, "test", "sft vs base") in comparisons
        assert (model, "test", "grpo vs sft") in comparisons
        assert any(c[:2] == (model, "test") and "vs best baseline" in c[2] for c in comparisons)
    assert ("phi-test", "test_refactored", "grpo vs sft") not in comparisons  # not built
    assert not any("symbolic" in c[2] for c in comparisons)  # the oracle is no competitor
    line = next(r for r in rows if r.startswith("| qwen-test | test | sft vs base |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[3] == "120" and CI.fullmatch(cells[4].lstrip("-"))
    assert 0 <= float(cells[5]) <= 1 and re.fullmatch(r"\d+ / \d+", cells[6])


def test_predictions_must_lie_beside_their_metrics(tmp_path, built):
    stray = tmp_path / "predictions.jsonl"
    stray.write_text("")
    with pytest.raises(ValueError, match="no metrics file of --metrics lies beside it"):
        report.main(
            ["summary", "--metrics", str(built["metrics"][0]), "--predictions", str(stray),
             "--out-html", str(tmp_path / "s.html"), "--out-md", str(tmp_path / "s.md"),
             "--plots-dir", str(tmp_path / "plots")]
        )  # fmt: skip


def test_every_logged_reward_gets_its_curve() -> None:
    from rlcausality.reporting.plots import curve_panels

    grpo = [{"step": 1, "reward": 0.5, "rewards/correctness/mean": 0.4,
             "rewards/brevity/mean": 0.9}]  # fmt: skip
    panels = curve_panels({("m", "sft"): [{"step": 1, "loss": 2.0}], ("m", "grpo"): grpo})
    assert [key for _, key, _ in panels] == [
        "loss", "reward", "rewards/brevity/mean", "rewards/correctness/mean",
    ]  # fmt: skip
    assert panels[2][2] == "GRPO brevity reward"
