"""The task's wording, in one place: what the model is told, and how its answer is read.

Formatting (prompts and SFT targets), the GRPO rewards, evaluation, the tiny model's tokenizer
and the GGUF conversion check all import from here; nothing here imports the project.

Prompts: ``SYSTEM_PROMPT`` (where a family takes the task's own system turn), ``USER_TEMPLATES``
per prompt style (``sft``: answer with one word; ``grpo``: reason in ``<think>`` tags, then
``Therefore: Yes|No``), ``ANSWER_WORDS`` for the labels, and ``CLOSE_THINK`` (the SFT target of a
template that opens ``<think>`` itself closes the block first).

Answers: two answer styles exist, and the caller says which one it expects (``parse_answer(text,
style=...)``):

* ``"sft"``: the reply is ``Yes`` or ``No``. The last ``Therefore: …`` wins; otherwise a reply
  (after any closed think block) that begins with yes or no counts.
* ``"reasoning"``: ``<think>…</think>`` then ``Therefore: Yes`` / ``Therefore: No``. The answer
  is read only after the last ``</think>``: a completion whose think block is missing or still
  open (e.g. cut off by the token limit mid-reasoning) states no answer, whatever its reasoning
  says. The opening ``<think>`` may be absent, because a chat template may open the block itself
  (``Family.opens_think``); the closing tag may not. The GRPO rewards always use this style.

Oracle traces (the ``trace`` SFT target, ``format.sft_target: trace``): the exact reasoner's
derivation written out, one local reading of the premise per step, then the answer line::

    <think>Adjacent: A-C, B-C. Fixed: A->C, B->C. Check common effect of A and B: yes, via C.
    </think>

    Therefore: Yes

``Adjacent`` lists the pairs no independence separates, ``Fixed`` the edges oriented alike in
every DAG the premise allows, ``Check`` the relation the hypothesis asks about, whether it holds
in every such DAG and, when some variables carry it in all of them, which (``trace_body``).
``read_trace`` reads the two lists back from a generated completion, for the trace metrics.

Evaluation maps its prompt style (``evaluate.prompt.{stage}``: ``sft`` or ``grpo``) to an answer
style with ``answer_style``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SYSTEM_PROMPT = "You are an expert in causal reasoning."
ANSWER_WORDS = {1: "Yes", 0: "No"}
ANSWER_LINES = {label: f"Therefore: {word}" for label, word in ANSWER_WORDS.items()}
CLOSE_THINK = "</think>\n\n"
USER_SFT = (
    "Premise and Hypothesis:\n{input}\n\n"
    "Is the hypothesis consistent with the premise? Answer with 'Yes' or 'No'."
)
USER_GRPO = (
    f"{SYSTEM_PROMPT} Given a premise describing statistical relationships "
    "between variables, determine if the stated causal hypothesis is consistent with the given "
    "information.\n\n"
    "Think step by step using <think> tags to show your reasoning process. After your reasoning, "
    f'provide your final answer as either "{ANSWER_LINES[1]}" or "{ANSWER_LINES[0]}".\n\n'
    "Premise and Hypothesis:\n{input}\n\n"
    "Begin your response with <think> and provide detailed step-by-step reasoning:"
)
USER_TEMPLATES = {"sft": USER_SFT, "grpo": USER_GRPO}

ANSWER_STYLES = ("sft", "reasoning")
PROMPT_ANSWER_STYLES = {"sft": "sft", "grpo": "reasoning"}  # prompt style -> answer style

_THEREFORE = re.compile(r"therefore\s*[:,]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
_LEADING = re.compile(r"^[\s\"'*`]*(yes|no)\b", re.IGNORECASE)
_THINK_BLOCK = re.compile(r"^.*?</think>", re.DOTALL | re.IGNORECASE)
_STRICT_FORMAT = re.compile(
    r"^\s*<think>(?P<body>.+?)</think>\s*Therefore:\s*(?:Yes|No)\.?\s*$", re.DOTALL
)
_OPENED_FORMAT = re.compile(
    r"^\s*(?:<think>)?(?P<body>.+?)</think>\s*Therefore:\s*(?:Yes|No)\.?\s*$", re.DOTALL
)
_CLOSE_TAG = "</think>"

# The relation a hypothesis asks about, written as the trace's check.
CHECKS = {
    "parent": "{x}->{y}",
    "child": "{y}->{x}",
    "non-parent ancestor": "{x}->..->{y}",
    "non-child descendant": "{y}->..->{x}",
    "collider": "common effect of {x} and {y}",
    "confounder": "common cause of {x} and {y}",
}
_TRACE_LIST = {
    "adjacent": re.compile(r"Adjacent:\s*([^.]*)\."),
    "fixed": re.compile(r"Fixed:\s*([^.]*)\."),
}


@dataclass(frozen=True)
class Derivation:
    """What the exact reasoner reads from an item (``corr2cause.symbolic.derive``), as indices
    into ``names`` (display order): ``adjacent``, the pairs (i < j) no independence separates
    (the skeleton every DAG shares); ``fixed``, the edges (cause, effect) oriented alike in
    every DAG; the relation the hypothesis asks about and its variables ``x``, ``y``;
    ``witnesses``, the variables that carry that relation in every DAG (a mediator after the
    cause, a common effect or cause), empty for a direct edge; ``label``, 1 when the relation
    holds in every DAG."""

    names: tuple[str, ...]
    adjacent: tuple[tuple[int, int], ...]
    fixed: tuple[tuple[int, int], ...]
    relation: str
    x: int
    y: int
    witnesses: tuple[int, ...]
    label: int


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, list):
        return "".join(completion_text(message) for message in completion)
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


_ITEM_INPUT = re.compile(r"Premise and Hypothesis:\n(.*?)\n\n", re.DOTALL)


def prompt_input(user_text: str) -> str | None:
    """The item (``Premise: …\nHypothesis: …``) a user message of either template carries."""
    match = _ITEM_INPUT.search(user_text)
    return match.group(1) if match else None


def prompt_text(prompt: Any) -> str | None:
    """The last user message of a conversational prompt (or the prompt, when it is text)."""
    if isinstance(prompt, str):
        return prompt
    users = [
        m.get("content") for m in prompt or () if isinstance(m, Mapping) and m.get("role") == "user"
    ]
    return str(users[-1]) if users else None


def prompt_item(prompt: Any) -> str | None:
    """The item a prompt carries (``prompt_input`` of its last user message), None without."""
    return prompt_input(prompt_text(prompt) or "")


def item_input(row: Mapping[str, Any]) -> str | None:
    """The item (``Premise: …\nHypothesis: …``) a row carries: its input, or the one its
    prompt renders; None when neither holds one."""
    return row.get("input") or prompt_item(row.get("prompt"))


def hypothesis_of(text: str | None) -> str | None:
    """The hypothesis an item's input text or rendered prompt states (the line after
    ``Hypothesis:``), None without one."""
    if not text or "Hypothesis:" not in text:
        return None
    lines = text.rsplit("Hypothesis:", 1)[1].strip().splitlines()
    return lines[0].strip() if lines else None


def answer_style(prompt_style: str) -> str:
    """The answer style of a prompt style: ``sft`` -> ``sft``, ``grpo`` -> ``reasoning``."""
    try:
        return PROMPT_ANSWER_STYLES[prompt_style]
    except KeyError:
        known = ", ".join(PROMPT_ANSWER_STYLES)
        raise ValueError(f"unknown prompt style {prompt_style!r}; known: {known}") from None


def _read_reply(reply: str) -> int | None:
    """The last ``Therefore: yes|no`` of ``reply``, else a leading yes/no; None when neither."""
    matches = _THEREFORE.findall(reply)
    if matches:
        return 1 if matches[-1].lower() == "yes" else 0
    match = _LEADING.match(reply)
    if match:
        return 1 if match.group(1).lower() == "yes" else 0
    return None


def _after_reasoning(text: str) -> str | None:
    """The text after the last ``</think>``; None when the think block is missing or open."""
    end = text.lower().rfind(_CLOSE_TAG)
    if end < 0:
        return None
    tail = text[end + len(_CLOSE_TAG) :]
    return None if "<think>" in tail.lower() else tail


def parse_answer(text: str, *, style: str) -> int | None:
    """1 for Yes, 0 for No, None when ``text`` states no answer in ``style`` (see the module)."""
    if style == "sft":
        matches = _THEREFORE.findall(text)
        if matches:
            return 1 if matches[-1].lower() == "yes" else 0
        reply = _THINK_BLOCK.sub("", text, count=1) if _CLOSE_TAG in text.lower() else text
        match = _LEADING.match(reply)
        return (1 if match.group(1).lower() == "yes" else 0) if match else None
    if style == "reasoning":
        tail = _after_reasoning(text)
        return None if tail is None else _read_reply(tail)
    raise ValueError(f"unknown answer style {style!r}; known: {', '.join(ANSWER_STYLES)}")


def follows_reasoning_format(text: str, think_opened: bool = False) -> bool:
    """``<think>…</think>`` then ``Therefore: Yes|No`` and nothing after it.

    With ``think_opened`` (the chat template already opened ``<think>``), the completion may
    start inside the think block, without its own opening tag.
    """
    pattern = _OPENED_FORMAT if think_opened else _STRICT_FORMAT
    match = pattern.match(text)
    return bool(match and match.group("body").strip() and "<think>" not in match.group("body"))


def trace_body(derivation: Derivation, lookup: Collection[str] = ()) -> str:
    """The text inside the think block of an oracle trace (see the module); for a relation in
    ``lookup`` (``format.trace_lookup``) the check first writes what it reads off the fixed
    edges, then the verdict (``lookup_step``)."""
    names = derivation.names
    adjacent = ", ".join(f"{names[i]}-{names[j]}" for i, j in derivation.adjacent)
    fixed = ", ".join(f"{names[a]}->{names[b]}" for a, b in derivation.fixed)
    check = CHECKS[derivation.relation].format(x=names[derivation.x], y=names[derivation.y])
    verdict = "yes" if derivation.label else "no"
    if derivation.label and derivation.witnesses:
        verdict += ", via " + ", ".join(names[m] for m in derivation.witnesses)
    if derivation.relation in lookup:
        verdict = f"{lookup_step(derivation)}; {verdict}"
    return f"Adjacent: {adjacent or 'none'}. Fixed: {fixed or 'none'}. Check {check}: {verdict}."


def _reached(
    fixed: Sequence[tuple[int, int]], start: int, avoid: int, forward: bool, skip: int = -1
) -> list[int]:
    """The variables reached from ``start`` along fixed edges (backwards when not
    ``forward``) on paths that avoid ``avoid`` and do not go to ``skip`` in their first step;
    sorted."""
    step = [(a, b) if forward else (b, a) for a, b in fixed]
    seen = {b for a, b in step if a == start and b not in (avoid, skip)}
    todo = list(seen)
    while todo:
        node = todo.pop()
        for a, b in step:
            if a == node and b != avoid and b not in seen:
                seen.add(b)
                todo.append(b)
    return sorted(seen - {start})


def lookup_step(derivation: Derivation) -> str:
    """What the check reads off the ``Fixed`` edges, written out: for a direct edge the
    children of its cause (``A -> B, C``), for a longer path the variables its cause reaches
    through another (``A ~> C, B``: not B by the edge A->B alone), for a common effect those
    each of the two reaches avoiding the other (``A ~> C; B ~> C``), for a common cause those
    each is reached from (``A <~ C; B <~ C``).
    The relation holds in the graph of the fixed edges alone exactly when these show it
    (``benchmarks/check_lookup.py``: 96-100% of the items by relation, the verdict after it
    being the label all the same)."""
    names, fixed = derivation.names, derivation.fixed
    x, y = derivation.x, derivation.y
    cause, effect = (y, x) if derivation.relation in ("child", "non-child descendant") else (x, y)

    def listed(found: Sequence[int]) -> str:
        return ", ".join(names[m] for m in found) or "none"

    if derivation.relation in ("parent", "child"):
        return f"{names[cause]} -> {listed(sorted(b for a, b in fixed if a == cause))}"
    if derivation.relation in ("non-parent ancestor", "non-child descendant"):
        return f"{names[cause]} ~> {listed(_reached(fixed, cause, -1, True, skip=effect))}"
    forward = derivation.relation == "collider"
    arrow = "~>" if forward else "<~"
    return "; ".join(
        f"{names[v]} {arrow} {listed(_reached(fixed, v, other, forward))}"
        for v, other in ((x, y), (y, x))
    )


def trace_completion(body: str, label: int, think_opened: bool = False) -> str:
    """A whole reasoning completion: ``<think>`` (unless the template opened it), the body,
    ``</think>`` and the answer line, exactly the format the rewards and evaluation read."""
    return ("" if think_opened else "<think>") + body + CLOSE_THINK + ANSWER_LINES[int(label)]


def read_trace(text: str) -> dict[str, frozenset[str] | None]:
    """The ``Adjacent`` and ``Fixed`` lists of a trace, as sets of items (``A-B`` with the two
    names sorted, ``A->B``); None for a list the text does not state."""
    out: dict[str, frozenset[str] | None] = {}
    for key, pattern in _TRACE_LIST.items():
        match = pattern.search(text)
        if match is None:
            out[key] = None
            continue
        items = [item.strip() for item in match.group(1).split(",")]
        items = [item for item in items if item and item != "none"]
        if key == "adjacent":
            items = ["-".join(sorted(item.split("-"))) for item in items]
        out[key] = frozenset(items)
    return out
