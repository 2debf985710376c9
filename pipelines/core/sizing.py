"""GPU sizing from the model's own shape, pure: the KV-cache budget in tokens, and how many rows of a
given prompt length an engine holds at once. The preflight prints it for the run's model and GPU;
docs/gpu.md tabulates it for the Hammer sizes.

Computed, not measured. The formulas (vLLM 0.29's memory accounting, simplified):
  KV bytes per token  = 2 (K and V) x layers x kv_heads_per_gpu x head_dim x dtype bytes
  kv_heads_per_gpu    = max(1, kv_heads / tensor_parallel_size)   (heads are replicated when fewer)
  weights per GPU     = parameters x dtype bytes / tensor_parallel_size
  activation peak     = max_num_batched_tokens x (2 x intermediate + 4 x hidden) x dtype bytes
                        + max_num_seqs x vocab x 4 (fp32 logits) + 1 GiB (CUDA context, graphs, NCCL)
  KV budget (bytes)   = GPU memory x gpu_memory_utilization - weights - activation peak
  rows at once        = KV budget tokens // (prompt + samples x output tokens, each rounded up to
                        16-token blocks: a row's sampled outputs share its prompt's blocks)
  rows in flight      = max_num_seqs / samples x straggler tokens / mean output tokens
Rows sharing a tool set share their prompt's prefix blocks under prefix caching, so more fit than
this; the figure is the floor. Rows in flight: ray.data.llm hands back a batch only when every row of
it is done, and admits at most 1.1 x max_num_seqs requests to vLLM; a batch whose rows finished but
one keeps its slot (max_concurrent_batches) for as long as that straggler decodes, so only a share
of the rows in flight (mean over straggler length) is decoding at any time. To keep max_num_seqs
sequences busy, batch_size x max_concurrent_batches must be that many times larger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GiB = 1024**3
# vLLM 0.29's scheduler defaults for an engine built without a usage context, as ray.data.llm 2.60
# builds it: sequences and batched tokens per step, on any GPU.
DEFAULT_MAX_NUM_SEQS = 128
DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048
BLOCK_TOKENS = 16  # vLLM's KV block size on GPUs
FIXED_OVERHEAD = 1 * GiB
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "half": 2, "float": 4}


class SizingError(ValueError):
    """The model's config lacks what the computation needs; the message names the field."""


@dataclass(frozen=True)
class ModelShape:
    layers: int
    q_heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    tied_embeddings: bool
    max_positions: int
    dtype_bytes: int

    @classmethod
    def from_hf_config(cls, config: dict) -> "ModelShape":
        """From a transformers `config.json` (Qwen2 / Llama style)."""
        def need(key: str):
            if config.get(key) is None:
                raise SizingError(f"the model's config.json has no {key!r}")
            return config[key]

        q_heads = need("num_attention_heads")
        hidden = need("hidden_size")
        dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
        return cls(
            layers=need("num_hidden_layers"), q_heads=q_heads,
            kv_heads=config.get("num_key_value_heads") or q_heads,
            head_dim=config.get("head_dim") or hidden // q_heads, hidden=hidden,
            intermediate=need("intermediate_size"), vocab=need("vocab_size"),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            max_positions=need("max_position_embeddings"), dtype_bytes=DTYPE_BYTES.get(dtype, 2),
        )

    def parameters(self) -> int:
        """Embeddings, attention (with Qwen2's q/k/v biases), gated MLP, norms and the LM head."""
        attention = (self.hidden * self.q_heads * self.head_dim * 2  # q and o
                     + self.hidden * self.kv_heads * self.head_dim * 2  # k and v
                     + (self.q_heads + 2 * self.kv_heads) * self.head_dim)  # biases
        layer = attention + 3 * self.hidden * self.intermediate + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * layer + embeddings + self.hidden

    def kv_bytes_per_token(self, tensor_parallel_size: int = 1) -> int:
        kv_heads = max(1, math.ceil(self.kv_heads / tensor_parallel_size))
        return 2 * self.layers * kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True)
class KvBudget:
    gpu_memory: int  # bytes per GPU
    weights: int  # bytes per GPU
    activations: int  # bytes per GPU, the estimated peak
    kv_bytes: int  # per GPU
    kv_tokens: int  # per engine replica (all its GPUs together hold each token's K/V once)

    def rows_at_once(self, prompt_tokens: int, output_tokens: int, samples: int = 1) -> int:
        """samples: outputs per row (generation.samples): they share the prompt's blocks."""
        return self.kv_tokens // (_blocks(prompt_tokens) + samples * _blocks(output_tokens))


def _blocks(tokens: int) -> int:
    """Tokens rounded up to whole KV blocks."""
    return math.ceil(tokens / BLOCK_TOKENS) * BLOCK_TOKENS


def kv_budget(shape: ModelShape, gpu_memory: int, gpu_memory_utilization: float, *, tensor_parallel_size: int = 1,
              max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS,
              max_num_seqs: int = DEFAULT_MAX_NUM_SEQS) -> KvBudget:
    weights = shape.parameters() * shape.dtype_bytes // tensor_parallel_size
    activations = (max_num_batched_tokens * (2 * shape.intermediate + 4 * shape.hidden) * shape.dtype_bytes
                   // tensor_parallel_size + max_num_seqs * shape.vocab * 4 + FIXED_OVERHEAD)
    kv_bytes = max(0, int(gpu_memory * gpu_memory_utilization) - weights - activations)
    blocks = kv_bytes // (shape.kv_bytes_per_token(tensor_parallel_size) * BLOCK_TOKENS)
    return KvBudget(gpu_memory, weights, activations, kv_bytes, blocks * BLOCK_TOKENS)


def suggested_scheduler(budget: KvBudget, prompt_tokens: int, output_tokens: int, *, a100: bool = False,
                        samples: int = 1) -> dict:
    """max_num_seqs: the largest power of two of sequences (rows x samples) the KV cache holds at
    once, at most 1,024; tokens per step: vLLM's own offline defaults (16,384 on 70 GiB+ cards other
    than the A100, 8,192 elsewhere)."""
    sequences = budget.rows_at_once(prompt_tokens, output_tokens, samples) * samples
    seqs = 2 ** int(math.log2(min(sequences, 1024))) if sequences >= 1 else 0
    big = budget.gpu_memory >= 70 * GiB and not a100
    return {"max_num_seqs": seqs, "max_num_batched_tokens": 16384 if big else 8192}


def rows_in_flight(max_num_seqs: int, samples: int, mean_output_tokens: int, straggler_tokens: int) -> int:
    """Rows an engine actor must hold (batch_size x max_concurrent_batches) to keep max_num_seqs
    sequences decoding while batches wait on their longest row (see the module's docstring)."""
    rows = max_num_seqs / samples
    return math.ceil(rows * max(straggler_tokens, mean_output_tokens) / mean_output_tokens)
