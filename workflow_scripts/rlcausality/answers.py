"""Answer parsing, shared by the GRPO rewards and by evaluation (one home for one concept).

Two answer styles exist: the SFT style (the reply is ``Yes`` or ``No``) and the reasoning style
(``<think>…</think>`` then ``Therefore: Yes`` / ``Therefore: No``). ``parse_answer`` reads both:
the last ``Therefore: …`` wins; otherwise a reply (after any closed think block) that begins with
yes or no counts.
"""

from __future__ import annotations

import re
from typing import Any

_THEREFORE = re.compile(r"therefore\s*[:,]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
_LEADING = re.compile(r"^[\s\"'*`]*(yes|no)\b", re.IGNORECASE)
_THINK_BLOCK = re.compile(r"^.*?</think>", re.DOTALL | re.IGNORECASE)
_STRICT_FORMAT = re.compile(
    r"^\s*<think>(?P<body>.+?)</think>\s*Therefore:\s*(?:Yes|No)\.?\s*$", re.DOTALL
)
_OPENED_FORMAT = re.compile(
    r"^\s*(?:<think>)?(?P<body>.+?)</think>\s*Therefore:\s*(?:Yes|No)\.?\s*$", re.DOTALL
)


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, list):
        return "".join(completion_text(message) for message in completion)
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


def parse_answer(text: str) -> int | None:
    """1 for Yes, 0 for No, None when the text states no answer."""
    matches = _THEREFORE.findall(text)
    if matches:
        return 1 if matches[-1].lower() == "yes" else 0
    reply = _THINK_BLOCK.sub("", text, count=1) if "</think>" in text.lower() else text
    match = _LEADING.match(reply)
    if match:
        return 1 if match.group(1).lower() == "yes" else 0
    return None


def follows_reasoning_format(text: str, think_opened: bool = False) -> bool:
    """``<think>…</think>`` then ``Therefore: Yes|No`` and nothing after it.

    With ``think_opened`` (the chat template already opened ``<think>``), the completion may
    start inside the think block, without its own opening tag.
    """
    pattern = _OPENED_FORMAT if think_opened else _STRICT_FORMAT
    match = pattern.match(text)
    return bool(match and match.group("body").strip() and "<think>" not in match.group("body"))
