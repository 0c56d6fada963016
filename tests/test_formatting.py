"""Chat formatting: row shapes, system-prompt rules, length filter, sampling, stats, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlcausality import task
from rlcausality.data import chat_format, formatting
from rlcausality.data.corr2cause import symbolic
from rlcausality.io import DataError, read_jsonl, write_jsonl


def run_cli(settings: dict[str, Any], fmt: str, src: Path, out: Path, *extra: str) -> dict:
    formatting.main(
        [
            "--settings", json.dumps(settings),
            "--fmt", fmt,
            "--input", str(src),
            "--output", str(out),
            "--stats", str(out.with_suffix(".stats.json")),
            *extra,
        ]
    )  # fmt: skip
    return json.loads(out.with_suffix(".stats.json").read_text())


def test_sft_rows(formatted: dict[str, Path], data_dir: Path) -> None:
    source = list(read_jsonl(data_dir / "train.jsonl"))
    rows = list(read_jsonl(formatted["train.sft"]))
    assert len(rows) == len(source)
    first, raw = rows[0], source[0]
    assert [m["role"] for m in first["prompt"]] == ["user"]
    assert first["prompt"][0]["content"] == task.USER_SFT.format(input=raw["input"])
    assert first["completion"] == [
        {"role": "assistant", "content": "Yes" if raw["label"] == 1 else "No"}
    ]
    carried = ("label", "id", "relation", "num_variables", "class_id")
    assert {k: first[k] for k in carried} == {k: raw[k] for k in carried}


def test_grpo_rows(formatted: dict[str, Path], data_dir: Path) -> None:
    raw = next(read_jsonl(data_dir / "train.jsonl"))
    row = next(read_jsonl(formatted["train.grpo"]))
    assert "completion" not in row
    content = row["prompt"][-1]["content"]
    assert content == task.USER_GRPO.format(input=raw["input"])
    assert content.startswith("You are an expert in causal reasoning.")
    assert content.endswith(
        "Begin your response with <think> and provide detailed step-by-step reasoning:"
    )
    assert '"Therefore: Yes" or "Therefore: No"' in content


@pytest.mark.parametrize(
    ("family", "system_prompt", "expected"),
    [
        ("qwen2", None, None),
        ("qwen2", "Be brief.", "Be brief."),
        ("phi3", "Be brief.", "Be brief."),
        ("qwen2-r1", "Be brief.", None),  # R1-Distill takes no system turn
        ("llama", "Be brief.", "Be brief."),
    ],
)
def test_system_prompt_rules(
    model_factory, typed_model, family: str, system_prompt: str | None, expected: str | None
) -> None:
    settings = typed_model(model_factory("x", family=family, system_prompt=system_prompt))
    prompt = chat_format.build_prompt(settings, "P", "sft")
    if expected is None:
        assert [m["role"] for m in prompt] == ["user"]
    else:
        assert prompt[0] == {"role": "system", "content": expected}
        assert prompt[1]["role"] == "user"


def test_stats_and_length_filter(tiny_model: dict, data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "train.jsonl"
    full = run_cli(
        {"model": tiny_model, "format": {"max_length": 4096}}, "sft", src, tmp_path / "a.jsonl"
    )
    assert full["rows_in"] == full["rows_out"] == 320
    assert full["dropped_too_long"] == 0
    assert full["labels"]["yes"] + full["labels"]["no"] == 320
    assert set(full["length_all"]) == {"p50", "p90", "p99", "max"}
    assert full["length_all"]["p50"] <= full["length_all"]["p90"] <= full["length_all"]["max"]
    assert sum(full["relations"].values()) == 320

    limit = full["length_all"]["p50"]
    cut = run_cli(
        {"model": tiny_model, "format": {"max_length": limit}}, "sft", src, tmp_path / "b.jsonl"
    )
    assert cut["dropped_too_long"] > 0
    assert cut["rows_out"] == 320 - cut["dropped_too_long"]
    assert cut["length_out"]["max"] <= limit
    assert len(list(read_jsonl(tmp_path / "b.jsonl"))) == cut["rows_out"]

    grpo = run_cli(
        {"model": tiny_model, "format": {"max_length": 4096}}, "grpo", src, tmp_path / "g.jsonl"
    )
    assert grpo["length_all"]["p50"] > full["length_all"]["p50"]  # longer instructions


def test_max_samples_is_seeded_and_keeps_order(
    tiny_model: dict, data_dir: Path, tmp_path: Path
) -> None:
    settings = {"model": tiny_model, "format": {"max_length": 4096}}
    src = data_dir / "train.jsonl"
    uncapped = run_cli(settings, "sft", src, tmp_path / "all.jsonl", "--max-samples", "0")
    assert uncapped["rows_out"] == 320 and uncapped["max_samples"] is None  # 0: no cap
    stats = run_cli(settings, "sft", src, tmp_path / "a.jsonl", "--max-samples", "50")
    run_cli(settings, "sft", src, tmp_path / "b.jsonl", "--max-samples", "50")
    assert stats["rows_out"] == 50 and stats["dropped_by_cap"] == 270
    first = [r["id"] for r in read_jsonl(tmp_path / "a.jsonl")]
    assert first == [r["id"] for r in read_jsonl(tmp_path / "b.jsonl")]
    order = [r["id"] for r in read_jsonl(src)]
    assert first == sorted(first, key=order.index)


def test_token_lengths_use_the_chat_template(tiny_model: dict, typed_model, rows_factory) -> None:
    from rlcausality.models.loading import load_tokenizer

    tokenizer = load_tokenizer(typed_model(tiny_model))
    row = chat_format.format_row(rows_factory(1, seed=5)[0], typed_model(tiny_model), "sft")
    text = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert chat_format.token_lengths(tokenizer, [row], "sft") == [expected]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("label"), r"bad\.jsonl:3: missing column\(s\) label"),
        (lambda r: r.update(label=2), r"bad\.jsonl:3: label must be 0 or 1, got 2"),
        (lambda r: r.pop("input"), r"bad\.jsonl:3: missing column\(s\) input"),
    ],
)
def test_bad_rows_name_file_and_line(
    tiny_model: dict, tmp_path: Path, rows_factory, change, message: str
) -> None:
    rows = rows_factory(4, seed=3)
    change(rows[2])
    src = tmp_path / "bad.jsonl"
    write_jsonl(src, rows)
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=message):
        run_cli({"model": tiny_model, "format": {"max_length": 4096}}, "sft", src, out)
    assert not out.exists()
    assert not out.with_suffix(".stats.json").exists()


def test_invalid_json_names_line(tmp_path: Path, rows_factory) -> None:
    src = tmp_path / "broken.jsonl"
    src.write_text(json.dumps(rows_factory(1, seed=3)[0]) + "\n\n{not json\n")
    with pytest.raises(DataError, match=r"broken\.jsonl:3"):
        chat_format.read_rows(src)


def test_balance_gives_equal_labels_repeating_the_rare_one(
    tiny_model: dict, rows_factory, tmp_path: Path
) -> None:
    rows = rows_factory(60, seed=3, prefix="skew")
    for index, row in enumerate(rows):
        row["label"] = 1 if index < 5 else 0  # 5 Yes, 55 No: like Corr2Cause, Yes is rare
    src = tmp_path / "skewed.jsonl"
    write_jsonl(src, rows)
    settings = {"model": tiny_model, "format": {"max_length": 4096, "balance": True}}
    stats = run_cli(settings, "sft", src, tmp_path / "a.jsonl", "--max-samples", "40")
    out = list(read_jsonl(tmp_path / "a.jsonl"))
    assert stats["balance"] is True
    assert stats["labels"] == {"yes": 20, "no": 20} and len(out) == 40
    yes_ids = [r["id"] for r in out if r["label"] == 1]
    assert sorted(set(yes_ids)) == [f"skew{i}" for i in range(5)]
    assert all(yes_ids.count(i) == 4 for i in set(yes_ids))  # every Yes row 4 times
    no_ids = [r["id"] for r in out if r["label"] == 0]
    assert len(set(no_ids)) == 20  # No rows are distinct
    assert stats["distinct_rows"] == 25 and stats["repeated_rows"] == 15
    assert stats["dropped_by_cap"] == 35
    again = run_cli(settings, "sft", src, tmp_path / "b.jsonl", "--max-samples", "40")
    assert again["labels"] == stats["labels"]
    assert [r["id"] for r in read_jsonl(tmp_path / "b.jsonl")] == [r["id"] for r in out]

    # Uneven repetition: 7 Yes rows from 5 distinct ones (each once, two of them twice).
    small = run_cli(settings, "sft", src, tmp_path / "c.jsonl", "--max-samples", "14")
    assert small["labels"] == {"yes": 7, "no": 7}
    small_yes = [r["id"] for r in read_jsonl(tmp_path / "c.jsonl") if r["label"] == 1]
    assert len(set(small_yes)) == 5 and sorted(map(small_yes.count, set(small_yes))) == [
        1, 1, 1, 2, 2
    ]  # fmt: skip

    # Without a cap (test and validation splits) the labels stay as they are.
    natural = run_cli(settings, "sft", src, tmp_path / "d.jsonl", "--max-samples", "0")
    assert natural["balance"] is False and natural["labels"] == {"yes": 5, "no": 55}


def test_relation_balance_gives_each_relation_an_equal_share_half_yes(
    tiny_model: dict, rows_factory, tmp_path: Path
) -> None:
    """``balance: relation``: every relation the same number of rows, half Yes and half No
    where it has both labels (the rare ones repeated), all No where it has no Yes row."""
    rows = rows_factory(90, seed=3, prefix="rel")
    for index, row in enumerate(rows):
        row["relation"] = ("collider", "parent", "child")[index % 3]
        # collider: 8 Yes of 30; parent: 2 Yes of 30; child: none, as in Corr2Cause
        row["label"] = int(row["relation"] == "collider" and index < 24) + int(
            row["relation"] == "parent" and index < 6
        )
    src = tmp_path / "relations.jsonl"
    write_jsonl(src, rows)
    settings = {"model": tiny_model, "format": {"max_length": 4096, "balance": "relation"}}
    stats = run_cli(settings, "sft", src, tmp_path / "a.jsonl", "--max-samples", "31")
    out = list(read_jsonl(tmp_path / "a.jsonl"))
    assert stats["balance"] == "relation" and len(out) == 31
    cells: dict[tuple[str, int], list[str]] = {}
    for row in out:
        cells.setdefault((row["relation"], row["label"]), []).append(row["id"])
    counts = {cell: len(ids) for cell, ids in cells.items()}
    # 31 = 11 (child, first in name order) + 10 + 10
    assert counts == {("child", 0): 11, ("collider", 1): 5, ("collider", 0): 5,
                      ("parent", 1): 5, ("parent", 0): 5}  # fmt: skip
    assert len(set(cells["parent", 1])) == 2  # its 2 Yes rows repeated: 3 and 2 times
    assert stats["relations"] == {"child": 11, "collider": 10, "parent": 10}
    again = run_cli(settings, "sft", src, tmp_path / "b.jsonl", "--max-samples", "31")
    assert [r["id"] for r in read_jsonl(tmp_path / "b.jsonl")] == [r["id"] for r in out]
    assert again["labels"] == stats["labels"] == {"yes": 10, "no": 21}


def test_balance_needs_both_labels(tiny_model: dict, rows_factory, tmp_path: Path) -> None:
    rows = rows_factory(10, seed=4, prefix="no")
    for row in rows:
        row["label"] = 0
    src = tmp_path / "all_no.jsonl"
    write_jsonl(src, rows)
    settings = {"model": tiny_model, "format": {"max_length": 4096, "balance": True}}
    with pytest.raises(DataError, match="balance"):
        run_cli(settings, "sft", src, tmp_path / "a.jsonl", "--max-samples", "4")


def test_balance_needs_a_train_cap_in_config() -> None:
    import yaml

    from rlcausality.settings.config import ConfigError
    from rlcausality.settings.validation import validate_config

    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    config["models"]["tiny"]["format"].update(balance=True, max_train_samples=None)
    with pytest.raises(ConfigError, match=r"models\.tiny\.format\.balance: true needs"):
        validate_config(config)
    config["models"]["tiny"]["format"].update(balance=False, grpo_balance=True)
    with pytest.raises(ConfigError, match=r"models\.tiny\.format\.grpo_balance: true needs"):
        validate_config(config)
    config["models"]["tiny"]["format"].update(grpo_balance="relation")
    with pytest.raises(ConfigError, match=r"format\.grpo_balance: relation needs"):
        validate_config(config)
    config["models"]["tiny"]["format"]["balance"] = "by relation"
    with pytest.raises(ConfigError, match=r"format.*balance"):
        validate_config(config)
    config["models"]["tiny"]["format"].update(balance="relation", max_train_samples=64)
    validate_config(config)


def test_grpo_balance_and_relations_decide_grpo_train_prompts_alone() -> None:
    """``format.grpo_balance`` is ``balance`` in the params of GRPO's train format job and in no
    other job's: SFT's rows and the test sets keep ``balance``, whatever it says; likewise only
    that job gets ``format.grpo_relations``."""
    import yaml

    from rlcausality.settings.config import format_settings, stage_settings
    from rlcausality.settings.validation import validate_config

    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    config["models"]["tiny"]["format"].update(balance=True, max_train_samples=64)
    validate_config(config)
    jobs = [("sft", "train"), ("grpo", "train"), ("grpo", "test"), ("trace", "train")]
    before = {job: format_settings(config, "tiny", *job) for job in jobs}
    assert all(params == stage_settings(config, "tiny", "format") for params in before.values())
    assert "grpo_balance" not in before["grpo", "train"]["format"]

    config["models"]["tiny"]["format"]["grpo_balance"] = False
    validate_config(config)
    after = {job: format_settings(config, "tiny", *job) for job in jobs}
    changed = [job for job in jobs if after[job] != before[job]]
    assert changed == [("grpo", "train")]
    assert after["grpo", "train"]["format"]["balance"] is False
    assert after["sft", "train"]["format"]["balance"] is True

    config["models"]["tiny"]["format"]["grpo_relations"] = ["collider"]
    validate_config(config)
    relations = {job: format_settings(config, "tiny", *job) for job in jobs}
    assert [job for job in jobs if relations[job] != after[job]] == [("grpo", "train")]
    assert relations["grpo", "train"]["format"]["grpo_relations"] == ["collider"]

    config["models"]["tiny"]["format"].update(sft_target="trace", trace_lookup=["collider"])
    config["models"]["tiny"]["evaluate"] = {"prompt": {"sft": "grpo"}}
    validate_config(config)
    checked = {job: format_settings(config, "tiny", *job) for job in jobs}
    assert checked["trace", "train"]["format"]["trace_lookup"] == ["collider"]
    assert all("trace_lookup" not in checked[job]["format"] for job in jobs[:3])


def test_exclude_leaves_out_another_samples_rows(
    tiny_model: dict, rows_factory, tmp_path: Path
) -> None:
    """``--exclude`` (format.grpo_prompts: unseen): GRPO's sample holds no row of SFT's."""
    rows = rows_factory(60, seed=5, prefix="r")
    for index, row in enumerate(rows):
        row["label"] = int(index % 4 == 0)  # 15 Yes, 45 No
    src = tmp_path / "train.jsonl"
    write_jsonl(src, rows)
    settings = {"model": tiny_model, "format": {"max_length": 4096, "balance": True}}
    run_cli(settings, "sft", src, tmp_path / "sft.jsonl", "--max-samples", "20")
    sft_ids = {r["id"] for r in read_jsonl(tmp_path / "sft.jsonl")}
    assert len(sft_ids) == 20
    stats = run_cli(
        settings, "grpo", src, tmp_path / "grpo.jsonl", "--max-samples", "20",
        "--exclude", str(tmp_path / "sft.jsonl"),
    )  # fmt: skip
    grpo_ids = [r["id"] for r in read_jsonl(tmp_path / "grpo.jsonl")]
    assert not sft_ids & set(grpo_ids)
    assert stats["excluded"] == {"rows_of": str(tmp_path / "sft.jsonl"), "rows": 20}
    assert stats["labels"] == {"yes": 10, "no": 10} and len(set(grpo_ids)) == 15  # 5 Yes left

    everything = tmp_path / "all.jsonl"
    write_jsonl(everything, rows)
    with pytest.raises(DataError, match=r"all\.jsonl: its 60 ids cover all 60 rows"):
        run_cli(settings, "grpo", src, tmp_path / "x.jsonl", "--exclude", str(everything))
    no_id = tmp_path / "no_id.jsonl"
    write_jsonl(no_id, [{"input": "P"}])
    with pytest.raises(DataError, match=r"no_id\.jsonl:1: row has no 'id'"):
        run_cli(settings, "grpo", src, tmp_path / "y.jsonl", "--exclude", str(no_id))


def test_grpo_relations_keep_the_rows_of_those_relations(
    tiny_model: dict, rows_factory, tmp_path: Path
) -> None:
    """Settings with ``format.grpo_relations`` (GRPO's train format job gets it) keep those
    relations' rows alone, after ``--exclude``; none left is an error naming the input."""
    rows = rows_factory(60, seed=5, prefix="r")
    src = tmp_path / "train.jsonl"
    write_jsonl(src, rows)
    relations = sorted({row["relation"] for row in rows})[:2]
    settings = {"model": tiny_model, "format": {"max_length": 4096, "grpo_relations": relations}}
    wanted = [row for row in rows if row["relation"] in relations]
    assert 0 < len(wanted) < len(rows)
    stats = run_cli(settings, "grpo", src, tmp_path / "g.jsonl")
    kept = list(read_jsonl(tmp_path / "g.jsonl"))
    assert [row["id"] for row in kept] == [row["id"] for row in wanted]
    assert stats["of_relations"] == {"relations": relations, "rows": len(wanted)}
    assert set(stats["relations"]) == set(relations)

    write_jsonl(src, [row for row in rows if row["relation"] not in relations])
    with pytest.raises(DataError, match=r"train\.jsonl: none of its \d+ rows .* has a relation"):
        run_cli(settings, "grpo", src, tmp_path / "x.jsonl")


def test_unseen_grpo_prompts_need_a_cap_and_both_stages() -> None:
    import yaml

    from rlcausality.settings.config import ConfigError
    from rlcausality.settings.validation import validate_config

    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    fmt = config["models"]["tiny"]["format"]
    fmt.update(grpo_prompts="unseen", max_train_samples=None)
    with pytest.raises(ConfigError, match=r"models\.tiny\.format\.grpo_prompts: unseen needs"):
        validate_config(config)
    fmt["max_train_samples"] = 64
    config["models"]["tiny"]["stages"] = ["base", "grpo"]
    with pytest.raises(ConfigError, match=r"needs both sft\s+and grpo in stages"):
        validate_config(config)
    del config["models"]["tiny"]["stages"]
    validate_config(config)


def corpus_rows(count: int) -> list[dict[str, Any]]:
    """Real corpus items (N = 2..4), a premise no DAG satisfies appended."""
    from rlcausality.data.corr2cause.generate import generate_corpus

    rows = generate_corpus({"num_variables": [2, 4], "robustness": False})["train"][:count]
    source = next(row for row in rows if "A correlates with B." in row["input"])
    bad = dict(source, id="inconsistent")  # A correlates with B, and is independent of it
    bad["input"] = source["input"].replace("\nHypothesis:", " A is independent of B.\nHypothesis:")
    return [*rows, bad]


def test_trace_rows_teach_the_reasoning_format(
    tiny_model: dict, tmp_path: Path, make_settings
) -> None:
    rows = corpus_rows(40)
    write_jsonl(tmp_path / "train.jsonl", rows)
    settings = {"model": tiny_model, "format": {"max_length": 4096, "max_train_samples": None}}
    stats = run_cli(settings, "trace", tmp_path / "train.jsonl", tmp_path / "trace.jsonl")
    out = list(read_jsonl(tmp_path / "trace.jsonl"))
    assert stats["no_trace"] == 1 and stats["rows_out"] == len(out) == 40
    assert "inconsistent" not in {row["id"] for row in out}
    for raw, row in zip(rows, out, strict=False):
        assert row["prompt"][-1]["content"] == task.USER_GRPO.format(input=raw["input"])
        text = row["completion"][0]["content"]
        assert task.follows_reasoning_format(text)
        assert task.parse_answer(text, style="reasoning") == raw["label"]
    grpo_stats = run_cli(settings, "grpo", tmp_path / "train.jsonl", tmp_path / "grpo.jsonl")
    grpo = list(read_jsonl(tmp_path / "grpo.jsonl"))
    assert grpo_stats["no_trace"] == 0 and len(grpo) == 41  # GRPO keeps every prompt
    assert grpo[-1]["trace"] is None
    assert [row["trace"] for row in grpo[:-1]] == [
        row["completion"][0]["content"].removeprefix("<think>").split("</think>")[0] for row in out
    ]


def test_lookup_check_writes_the_trace_rows_alone(tiny_model: dict, tmp_path: Path) -> None:
    """``format.trace_lookup``: SFT's trace completions of those relations spell the Check's
    lookup before the verdict, the others' do not; GRPO's rows keep the plain oracle trace
    (the lists the rewards read)."""
    rows = corpus_rows(40)
    write_jsonl(tmp_path / "train.jsonl", rows)
    lookup = ["collider", "non-parent ancestor"]
    fmt = {"max_length": 4096, "max_train_samples": None, "trace_lookup": lookup}
    settings = {"model": tiny_model, "format": fmt}
    run_cli(settings, "trace", tmp_path / "train.jsonl", tmp_path / "trace.jsonl")
    run_cli(settings, "grpo", tmp_path / "train.jsonl", tmp_path / "grpo.jsonl")
    plain = dict(settings, format=dict(fmt, trace_lookup=None))
    run_cli(plain, "grpo", tmp_path / "train.jsonl", tmp_path / "grpo_plain.jsonl")
    for raw, row in zip(rows, read_jsonl(tmp_path / "trace.jsonl"), strict=False):
        text = row["completion"][0]["content"]
        derivation = symbolic.derive(raw["input"])
        assert text == task.trace_completion(task.trace_body(derivation, lookup), raw["label"])
        assert (" ~> " in text) == (raw["relation"] in lookup)
        assert task.parse_answer(text, style="reasoning") == raw["label"]
    assert any(" ~> " in row["completion"][0]["content"]
               for row in read_jsonl(tmp_path / "trace.jsonl"))  # fmt: skip
    assert list(read_jsonl(tmp_path / "grpo.jsonl")) == list(
        read_jsonl(tmp_path / "grpo_plain.jsonl")
    )


def test_trace_lookup_needs_trace_targets() -> None:
    import yaml

    from rlcausality.settings.config import ConfigError
    from rlcausality.settings.validation import validate_config

    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    config["models"]["tiny"]["format"] = {"sft_target": "answer", "trace_lookup": ["collider"]}
    with pytest.raises(ConfigError, match=r"models\.tiny\.format\.trace_lookup: \['collider'\]"):
        validate_config(config)
    config["models"]["tiny"]["format"] = {"trace_lookup": ["common effect"]}
    with pytest.raises(ConfigError, match=r"trace_lookup"):
        validate_config(config)


def test_trace_rows_of_a_think_opening_template(tiny_model: dict, typed_model) -> None:
    rows = corpus_rows(40)[:4]
    model = typed_model(dict(tiny_model, family="qwen2-r1"))
    out = [chat_format.format_row(row, model, "trace") for row in rows]
    for row in out:
        assert row is not None
        text = row["completion"][0]["content"]
        assert not text.startswith("<think>")  # the template opens it
        assert task.follows_reasoning_format(text, think_opened=True)


def test_trace_target_needs_the_reasoning_prompt_in_evaluation() -> None:
    import yaml

    from rlcausality.settings.config import ConfigError
    from rlcausality.settings.validation import validate_config

    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    config["models"]["tiny"]["format"] = {"sft_target": "trace"}
    config["models"]["tiny"]["evaluate"] = {"prompt": {"base": "sft", "sft": "sft", "grpo": "grpo"}}
    with pytest.raises(ConfigError, match=r"models\.tiny\.evaluate\.prompt\.sft"):
        validate_config(config)
    config["models"]["tiny"]["evaluate"]["prompt"]["sft"] = "grpo"
    validate_config(config)


@pytest.mark.parametrize("fmt", ["sft", "grpo"])
def test_the_hypothesis_is_read_back_from_a_formatted_prompt(
    model_factory, typed_model, fmt: str
) -> None:
    """Evaluation's predictions name the item's hypothesis (the reports' examples) from the
    formatted row's prompt, which is all a formatted row carries of the item's text."""
    from rlcausality.evaluation.evaluate import prompt_text
    from rlcausality.task import hypothesis_of

    settings = typed_model(model_factory("x", family="qwen2"))
    text = "Premise: A correlates with B.\nHypothesis: A directly causes B."
    prompt = chat_format.build_prompt(settings, text, fmt)
    assert hypothesis_of(prompt_text(prompt)) == "A directly causes B."
