"""The names every part of the workflow shares: stages and robustness test sets, defined once.

* ``STAGES``: what a model is evaluated at, in order (the base model, after SFT, after GRPO);
  ``TRAINING_STAGES`` are the ones a rule trains.
* ``SFT_TARGETS``: what SFT teaches (``format.sft_target``) and the formatted rows it reads.
* ``ROBUSTNESS_VARIANTS``: test sets rendered from the test split's classes with another naming
  or phrasing (None keeps the corpus's own). A new variant is one entry here (and, for the
  generator, a naming or phrasing ``corr2cause.text`` knows).

Nothing here imports the project: the Snakefile, config, generator and reports all read it.
"""

from __future__ import annotations

from typing import NamedTuple

STAGES = ("base", "sft", "grpo")
TRAINING_STAGES = ("sft", "grpo")

# format.sft_target -> the formatted rows SFT trains on (results/data/{model}/{format}/train):
# ``answer`` the one-word prompt and answer, ``trace`` the reasoning prompt and the oracle trace.
SFT_TARGETS = {"answer": "sft", "trace": "trace"}


def train_format(rule: str, sft_target: str) -> str:
    """The formatted rows a training rule reads: SFT's target's, GRPO's prompts."""
    return SFT_TARGETS[sft_target] if rule == "sft" else "grpo"


class Variant(NamedTuple):
    naming: str | None  # None: the corpus's naming
    phrasing: str | None  # None: the corpus's phrasing


ROBUSTNESS_SOURCE = "test"
ROBUSTNESS_VARIANTS: dict[str, Variant] = {
    "test_paraphrased": Variant(naming=None, phrasing="paraphrased"),
    "test_refactored": Variant(naming="refactored", phrasing=None),
}
