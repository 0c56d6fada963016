"""Corr2Cause: generate, load and audit the causal-inference-from-correlations task."""

from rlcausality.data.corr2cause.graphs import RELATIONS

__all__ = ["RELATIONS"]
