"""Which queries overlap an evaluation set, pure: a training row whose query is a test question, or a
near copy of one, inflates every later evaluation on that set.

A query is normalized (Unicode NFKC, case folded, every run of characters that are not letters or
digits one space) and cut into word n-grams. It overlaps the set when its normalized text equals an
evaluation query's, or when it shares one n-gram with one (the n-gram overlap test of GPT-3's and
Llama's decontamination, on word n-grams: a copy with a word changed, added or dropped far enough from
the others still shares one). A query shorter than n words matches by equality only. With tools, an
overlap counts only where the two rows offer the same set of function names (`query_and_tools`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from pipelines.core import untrusted

_NOT_WORD = re.compile(r"[\W_]+")


def normalized_words(text: str) -> list[str]:
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()


def query_text(query: str) -> str:
    """A row's query as text: a conversation (a JSON list of messages) becomes its users' messages; a
    query that is no text has none."""
    if not isinstance(query, str):
        return ""
    stripped = query.lstrip()
    if stripped.startswith("["):
        try:
            messages = untrusted.loads(stripped)  # a row's text: bounded depth and numbers
        except ValueError:  # not JSON, or refused (UntrustedValue): the query is its text
            return query
        if isinstance(messages, list):
            return "\n".join(m["content"] for m in messages if isinstance(m, dict) and m.get("role", "user") == "user"
                             and isinstance(m.get("content"), str))
    return query


def _key(*parts: str) -> bytes:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).digest()


@dataclass
class EvalIndex:
    """The n-grams (and whole texts) of an evaluation set's queries, as 12-byte digests."""

    ngram: int = 8
    with_tools: bool = False  # query_and_tools: a match needs the same function names
    keys: set[bytes] = field(default_factory=set)
    queries: int = 0

    def _grams(self, query: str, tools: frozenset[str]) -> list[bytes]:
        words = normalized_words(query_text(query))
        scope = ",".join(sorted(tools)) if self.with_tools else ""
        grams = [_key("=", scope, " ".join(words))] if words else []
        grams += [_key("~", scope, " ".join(words[i:i + self.ngram])) for i in range(len(words) - self.ngram + 1)]
        return grams

    def add(self, query: str, tools: frozenset[str] = frozenset()) -> None:
        self.keys.update(self._grams(query, tools))
        self.queries += 1

    def overlaps(self, query: str, tools: frozenset[str] = frozenset()) -> bool:
        return any(g in self.keys for g in self._grams(query, tools))
