"""Score only the labelled positions in TRL's fused LM head on a CPU.

TRL 1.16 computes SFT's loss and GRPO's log-probabilities through a fused LM head
(``trl.trainer.utils.add_fused_lm_head``). On CUDA/XPU with Triton it projects only the
positions whose label is not -100; everywhere else it projects every position of the padded
batch and zeroes the ignored ones afterwards, a choice made for devices that recompile on
every new tile shape (Neuron). On a CPU that is 44% of the demo's SFT step: the prompt is
most of each sequence (the demo's traces: ~80 labelled tokens of ~360), and the head of a small
model is a large share of its weights (SmolLM2-135M: 28M of 135M parameters, a 49,152-word
vocabulary). Eager CPU execution has no compilation to protect, so ``label_positions_only``
makes the head take the compact path there, which is the same arithmetic on fewer rows: the
loss, the log-probabilities and the gradients are those of the full path (tested in
tests/training/test_lm_head.py), and an SFT step of the demo takes 0.44 of the time
(``benchmarks/sft_step.py``; docs/demo.md, "Time").

The switch is TRL's own module attribute (``trl.trainer.utils._use_triton``, read at each
call of the head); entering the context fails with the TRL version named if it is gone, and
the tests compare both paths, so a TRL release that changes either is caught.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

ATTRIBUTE = "_use_triton"


def _utils() -> Any:
    import trl.trainer.utils as utils

    if not callable(getattr(utils, ATTRIBUTE, None)):
        raise RuntimeError(
            f"trl.trainer.utils.{ATTRIBUTE} is gone (trl {_trl_version()}): the fused LM head's "
            "compact-path switch moved; update rlcausality.training.lm_head for this TRL release"
        )
    return utils


def _trl_version() -> str:
    import trl

    return str(trl.__version__)


def compact_on_cpu(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """TRL's device test, answering yes for a CPU tensor as well."""

    def use_compact(device: Any) -> bool:
        return getattr(device, "type", None) == "cpu" or bool(original(device))

    use_compact.original = original  # type: ignore[attr-defined]
    return use_compact


@contextlib.contextmanager
def label_positions_only() -> Iterator[None]:
    """While active, TRL's fused LM head projects only labelled positions on a CPU too."""
    utils = _utils()
    original = getattr(utils, ATTRIBUTE)
    if hasattr(original, "original"):  # already active (nested use)
        yield
        return
    setattr(utils, ATTRIBUTE, compact_on_cpu(original))
    try:
        yield
    finally:
        setattr(utils, ATTRIBUTE, original)
