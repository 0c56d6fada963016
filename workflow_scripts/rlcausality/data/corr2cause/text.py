"""Corr2Cause text: variable names, premise and hypothesis templates, and their parser.

Premise (the published template, ``code/data_verbalize.py`` of causalNLP/corr2cause)::

    Suppose there is a closed system of {N} variables, {A, B and C}. All the statistical
    relations among these {N} variables are as follows: {correlations} However, {independences}

* the variable list is written ``A and B`` for two and ``A, B and C`` for more, in *display
  order* (the order the variables are listed; A, B, C, ... normally, Z, Y, X, ... when
  refactored);
* ``X correlates with Y.`` for every marginally dependent pair, ``X is independent of Y.``
  for a marginal and ``X and Y are independent given A, C and D.`` for a conditional
  independence; within a statement X comes before Y in display order; statements are sorted
  by pair, then by the conditioning set as a list of display positions (lexicographic, so
  ``[] < [A] < [A, C] < [B]``), like the published ``sorted([x, y, cond])``;
* sentences are joined by single spaces; `` However, `` separates the correlations from the
  independences only when both are present; with no correlations the independences follow
  ``as follows: `` directly, and with no independences the premise ends after the
  correlations.

A hypothesis names two variables; its relation is read relative to display order: for
``P directly causes Q.`` the relation is ``parent`` of (P, Q) if P is listed before Q in the
premise, else ``child`` of (Q, P).  The published alternative ``Q is a cause for P, but not
a direct one.`` and swapped collider/confounder pairs are accepted too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from rlcausality.data.corr2cause.graphs import RELATIONS

ORIGINAL: dict[str, str] = {
    "parent": "{x} directly causes {y}.",
    "child": "{y} directly causes {x}.",
    "non-parent ancestor": "{x} causes something else which causes {y}.",
    "non-child descendant": "{y} causes something else which causes {x}.",
    "collider": "There exists at least one collider (i.e., common effect) of {x} and {y}.",
    "confounder": "There exists at least one confounder (i.e., common cause) of {x} and {y}.",
}
PARAPHRASED: dict[str, str] = {
    "parent": "{x} directly affects {y}.",
    "child": "{y} directly affects {x}.",
    "non-parent ancestor": "{x} influences {y} through some mediator(s).",
    "non-child descendant": "{y} influences {x} through some mediator(s).",
    "collider": "{x} and {y} together cause some other variable(s).",
    "confounder": "Some variable(s) cause(s) both {x} and {y}.",
}
TEMPLATES = {"original": ORIGINAL, "paraphrased": PARAPHRASED}
NAMINGS = ("canonical", "shuffled", "refactored")

_NAME = r"([A-Z][A-Za-z0-9_]*)"
# (regex, kind): kind "direct"/"indirect" name (cause, effect); symmetric kinds name a pair
_HYPOTHESIS_FORMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(f"^{pattern}$"), kind)
    for pattern, kind in (
        (rf"{_NAME} directly causes {_NAME}\.", "direct"),
        (rf"{_NAME} directly affects {_NAME}\.", "direct"),
        (rf"{_NAME} causes something else which causes {_NAME}\.", "indirect"),
        (rf"{_NAME} influences {_NAME} through some mediator\(s\)\.", "indirect"),
        (rf"{_NAME} is a cause for {_NAME}, but not a direct one\.", "indirect"),
        (
            rf"There exists at least one collider \(i\.e\., common effect\) of {_NAME} and "
            rf"{_NAME}\.",
            "collider",
        ),
        (rf"{_NAME} and {_NAME} together cause some other variable\(s\)\.", "collider"),
        (
            rf"There exists at least one confounder \(i\.e\., common cause\) of {_NAME} and "
            rf"{_NAME}\.",
            "confounder",
        ),
        (rf"Some variable\(s\) cause\(s\) both {_NAME} and {_NAME}\.", "confounder"),
    )
)
_HEADER = re.compile(
    r"^Suppose there is a closed system of (\d+) variables, ([^.]+)\. All the statistical "
    r"relations among these (\d+) variables are as follows:(.*)$",
    re.DOTALL,
)
_STATEMENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(f"^{pattern}$"), kind)
    for pattern, kind in (
        (rf"{_NAME} correlates with {_NAME}\.", "corr"),
        (rf"{_NAME} is independent of {_NAME}\.", "ind"),
        (rf"{_NAME} and {_NAME} are independent\.", "ind"),
        (rf"{_NAME} and {_NAME} are independent given ([^.]+)\.", "cind"),
        (rf"{_NAME} is independent of {_NAME} given ([^.]+)\.", "cind"),
    )
)
_INPUT = re.compile(r"^Premise: (.*)\nHypothesis: (.*)$", re.DOTALL)


class ParseError(ValueError):
    """Text that is not a Corr2Cause premise/hypothesis; the message says what was expected."""


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------


def canonical_names(n: int) -> tuple[str, ...]:
    return tuple(chr(ord("A") + i) for i in range(n))


def refactored_names(n: int) -> tuple[str, ...]:
    """The paper's robustness renaming: A -> Z, B -> Y, C -> X, ..."""
    return tuple(chr(ord("Z") - i) for i in range(n))


