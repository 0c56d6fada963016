"""Peak GPU memory of one training or evaluation process, as a breakdown in bytes.

Each part follows what the project's code and its libraries hold (checked in the installed
sources: transformers 5.24, peft 0.21, TRL 1.16, bitsandbytes 0.50, DeepSpeed 0.19):

* base weights: bf16/fp16 (fp32 on the CPU); nf4 with double quantisation is 4 bits per weight
  plus an 8-bit absmax per block of 64 and an fp32 absmax per 256 blocks; 8-bit is one byte plus
  an fp32 scale per output row. Only the decoder's Linear layers are quantised (bitsandbytes
  keeps ``lm_head`` and the embedding), and ``prepare_model_for_kbit_training`` upcasts every
  other bf16/fp16 parameter to fp32. DeepSpeed casts every float parameter back to bf16/fp16.
* LoRA: PEFT keeps adapters in fp32 (param, gradient, AdamW m and v: 16 bytes each); TRL casts a
  quantised base's adapters to bf16 (8 bytes, AdamW states in the parameter's dtype) unless fp16
  training casts them back (``lora.fp32_adapters_for_fp16``); under DeepSpeed the adapters
  are bf16 with an fp32 master copy and fp32 AdamW states, partitioned over the GPUs (ZeRO-2:
  gradients and optimizer states; ZeRO-3: parameters too).
* activations: the tensors autograd saves per token and decoder layer (norms with their fp32
  upcast, q/k/v after RoPE, the attention output, four MLP tensors of the intermediate size, and
  per LoRA module its dropout mask and input copy); SDPA keeps attention linear in the length,
  eager attention saves the softmax (fp32 and its cast) of every head. With gradient
  checkpointing only each layer's input is kept, plus one layer recomputed in the backward.
* logits: TRL 1.16's SFT and GRPO trainers score tokens through a fused, tiled LM head
  (``trl.trainer.utils.add_fused_lm_head``: tiles of 4,096 tokens × 32,768 vocabulary entries,
  an fp32 hidden-state gradient); transformers' own loss (the calibration cases) holds the
  logits, their fp32 upcast and the fp32 log-softmax: (2 + 4 + 4) bytes × tokens × vocabulary.
* KV cache: 2 × layers × KV heads × head dim per token, for every sequence generated at once.
* allowance: the CUDA context and cuBLAS workspaces (outside torch's allocator) and the caching
  allocator's fragmentation, stated below.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlcausality.plan.arch import Arch

GIB = 2**30
# Stated allowances (not measured here; docs/performance.md says how to fit them to gpu_bench).
CUDA_CONTEXT_BYTES = int(0.75 * GIB)  # CUDA context, cuBLAS/cuDNN workspaces
ALLOCATOR_FRACTION = 0.08  # reserved over allocated: the caching allocator's fragmentation
PYTHON_HOST_BYTES = int(2.5 * GIB)  # host memory of one process before any model is loaded

NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # packed weight, 8-bit absmax, fp32 nested absmax
FUSED_TOKENS, FUSED_VOCAB = 4096, 32768  # TRL 1.16 TOKEN_CHUNK_SIZE, _CHUNKED_LOGPROB_CHUNK_SIZE


@dataclass(frozen=True)
class Setup:
    """How one process holds and runs the model."""

    arch: Arch
    quantization: str  # none | 4bit | 8bit
    compute_bytes: int  # 2 (bf16/fp16 on a GPU) or 4 (fp32, the CPU)
    processes: int = 1
    deepspeed: str | None = None  # zero2 | zero3 | None (what really runs)
    kbit_prepared: bool = True  # training: prepare_model_for_kbit_training ran
    fp16: bool = False
    bf16_quantized_adapters: bool = True  # TRL's cast of a quantised base's adapters

    @property
    def quantized(self) -> bool:
        return self.quantization != "none"

    @property
    def shards(self) -> int:
        return self.processes if self.deepspeed else 1


def base_weight_bytes(setup: Setup, gathered: bool = False) -> int:
    """The base model's weights on one GPU (``gathered``: ZeRO-3 weights all-gathered)."""
    arch = setup.arch
    if not setup.quantized:
        total = arch.parameters * setup.compute_bytes
        zero3 = setup.deepspeed == "zero3" and not gathered
        return total // setup.processes if zero3 else total
    other = arch.embedding + arch.lm_head + arch.dense_other
    upcast = setup.kbit_prepared and not setup.deepspeed and setup.compute_bytes < 4
    other_bytes = other * (4 if upcast else setup.compute_bytes)
    if setup.quantization == "4bit":
        per_layer = sum(nf4_bytes(a * b) for a, b, _ in arch.linears().values())
        return arch.layers * per_layer + other_bytes
    rows = arch.layers * sum(out for _, out, _ in arch.linears().values())
    return arch.layer_linear_weights + 4 * rows + other_bytes


