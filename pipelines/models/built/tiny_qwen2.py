"""`built:tiny-qwen2`: a tiny Qwen2 checkpoint with random weights, built locally, for the fast tests.

No model hub is needed: the byte-level BPE tokenizer is trained here on the prompt text and the
sample data, and the weights are random (seeded). Its greedy output is noise; it exists so that the
whole pipeline (chat template, tokenization, a real vLLM engine) runs anywhere.
"""

from __future__ import annotations

from pathlib import Path


# Qwen2's own chat template: it adds the default system turn by itself.
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SAMPLE_DATA = Path(__file__).resolve().parents[3] / "data" / "sample"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _training_corpus() -> list[str]:
    from pipelines.core.prompts import FORMAT_INSTRUCTION, TASK_INSTRUCTION

    import pyarrow.parquet as pq

    corpus = [TASK_INSTRUCTION, FORMAT_INSTRUCTION, "You are a helpful assistant."]
    for shard in sorted(SAMPLE_DATA.glob("*.parquet")):
        table = pq.read_table(shard, columns=["query", "tools", "answers"])
        corpus += [v for column in table.columns for v in column.to_pylist() if v]
    return corpus


def build_tiny_model(path: Path, *, vocab_size: int = 4096, seed: int = 0) -> None:
    """Writes the checkpoint into the empty folder `path`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_corpus(), trainer=trainer)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=32768,
    )
    hf_tokenizer.chat_template = QWEN2_CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(hf_tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 64: the smallest vLLM's CPU attention takes
        num_key_value_heads=1,
        max_position_embeddings=8192,
        eos_token_id=hf_tokenizer.convert_tokens_to_ids("<|im_end|>"),
        bos_token_id=None,
        pad_token_id=hf_tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(config)

    model.save_pretrained(path, safe_serialization=True)
    hf_tokenizer.save_pretrained(path)
