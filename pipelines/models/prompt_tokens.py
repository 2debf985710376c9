"""Chat template and token ids for a batch of prompts, tokenizing the text that repeats only once.

Tokenizing each whole prompt (about 1,200 tokens, most of them the same task and format blocks and
a tool set the dataset repeats) was two thirds of the prompt stage's time (docs/performance.md).
Here each rendered prompt is cut at its parts' edges (prompts.Prompt.parts): every piece but the
last is tokenized once and its ids cached; the last (the row's query and the template's tail) is
tokenized per row.

The ids are those of the whole text when no pre-tokenizer split or merge crosses a cut. Byte-level
BPE tokenizers (Qwen2's, Llama 3's, GPT's) split there: each cut falls after a newline and before
a `[` or a special token. Other tokenizers may not: the first batch is tokenized both ways, and a
tokenizer where they differ gets the whole-text path from then on, with a warning. Prompts in a
family's own chat template (prompt.format=chat_template) are tokenized whole.
"""

from __future__ import annotations

import logging

from pipelines.core.prompts import Prompt

log = logging.getLogger(__name__)


class PromptTokenizer:
    def __init__(self, tokenizer, max_cached: int = 4096):
        self.tokenizer = tokenizer
        self.max_cached = max_cached  # distinct pieces kept (about 8 KB each with a tool set's JSON)
        self.cache: dict[str, list[int]] = {}
        self.segmented = True
        self.checked = False

    def __call__(self, prompts: list[Prompt]) -> list[list[int]]:
        if not prompts:
            return []
        if prompts[0].tools is not None:  # prompt.format=chat_template: the template places each row's tools
            return self.encode(self.render(prompts))
        texts = self.tokenizer.apply_chat_template([p.messages for p in prompts], tokenize=False,
                                                   add_generation_prompt=True)
        if not self.segmented:
            return self.encode(texts)
        ids = self._segmented(texts, prompts)
        if not self.checked:
            self.checked = True
            whole = self.encode(texts)
            if ids != whole:
                row = next(i for i, (a, b) in enumerate(zip(ids, whole)) if a != b)
                log.warning("this tokenizer merges across the prompt's block edges (batch row %d), so "
                            "prompts are tokenized whole: correct, but slower", row)
                self.segmented = False
                return whole
        return ids

    def render(self, prompts: list[Prompt]) -> list[str]:
        """The model's chat template applied to each prompt with its own tools (one call per row: the
        template takes one tool list). Tokenized whole: where a template puts the tools is its own."""
        return [self.tokenizer.apply_chat_template(p.messages, tools=p.tools, tokenize=False, add_generation_prompt=True)
                for p in prompts]

    def encode(self, texts: list[str]) -> list[list[int]]:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)  # fast tokenizers: skip offsets
        if backend is not None and hasattr(backend, "encode_batch_fast"):
            return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _segmented(self, texts: list[str], prompts: list[Prompt]) -> list[list[int]]:
        heads: list[list[str]] = []  # per row, the pieces to take from the cache
        tails: list[str] = []  # per row, the text tokenized for that row alone
        for text, prompt in zip(texts, prompts):
            content = prompt.messages[0]["content"]
            start = text.find(content)
            if start < 0:  # the template rewrote the message: tokenize the row whole
                heads.append([])
                tails.append(text)
                continue
            parts = prompt.parts
            heads.append([text[:start] + parts[0], *parts[1:-1]])
            tails.append(parts[-1] + text[start + len(content):])
        needed = {piece for pieces in heads for piece in pieces}
        missing = [piece for piece in needed if piece not in self.cache]
        if len(self.cache) + len(missing) > self.max_cached:
            self.cache.clear()
            missing = list(needed)
        self.cache.update(zip(missing, self.encode(missing)))
        tail_ids = self.encode(tails)
        out = []
        for pieces, ids in zip(heads, tail_ids):
            row: list[int] = []
            for piece in pieces:
                row += self.cache[piece]
            out.append(row + ids)
        return out
