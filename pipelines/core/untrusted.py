"""JSON from rows and from models, read with stated handling of what JSON parsers let through. Pure.

Every JSON text the job reads from a row (tools, answers, a multi-turn query) or from a model's
output goes through `loads`; every value that arrives already parsed (a parquet struct of tools)
through `check_value`. What each does with the values that break a run or the file it writes:

  * nesting past `max_depth`: refused (`too_deep`), found by one linear scan before parsing, so a
    deep value never reaches a recursive parser;
  * integers of more than MAX_INT_DIGITS (4,300) digits: refused (`number_too_large`); past Python's
    string-conversion limit they can be neither read nor written back as text;
  * `NaN`, `Infinity`, `-Infinity` and float literals past the double range (`1e999`): refused
    (`not_finite`); they are not JSON, and a call holding one could not be written as JSON;
  * the same key twice in one object: refused (`duplicate_key`); which value was meant is unknowable;
  * a lone UTF-16 surrogate (`"\\ud800"`): refused (`invalid_unicode`); no UTF-8 text, Arrow string or
    tokenizer input can hold it.

Every refusal is an UntrustedValue carrying a Reason (code and detail) for the row's `errors`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from pipelines.core.reasons import Reason

MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300  # Python's own conversion limit: json raises past it
MAX_DEPTH = 32  # nesting of lists and objects in one value


class UntrustedValue(ValueError):
    """A JSON text or value the job refuses; `reason` says why, for the row's errors."""

    def __init__(self, code: str, detail: str):
        self.reason = Reason(code, detail)
        self.code = code
        super().__init__(str(self.reason))


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting outside strings: checked before parsing so that a hostile text costs
    one linear scan, not a deep recursion. (A stray quote makes the rest look like a string; json's
    own recursion limit, turned into `too_deep`, is the backstop for what that hides.)"""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedValue("not_finite", f"{text[:40]} is past the range of a double")
    return value


def _constant(name: str):
    raise UntrustedValue("not_finite", f"{name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise UntrustedValue("duplicate_key", f"the key {shown(key)} appears twice in one object")
    return out


# Integers are read by json's own C code, which raises ValueError past MAX_INT_DIGITS (number_too_large).
DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant, object_pairs_hook=_object)
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # how a lone surrogate gets into JSON text


def _decode(decode, *args):
    """json's decode or raw_decode, its failures as the module's refusals (JSONDecodeError stays)."""
    try:
        return decode(*args)
    except (UntrustedValue, json.JSONDecodeError):
        raise
    except RecursionError:  # a depth the scan did not see (a caller's own bound): refused all the same
        raise UntrustedValue("too_deep", "nested too deep for the parser") from None
    except ValueError as e:  # json's int(): past Python's digit limit
        raise UntrustedValue("number_too_large", f"an integer past {MAX_INT_DIGITS} digits ({str(e)[:80]})") from None


def _check_decoded(text: str, value: Any) -> None:
    """Lone surrogates in what `text` decoded to: only escapes or raw ones in the text can make them."""
    if _ESCAPED_SURROGATE.search(text) or not text.isascii() and _has_surrogate(text):
        check_strings(value)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def too_deep(text: str, max_depth: int = MAX_DEPTH) -> UntrustedValue | None:
    if text.count("[") + text.count("{") <= max_depth:  # cannot nest deeper than it has brackets: no scan
        return None
    depth = nesting_depth(text)
    return UntrustedValue("too_deep", f"nested {depth} deep, limit {max_depth}") if depth > max_depth else None


def loads(text: str, max_depth: int | None = MAX_DEPTH) -> Any:
    """A JSON text -> its value, refusing what the module's docstring lists (UntrustedValue);
    json.JSONDecodeError for text that is not JSON. max_depth None: the caller checked the depth."""
    if max_depth is not None:
        deep = too_deep(text, max_depth)
        if deep:
            raise deep
    value = _decode(DECODER.decode, text)
    _check_decoded(text, value)
    return value


def raw_decode(text: str, at: int, max_depth: int = MAX_DEPTH) -> tuple[Any, int]:
    """One JSON value starting at `at` (json.JSONDecoder.raw_decode), checked as `loads` checks. Its
    depth is measured on the text it took (what precedes it cannot mislead the scan)."""
    value, end = _decode(DECODER.raw_decode, text, at)
    taken = text[at:end]
    deep = too_deep(taken, max_depth)
    if deep:
        raise deep
    _check_decoded(taken, value)
    return value, end


def check_strings(value: Any) -> None:
    """Lone surrogates in a parsed value's strings and keys (its depth already bounded)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UntrustedValue("invalid_unicode", f"a lone surrogate {text[e.start]!a} at character {e.start}") from None


def check_text(text: str) -> str:
    """A text cell (a query) that UTF-8 can hold; UntrustedValue otherwise."""
    _check_text(text)
    return text


def check_value(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """An already parsed value (a parquet cell as Python) held to what `loads` accepts: JSON's types
    only, finite numbers, integers within MAX_INT_DIGITS, string keys, text without lone surrogates,
    nesting within max_depth. Returns it unchanged; UntrustedValue otherwise."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise UntrustedValue("too_deep", f"nested more than {max_depth} deep")
            if isinstance(item, dict):
                for key, sub in item.items():
                    if not isinstance(key, str):
                        raise UntrustedValue("not_json", f"an object key of type {type(key).__name__}")
                    _check_text(key)
                    stack.append((sub, depth + 1))
            else:
                stack.extend((sub, depth + 1) for sub in item)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if item.bit_length() > MAX_INT_DIGITS * 3.33:
                raise UntrustedValue("number_too_large", f"an integer of about {int(item.bit_length() / 3.32)} digits, "
                                                         f"limit {MAX_INT_DIGITS}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise UntrustedValue("not_finite", f"{item} is not JSON")
        else:
            raise UntrustedValue("not_json", f"a value of type {type(item).__name__}")
    return value


def shown(text: str, limit: int = 60) -> str:
    """A row's text in a message: its start, quoted, ASCII (no lone surrogate reaches a column)."""
    return repr(text[:limit]).encode("ascii", "backslashreplace").decode()


def dumps(value: Any) -> str:
    """A checked value as JSON text (what the CALL columns hold): strict JSON, never NaN."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
