"""label_positions_only: TRL's fused LM head on its compact path on a CPU gives the loss,
log-probabilities, metrics and gradients of its full path."""

from __future__ import annotations

import pytest
import torch

from rlcausality.training.lm_head import label_positions_only


def tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    return model


def batch() -> dict[str, torch.Tensor]:
    """Two right-padded rows whose labels cover only their completions, as SFT's are."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, 97, (2, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[0, :7] = -100  # prompts of 7 and 5 tokens
    labels[1, :5] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def fused_pass(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> tuple:
    model.zero_grad()
    out = model(**inputs, fused_lm_head=True)
    out.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_compact_path_matches_the_full_path() -> None:
    model, inputs = tiny_llama(), batch()
    full, full_grads = fused_pass(model, inputs)
    with label_positions_only():
        compact, compact_grads = fused_pass(model, inputs)
    assert torch.allclose(full.loss, compact.loss, atol=1e-6)
    for field in ("log_probs", "entropy"):
        assert torch.allclose(getattr(full, field), getattr(compact, field), atol=1e-5), field
    assert torch.equal(full.is_top1, compact.is_top1)
    assert torch.equal(full.label_mask, compact.label_mask)
    assert full_grads.keys() == compact_grads.keys() and full_grads
    for name, grad in full_grads.items():
        assert torch.allclose(grad, compact_grads[name], atol=1e-5), name
    # ignored positions stay exactly zero on both paths
    assert (compact.log_probs[~compact.label_mask] == 0).all()


def test_the_switch_is_scoped_and_restored() -> None:
    import trl.trainer.utils as utils

    cpu = torch.device("cpu")
    original = utils._use_triton
    assert original(cpu) is False  # TRL's own answer on a CPU: the full path
    with label_positions_only():
        assert utils._use_triton(cpu) is True
        with label_positions_only():  # nesting keeps one patch
            assert utils._use_triton.original is original
        assert utils._use_triton(cpu) is True
    assert utils._use_triton is original
    with pytest.raises(ValueError), label_positions_only():
        raise ValueError("raised inside")
    assert utils._use_triton is original


def test_a_moved_switch_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import trl.trainer.utils as utils

    monkeypatch.delattr(utils, "_use_triton")
    gone = r"trl\.trainer\.utils\._use_triton is gone \(trl 1\."
    with pytest.raises(RuntimeError, match=gone), label_positions_only():
        pass
