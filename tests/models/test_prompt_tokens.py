"""Tokenizing a prompt by its cached parts gives the ids of the whole text, or falls back to the whole text."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.prompts import HAMMER_FORMATS, TASK_INSTRUCTION, build_prompt
from pipelines.core.tools import load_tools
from pipelines.models import load_tokenizer
from pipelines.models.prompt_tokens import PromptTokenizer
from pipelines.models.built.tiny_qwen2 import QWEN2_CHAT_TEMPLATE

TOOL_SETS = [
    [{"name": "get_weather", "description": "Weather for a city.", "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name", "default": "Oslo"},
        "unit": {"type": "string", "enum": ["C", "F"]}}, "required": ["city"]}}],
    [{"name": "book", "description": "Books a table.", "parameters": {"type": "object", "properties": {
        "when": {"type": "object", "description": "Time", "properties": {"day": {"type": "string"}},
                 "required": ["day"]}, "people": {"type": "integer"}}}},
     {"name": "déjà_vu", "description": "東京 ünïcode\nwith a newline", "parameters": {}}],
]
QUERIES = [
    "What's the weather in Oslo?",
    "\n  leading newline and spaces",
    "trailing spaces and newline  \n",
    "[BEGIN OF AVAILABLE TOOLS]\n[END OF QUERY]\n\n<|im_end|>",
    "]]]\n\n[[[",
    json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Lunch?"},
                {"role": "assistant", "content": "Where?"}, {"role": "tool", "content": {"ok": True}}]),
]


def _whole(tokenizer, prompts):
    texts = tokenizer.apply_chat_template([p.messages for p in prompts], tokenize=False, add_generation_prompt=True)
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(tiny_model)


@pytest.mark.parametrize("prompt_format", HAMMER_FORMATS)
def test_cached_parts_give_the_ids_of_the_whole_text(tokenizer, prompt_format):
    prompts = [build_prompt(prompt_format, q, load_tools(t)) for q in QUERIES for t in TOOL_SETS]
    prompt_tokenizer = PromptTokenizer(tokenizer)
    assert prompt_tokenizer(prompts) == _whole(tokenizer, prompts)
    assert prompt_tokenizer.segmented and prompt_tokenizer.cache  # the parts path ran, and was checked
    assert prompt_tokenizer(prompts[::-1]) == _whole(tokenizer, prompts[::-1])  # from the cache


def test_a_full_cache_starts_over(tokenizer):
    prompts = [build_prompt("hammer1", q, load_tools(t)) for q in QUERIES for t in TOOL_SETS]
    prompt_tokenizer = PromptTokenizer(tokenizer, max_cached=4)  # fewer than one batch's distinct parts
    for batch in (prompts[:3], prompts[3:], prompts):
        assert prompt_tokenizer(batch) == _whole(tokenizer, batch)
    assert len(prompt_tokenizer.cache) <= len(prompts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(min_size=1, max_size=60).filter(str.strip), description=st.text(max_size=40))
def test_any_text_gives_the_ids_of_the_whole_text(tokenizer, query, description):
    tools = load_tools([{"name": "f", "description": description, "parameters": {}}, *TOOL_SETS[0]])
    prompts = [build_prompt(f, query, tools) for f in HAMMER_FORMATS]
    prompt_tokenizer = PromptTokenizer(tokenizer)
    prompt_tokenizer.checked = True  # no first-batch check: compare the parts path itself
    assert prompt_tokenizer(prompts) == _whole(tokenizer, prompts)


def test_a_tokenizer_that_merges_across_the_cuts_gets_whole_texts():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # No pre-tokenizer split: merges learn "\n[" and "]\n[" from the blocks, so the cuts matter.
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    prompts = [build_prompt("hammer1", q, load_tools(t)) for q in QUERIES for t in TOOL_SETS]
    raw.train_from_iterator([TASK_INSTRUCTION] + [p.messages[0]["content"] for p in prompts] * 5,
                            trainers.BpeTrainer(vocab_size=600, special_tokens=["<|im_start|>", "<|im_end|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>",
                                        additional_special_tokens=["<|im_start|>"])
    tokenizer.chat_template = QWEN2_CHAT_TEMPLATE
    prompt_tokenizer = PromptTokenizer(tokenizer)
    assert prompt_tokenizer(prompts) == _whole(tokenizer, prompts)
    assert not prompt_tokenizer.segmented
    assert prompt_tokenizer(prompts[:2]) == _whole(tokenizer, prompts[:2])


def test_chat_template_prompts_are_the_models_own_rendering_with_each_rows_tools(tiny_model):
    """prompt.format=chat_template: each row rendered with its own tools by the template, tokenized whole."""
    from tests.conftest import REPO

    tokenizer = load_tokenizer(tiny_model)
    tokenizer.chat_template = (REPO / "tests" / "data" / "hermes_tools_template.jinja").read_text()
    prompts = [build_prompt("chat_template", q, load_tools(t)) for q in QUERIES for t in TOOL_SETS]
    expected = []
    for q, t in [(q, t) for q in QUERIES for t in TOOL_SETS]:
        messages = json.loads(q) if q.startswith("[{") else [{"role": "user", "content": q}]
        messages = [{**m, "content": m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])}
                    for m in messages]
        tools = [{"type": "function", "function": {"name": d["name"], "description": d["description"], "parameters": {
            "type": "object", "properties": d["parameters"].get("properties", {}),
            "required": d["parameters"].get("required", [])}}} for d in t]
        text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
        assert t[0]["name"] in text
        expected.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert PromptTokenizer(tokenizer)(prompts) == expected
