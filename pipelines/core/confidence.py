"""How far to trust a label: agreement of sampled outputs with it, their consensus, the
log-probabilities of its tokens (all of them, and those of the argument values alone), and the
buckets a summary's calibration table groups rows by. Pure.

Equality of two call lists is the scoring equality (scoring.same_calls): BFCL's value
normalization, parallel calls in any order, an omitted argument equal to its default.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from pipelines.core.parsing import strip_fence
from pipelines.core.reasons import NO_CALL, OK
from pipelines.core.scoring import same_calls
from pipelines.core.tools import Tool
from pipelines.core.untrusted import too_deep

VALID = (OK, NO_CALL)  # outputs that count towards a consensus


@dataclass
class Confidence:
    agreement: float | None  # share of samples whose calls equal the label's; None without samples
    consensus_calls: list[dict] | None  # the calls a strict majority of all outputs agree on
    consensus_share: float | None  # the largest group of equal valid outputs, as a share of all outputs


def confidence(label: tuple[str, list[dict] | None], samples: list[tuple[str, list[dict] | None]],
               tools: list[Tool]) -> Confidence:
    """label and samples as (status, calls); calls None when unusable. Every output counts in the
    denominators, so a sample the engine failed or that does not parse counts as disagreeing."""
    if not samples:
        return Confidence(None, None, None)
    label_calls = label[1]
    agreeing = sum(1 for _, calls in samples
                   if label_calls is not None and calls is not None and same_calls(calls, label_calls, tools))
    groups: list[list[list[dict]]] = []  # groups of equal valid outputs, the label's first
    for status, calls in [label, *samples]:
        if status not in VALID or calls is None:
            continue
        group = next((g for g in groups if same_calls(calls, g[0], tools)), None)
        if group is None:
            groups.append([calls])
        else:
            group.append(calls)
    total = len(samples) + 1
    largest = max(groups, key=len, default=[])  # max keeps the first of equal sizes: the label's group
    share = len(largest) / total
    return Confidence(agreeing / len(samples), largest[0] if share > 0.5 else None, share)


def runs_agreement(outputs: list[tuple[str, list[dict] | None]], tools: list[Tool]) -> tuple[bool, Confidence]:
    """Several runs' outputs for one row, as (status, calls): whether they all agree (every one valid
    and equal), and their consensus, counted as a label's samples are (the first run in the label's place)."""
    result = confidence(outputs[0], outputs[1:], tools)
    return result.consensus_share == 1.0, result


# ----------------------------------------------------------------------------- log-probabilities


@dataclass
class LogprobStats:
    mean: float | None
    min: float | None
    value_mean: float | None  # over the tokens of argument values alone
    value_min: float | None


def logprob_stats(text: str, token_texts: list[str], logprobs: list[float]) -> LogprobStats:
    """Per-token log-probabilities of an output -> their mean and minimum, over all tokens and over
    those that overlap an argument value (found in `text` by argument_value_spans). The token texts
    are the engine's decoded tokens, whose concatenation is the text."""
    if not logprobs:
        return LogprobStats(None, None, None, None)
    spans = argument_value_spans(text)
    in_values, start = [], 0
    for piece, logprob in zip(token_texts, logprobs):
        end = start + len(piece)
        if any(s < end and start < e for s, e in spans):
            in_values.append(logprob)
        start = end
    return LogprobStats(_mean(logprobs), min(logprobs), _mean(in_values), min(in_values) if in_values else None)


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def argument_value_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the scalar values inside each call's `arguments`, in the output text as
    generated (inside its ``` fence, if any). Empty when the output is not a JSON list or object."""
    body = strip_fence(text)
    offset = text.find(body) if body else -1
    if offset < 0:
        return []
    if too_deep(body):  # the scanner recurses: a deep output has no spans (and is a parse error anyway)
        return []
    scanner = _Scanner(text, offset)
    try:
        scanner.value(in_arguments=False)
    except (ValueError, IndexError, RecursionError):  # ValueError: also a number past Python's digit limit
        return []
    return scanner.spans


class _Scanner:
    """A small JSON reader that keeps positions: json.loads gives values, not where they were."""

    def __init__(self, text: str, start: int):
        self.text, self.i, self.spans = text, start, []

    def _skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\r\n":
            self.i += 1

    def value(self, in_arguments: bool) -> None:
        self._skip()
        ch = self.text[self.i]
        if ch == "{":
            self._object(in_arguments)
        elif ch == "[":
            self._array(in_arguments)
        else:
            start = self.i
            if ch == '"':
                self._string()
            else:
                _, self.i = json.JSONDecoder().raw_decode(self.text, self.i)
            if in_arguments:
                self.spans.append((start, self.i))

    def _string(self) -> str:
        decoded, end = json.decoder.scanstring(self.text, self.i + 1)
        self.i = end
        return decoded

    def _object(self, in_arguments: bool) -> None:
        self.i += 1
        self._skip()
        if self.text[self.i] == "}":
            self.i += 1
            return
        while True:
            self._skip()
            if self.text[self.i] != '"':
                raise ValueError("expected a key")
            key = self._string()
            self._skip()
            if self.text[self.i] != ":":
                raise ValueError("expected ':'")
            self.i += 1
            self.value(in_arguments or key == "arguments")
            if self._closed_after_item("}"):
                return

    def _array(self, in_arguments: bool) -> None:
        self.i += 1
        self._skip()
        if self.text[self.i] == "]":
            self.i += 1
            return
        while True:
            self.value(in_arguments)
            if self._closed_after_item("]"):
                return

    def _closed_after_item(self, close: str) -> bool:
        """Past an item of an object or array: a comma (False: more to come) or `close` (True)."""
        self._skip()
        if self.text[self.i] == ",":
            self.i += 1
            return False
        if self.text[self.i] == close:
            self.i += 1
            return True
        raise ValueError(f"expected ',' or '{close}'")


# ---------------------------------------------------------------------------------- calibration

AGREEMENT_BUCKETS = ((0.0, "0"), (0.5, "(0, 0.5)"), (0.8, "[0.5, 0.8)"), (1.0, "[0.8, 1)"), (math.inf, "1"))
LOGPROB_BUCKETS = ((-2.0, "< -2"), (-0.5, "[-2, -0.5)"), (-0.1, "[-0.5, -0.1)"), (math.inf, ">= -0.1"))


def agreement_bucket(agreement: float | None) -> str | None:
    """0, (0, 0.5), [0.5, 0.8), [0.8, 1), 1: the ends apart, since they are the common cases."""
    if agreement is None:
        return None
    if agreement == 0:
        return "0"
    if agreement == 1:
        return "1"
    return next(name for bound, name in AGREEMENT_BUCKETS[1:] if agreement < bound)


def logprob_bucket(value: float | None) -> str | None:
    if value is None:
        return None
    return next(name for bound, name in LOGPROB_BUCKETS if value < bound)