def nf4_bytes(weights: int) -> int:
    """One nf4 weight tensor with double quantisation (bitsandbytes ``Params4bit``): two
    weights a byte, an 8-bit absmax per block of 64, an fp32 absmax per 256 of those blocks."""
    blocks = -(-weights // 64)
    return -(-weights // 2) + blocks + 4 * -(-blocks // 256)


def adapter_bytes(setup: Setup) -> int:
    """Bytes per LoRA parameter as it is stored while training (without DeepSpeed)."""
    if setup.quantized and setup.bf16_quantized_adapters and not setup.fp16:
        return 2  # TRL casts a quantised base's adapters to bf16 (on the CPU too)
    return 4  # PEFT's fp32 adapters (and fp16 QLoRA, cast back to fp32)


def lora_state_bytes(setup: Setup, lora_params: int) -> dict[str, int]:
    """LoRA parameters, their gradients and the AdamW state (with any master copy), per GPU."""
    if setup.deepspeed and setup.compute_bytes == 2:
        shards = setup.processes
        params = 2 * lora_params // (shards if setup.deepspeed == "zero3" else 1)
        return {
            "lora_params": params,
            "lora_grads": 2 * lora_params // shards,
            "optimizer": 12 * lora_params // shards,  # fp32 master + AdamW m, v
        }
    width = adapter_bytes(setup)
    return {
        "lora_params": width * lora_params,
        "lora_grads": width * lora_params,
        "optimizer": 2 * width * lora_params,
    }


def lora_activation_bytes(setup: Setup, targets: list[str] | str, rank: int, dropout: float) -> int:
    """Per token and layer: what each LoRA module saves (its dropout mask and input copy, and
    lora_A's output)."""
    c = setup.compute_bytes
    cast = adapter_bytes(setup) != c and not setup.deepspeed
    total = 0
    for d_in, _, _ in setup.arch.lora_targets(targets).values():
        total += c * rank
        if dropout > 0:
            total += d_in  # the bool mask
        if dropout > 0 or cast:
            total += c * d_in  # the copy lora_A's matmul saves
    return total


def layer_activation_bytes(setup: Setup, seq_len: int, eager: bool, lora_bytes: int) -> int:
    """Per token: what one decoder layer saves for the backward without checkpointing."""
    arch, c = setup.arch, setup.compute_bytes
    q, kv = arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim
    norms = 2 * (4 * arch.hidden + 2 * c * arch.hidden)  # fp32 input, scaled and output
    if eager:  # k, v repeated to every head; softmax in fp32 and its cast, per head and key
        attention = c * 5 * q + (4 + c) * arch.heads * seq_len
    else:
        attention = c * (3 * q + 2 * kv) + 4 * arch.heads
    mlp = 4 * c * arch.intermediate
    return norms + attention + mlp + lora_bytes


def activation_bytes(
    setup: Setup, tokens: int, seq_len: int, checkpointing: bool, lora_bytes: int, eager=False
) -> int:
    """Saved activations of ``tokens`` (micro-batch × length) through the whole decoder."""
    arch, c = setup.arch, setup.compute_bytes
    layer = layer_activation_bytes(setup, seq_len, eager, lora_bytes) * tokens
    outside = (c + 4 + 2 * c) * arch.hidden * tokens  # embedding output, final norm
    if checkpointing:  # every layer's input, one layer recomputed, its input and output grads
        return (
            arch.layers * c * arch.hidden * tokens + layer + 2 * c * arch.hidden * tokens + outside
        )
    return arch.layers * layer + outside


def logits_bytes(setup: Setup, tokens: int, fused: bool = True) -> int:
    """The LM head's buffers while scoring ``tokens`` (fused TRL tiles, or full logits)."""
    arch, c = setup.arch, setup.compute_bytes
    if not fused:
        return (c + 4 + 4) * tokens * arch.vocab
    tile = min(tokens, FUSED_TOKENS) * min(arch.vocab, FUSED_VOCAB) * c
    weight_cast = min(arch.vocab, FUSED_VOCAB) * arch.hidden * c  # an fp32 head cast per tile
    return tile + weight_cast + 4 * arch.hidden * tokens + 7 * 4 * tokens


def kv_cache_bytes(setup: Setup, sequences: int, length: int) -> int:
    return sequences * length * setup.arch.kv_bytes_per_token(setup.compute_bytes)


def prefill_bytes(setup: Setup, sequences: int, prompt: int) -> int:
    """Transient activations of one layer's forward over every prompt at once (no grad), and
    the sampling buffers of the last position's logits."""
    arch, c = setup.arch, setup.compute_bytes
    layer = c * (3 * arch.hidden + 3 * arch.intermediate) * sequences * prompt
    return layer + (c + 12) * sequences * arch.vocab


def with_allowance(parts: dict[str, int], context: bool = True) -> dict[str, int]:
    """``parts`` plus the allocator's fragmentation and the CUDA context, as named parts."""
    allocated = sum(parts.values())
    out = dict(parts)
    out["allocator"] = round(ALLOCATOR_FRACTION * allocated)
    if context:
        out["cuda_context"] = CUDA_CONTEXT_BYTES
    return out


def gib(parts: dict[str, int]) -> dict[str, float]:
    return {key: round(value / GIB, 2) for key, value in parts.items()}