def list_text(items: list[str] | tuple[str, ...]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _split_list(text: str) -> list[str]:
    head, sep, last = text.rpartition(" and ")
    if not sep:
        return [text.strip()]
    parts = head.split(", ") if head else []
    return [*parts, last]


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


def header(names: tuple[str, ...] | list[str]) -> str:
    n = len(names)
    return (
        f"Suppose there is a closed system of {n} variables, {list_text(list(names))}. "
        f"All the statistical relations among these {n} variables are as follows: "
    )


def correlation_sentence(x: str, y: str) -> str:
    return f"{x} correlates with {y}."


def independence_sentence(x: str, y: str, given: list[str] | tuple[str, ...]) -> str:
    if not given:
        return f"{x} is independent of {y}."
    return f"{x} and {y} are independent given {list_text(list(given))}."


def join_premise(head: str, correlations: list[str], independences: list[str]) -> str:
    body = " ".join(correlations)
    if correlations and independences:
        body += " However, "
    return head + body + " ".join(independences)


def hypothesis(relation: str, x: str, y: str, phrasing: str = "original") -> str:
    return TEMPLATES[phrasing][relation].format(x=x, y=y)


def model_input(premise: str, hyp: str) -> str:
    return f"Premise: {premise}\nHypothesis: {hyp}"


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Premise:
    """A parsed premise; indices refer to ``names`` (display order), pairs have i < j."""

    names: tuple[str, ...]
    correlations: frozenset[tuple[int, int]]
    independences: frozenset[tuple[int, int, int]]  # (i, j, conditioning bitmask)

    @property
    def num_variables(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Hypothesis:
    relation: str
    x: int  # index in the premise's names; x is listed before y
    y: int


def split_input(text: str) -> tuple[str, str]:
    """``Premise: ...\\nHypothesis: ...`` -> (premise, hypothesis)."""
    match = _INPUT.match(text.strip("\n"))
    if not match:
        raise ParseError("expected 'Premise: <premise>\\nHypothesis: <hypothesis>'")
    return match.group(1).strip(), match.group(2).strip()


def _first_match(
    forms: tuple[tuple[re.Pattern[str], str], ...], sentence: str
) -> tuple[re.Match[str] | None, str]:
    for pattern, kind in forms:
        m = pattern.match(sentence)
        if m:
            return m, kind
    return None, ""


def _index(name: str, where: dict[str, int], sentence: str) -> int:
    if name not in where:
        raise ParseError(f"variable {name!r} in {sentence!r} is not in the premise's variables")
    return where[name]


@functools.lru_cache(maxsize=4096)
def parse_premise(text: str) -> Premise:
    """Parse a premise (cached: many items share one premise)."""
    match = _HEADER.match(text.strip())
    if not match:
        raise ParseError(
            "expected a premise 'Suppose there is a closed system of N variables, A, B and C. "
            "All the statistical relations among these N variables are as follows: ...'"
        )
    n1, names_text, n2, body = match.groups()
    names = tuple(_split_list(names_text))
    if any(not re.fullmatch(_NAME, name) for name in names):
        raise ParseError(f"expected variable names like 'A, B and C', got {names_text!r}")
    if len(set(names)) != len(names):
        raise ParseError(f"repeated variable in {names_text!r}")
    if not int(n1) == int(n2) == len(names):
        raise ParseError(f"premise says {n1} and {n2} variables but lists {len(names)}")
    where = {name: i for i, name in enumerate(names)}
    correlations: set[tuple[int, int]] = set()
    independences: set[tuple[int, int, int]] = set()
    body = body.strip()
    sentences = re.split(r"(?<=\.)\s+", body) if body else []
    if not sentences:
        raise ParseError("expected at least one correlation or independence statement")
    for sentence in sentences:
        if sentence.startswith("However, "):
            sentence = sentence[len("However, ") :]
        m, kind = _first_match(_STATEMENTS, sentence)
        if m is None:
            raise ParseError(
                f"expected 'X correlates with Y.', 'X is independent of Y.' or 'X and Y are "
                f"independent given ...', got {sentence!r}"
            )
        a = _index(m.group(1), where, sentence)
        b = _index(m.group(2), where, sentence)
        if a == b:
            raise ParseError(f"a statement about one variable: {sentence!r}")
        i, j = min(a, b), max(a, b)
        if kind == "corr":
            correlations.add((i, j))
            continue
        given = 0
        if kind == "cind":
            for name in _split_list(m.group(3)):
                k = _index(name, where, sentence)
                if k in (i, j):
                    raise ParseError(f"conditioning set contains the pair itself: {sentence!r}")
                given |= 1 << k
        independences.add((i, j, given))
    return Premise(names, frozenset(correlations), frozenset(independences))


def parse_hypothesis(text: str, names: tuple[str, ...]) -> Hypothesis:
    text = text.strip()
    m, kind = _first_match(_HYPOTHESIS_FORMS, text)
    if m is None:
        raise ParseError(f"expected a Corr2Cause hypothesis, got {text!r}")
    where = {name: i for i, name in enumerate(names)}
    a = _index(m.group(1), where, text)
    b = _index(m.group(2), where, text)
    if a == b:
        raise ParseError(f"a hypothesis about one variable: {text!r}")
    forward = a < b
    x, y = (a, b) if forward else (b, a)
    if kind == "direct":
        relation = "parent" if forward else "child"
    elif kind == "indirect":
        relation = "non-parent ancestor" if forward else "non-child descendant"
    else:
        relation = kind
    assert relation in RELATIONS
    return Hypothesis(relation, x, y)


@dataclass(frozen=True)
class ParsedInput:
    premise_text: str
    hypothesis_text: str
    premise: Premise
    hypothesis: Hypothesis

    @property
    def relation(self) -> str:
        return self.hypothesis.relation

    @property
    def num_variables(self) -> int:
        return self.premise.num_variables


def parse_input(text: str) -> ParsedInput:
    premise_text, hypothesis_text = split_input(text)
    premise = parse_premise(premise_text)
    return ParsedInput(
        premise_text, hypothesis_text, premise, parse_hypothesis(hypothesis_text, premise.names)
    )
