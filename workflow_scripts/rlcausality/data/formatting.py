"""The format job: a corpus split formatted for one model (``rlcausality.data.chat_format``),
sampled and measured (``rlcausality.data.sampling``), with its length statistics.

CLI::

    python -m rlcausality.data.formatting --settings JSON --fmt sft|grpo|trace --input SPLIT.jsonl \
        --output OUT.jsonl --stats OUT_STATS.json [--max-samples N] [--exclude ROWS.jsonl] \
        [--keep-long] [--threads N]

``--exclude`` leaves out the rows whose ids another formatted file holds (GRPO's prompts drawn
from the train rows SFT's sample does not hold: ``format.grpo_prompts: unseen``). Settings with
``format.grpo_relations`` (GRPO's train prompts get it: ``config.format_settings``) keep the rows
of those relations alone.
"""

from __future__ import annotations

from rlcausality.data.chat_format import FORMAT_PROMPTS, read_rows
from rlcausality.data.sampling import format_split, of_relations, without_rows_of
from rlcausality.io import write_json, write_jsonl
from rlcausality.models.loading import load_tokenizer
from rlcausality.settings import cli


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser(__doc__, "JSON: stage_settings(..., 'format')")
    parser.add_argument("--fmt", required=True, choices=sorted(FORMAT_PROMPTS))
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--max-samples", type=int, default=None, help="cap; 0 means none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exclude", default=None, help="formatted rows (JSONL) whose ids are left out"
    )
    parser.add_argument(
        "--keep-long", action="store_true", help="keep rows over max_length (test sets)"
    )
    args = cli.configure(parser.parse_args(argv), needs=("format",))
    settings = args.settings
    rows = read_rows(args.input)
    read = len(rows)
    if args.exclude:
        rows = without_rows_of(rows, args.exclude)
    unexcluded = len(rows)
    relations = settings.format.grpo_relations
    if relations:
        rows = of_relations(rows, relations, args.input)
    tokenizer = load_tokenizer(settings.model)
    cap = args.max_samples if args.max_samples and args.max_samples > 0 else None
    out_rows, stats = format_split(
        rows, settings, args.fmt, tokenizer, cap, args.seed, drop_long=not args.keep_long
    )
    stats["input"] = args.input
    if args.exclude:
        stats["excluded"] = {"rows_of": args.exclude, "rows": read - unexcluded}
    if relations:
        stats["of_relations"] = {"relations": list(relations), "rows": len(rows)}
    write_jsonl(args.output, out_rows)
    write_json(args.stats, stats)


if __name__ == "__main__":
    cli.entry(main)
