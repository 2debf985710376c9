"""Model output text -> a list of calls, or the reason there is none. Pure; never evaluates code.

Hammer's format (`parse_output`, validation.parser=json): a bare JSON list of calls; the same inside
a ``` or ```json fence, with text around the fence; a single call object (wrapped, flagged
`single_object`); `{"tool_calls": [...]}` only when lenient (flagged `tool_calls_wrapper`). Text that
is not JSON is a `parse_error`, never an empty list.

Other families' formats (`PARSERS`): Hermes-style `<tool_call>` blocks, Llama 3 JSON, Mistral's
`[TOOL_CALLS]` and Python-like calls; see the section below.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field

from pipelines.core.reasons import Reason
from pipelines.core import untrusted
from pipelines.core.untrusted import UntrustedValue, raw_decode

_FENCE = "```"
CALL_KEYS = ("name", "arguments")


@dataclass
class Parsed:
    calls: list[dict] | None  # each {"name": str, "arguments": dict}; None when the output is unusable
    errors: list[Reason] = field(default_factory=list)
    flags: list[Reason] = field(default_factory=list)


def strip_fence(text: str) -> str:
    """The body of the first ``` / ```json fence (Hammer often adds one), else the text itself."""
    # By hand, not a regex: `[A-Za-z]*` before a lazy body backtracks quadratically on an unclosed
    # fence followed by letters (100,000 characters of model output took minutes).
    start = text.find(_FENCE)
    if start >= 0:
        body = start + len(_FENCE)
        while body < len(text) and text[body].isascii() and text[body].isalpha():
            body += 1
        end = text.find(_FENCE, body)
        if end >= 0:
            return text[body:end].strip()
    return text.strip()


def _refusing(parser):
    """A parser whose JSON values the untrusted reader refused (a NaN, a duplicate key, a lone
    surrogate, a 5,000-digit number, nesting its scan did not see) gives that reason, not an exception."""
    def parse(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
        try:
            return parser(text, max_chars, max_depth, lenient)
        except UntrustedValue as e:
            return Parsed(None, [e.reason])
    return functools.wraps(parser)(parse)


@_refusing
def parse_output(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
    if len(text) > max_chars:
        return Parsed(None, [Reason("output_too_large", f"{len(text)} characters, limit {max_chars}")])
    body = strip_fence(text)
    if not body:
        return Parsed(None, [Reason("parse_error", "empty output")])
    deep = untrusted.too_deep(body, max_depth)
    if deep:
        return Parsed(None, [Reason("output_too_large", deep.reason.detail)])
    try:
        value = untrusted.loads(body, max_depth=None)  # its depth checked just above
    except json.JSONDecodeError as e:
        return Parsed(None, [Reason("parse_error", str(e))])
    flags = []
    if isinstance(value, dict) and "name" in value:
        value, flags = [value], [Reason("single_object", "the output is one call, not a list")]
    elif isinstance(value, dict) and lenient and isinstance(value.get("tool_calls"), list):
        value, flags = value["tool_calls"], [Reason("tool_calls_wrapper", "calls given under a 'tool_calls' key")]
    if not isinstance(value, list):
        return Parsed(None, [Reason("not_a_list", f"the output is a JSON {_json_type(value)}, expected a list of calls")])
    return _items_to_calls(value, flags)


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _as_call(item, i: int) -> tuple[dict | None, str | None, list[Reason]]:
    if not isinstance(item, dict):
        return None, f"is a JSON {_json_type(item)}, expected an object", []
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None, "has no string 'name'", []
    flags = []
    if "arguments" not in item:
        return None, f"({name}) has no 'arguments'", []
    arguments = item["arguments"]
    if isinstance(arguments, str):  # some models emit arguments as a JSON string
        try:
            arguments = untrusted.loads(arguments)
        except json.JSONDecodeError:
            return None, f"({name}) has 'arguments' that is a string but not JSON", []
        except UntrustedValue as e:
            return None, f"({name}) has 'arguments' that are refused ({e})", []
        flags.append(Reason("arguments_as_string", f"item {i} ({name})"))
    if not isinstance(arguments, dict):
        return None, f"({name}) has 'arguments' that is a JSON {_json_type(arguments)}, expected an object", []
    extra = sorted(k for k in item if k not in CALL_KEYS)
    if extra:
        flags.append(Reason("extra_keys", f"item {i} ({name}) has {', '.join(extra)}"))
    return {"name": name, "arguments": arguments}, None, flags


# ---------------------------------------------------------------- other families' answer formats
#
# Models that take tools through their own chat template answer in their own format. Each parser
# below turns one into the calls parse_output gives, with the same reason codes; text with no call
# in it is a plain answer there (no call, flagged `text_answer`), not a parse error as for Hammer,
# whose prompt asks for a JSON list whatever the answer.

_HERMES_BLOCK = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.S)
_PYTHON_TAG = "<|python_tag|>"
_MISTRAL_CALLS = "[TOOL_CALLS]"
_MISTRAL_ARGS = "[ARGS]"


def _text_answer(text: str) -> Parsed:
    return Parsed([], [], [Reason("text_answer", f"no call in the output ({len(text)} characters of text)")])


def _checked(text: str, max_chars: int, max_depth: int) -> Parsed | None:
    """The size limits every parser applies first (None: within them)."""
    if len(text) > max_chars:
        return Parsed(None, [Reason("output_too_large", f"{len(text)} characters, limit {max_chars}")])
    deep = untrusted.too_deep(text, max_depth)
    if deep:
        return Parsed(None, [Reason("output_too_large", deep.reason.detail)])
    return None


def _items_to_calls(items: list, flags: list[Reason], arguments_key: str = "arguments") -> Parsed:
    """JSON values that should each be a call -> Parsed, as parse_output judges a list's items."""
    calls, errors = [], []
    for i, item in enumerate(items):
        if isinstance(item, dict) and arguments_key != "arguments" and arguments_key in item and "arguments" not in item:
            item = {("arguments" if k == arguments_key else k): v for k, v in item.items()}
        call, problem, item_flags = _as_call(item, i)
        if problem:
            errors.append(Reason("not_a_call", f"item {i} {problem}"))
        else:
            calls.append(call)
            flags = flags + item_flags
    return Parsed(None, errors, flags) if errors else Parsed(calls, [], flags)


def _json_values(text: str) -> tuple[list, str]:
    """Consecutive JSON values at the start of `text` (separated by whitespace, `,` or `;`), and what
    follows them."""
    values, at = [], 0
    while True:
        while at < len(text) and text[at] in " \t\r\n,;":
            at += 1
        if at >= len(text) or text[at] not in "[{":
            return values, text[at:]
        try:
            value, at = raw_decode(text, at)
        except json.JSONDecodeError:
            return values, text[at:]
        values.append(value)


@_refusing
def parse_hermes(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
    """Qwen2.5, Qwen3, Hermes and Hammer 2.x chat templates: each call a JSON object in its own
    `<tool_call>...</tool_call>` block, text allowed around them. A block holding a JSON list, or
    several objects one after another, gives each of its calls; a block that is not closed (cut at
    max_tokens) is a parse error."""
    too_large = _checked(text, max_chars, max_depth)
    if too_large:
        return too_large
    blocks = _HERMES_BLOCK.findall(text)
    if not blocks:
        return _text_answer(text)
    items, flags = [], []
    for i, (body, end) in enumerate(blocks):
        if not end:
            return Parsed(None, [Reason("parse_error", f"<tool_call> block {i} is not closed")])
        values, rest = _json_values(body)  # one call, a list of calls, or several objects one after another
        if not values or rest.strip():
            return Parsed(None, [Reason("parse_error", f"<tool_call> block {i} is not JSON: {body.strip()[:60]!r}")])
        items += [item for value in values for item in (value if isinstance(value, list) else [value])]
    if _HERMES_BLOCK.sub("", text).strip():
        flags.append(Reason("text_around", "text outside the <tool_call> blocks"))
    return _items_to_calls(items, flags)


@_refusing
def parse_llama3_json(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
    """Llama 3.1 / 3.2 / 3.3 JSON tool calls: `{"name": ..., "parameters": {...}}` (or
    "arguments"), after an optional `<|python_tag|>`, several separated by `;`. Text that does not
    start with a JSON object is a plain answer; text after the calls is flagged."""
    too_large = _checked(text, max_chars, max_depth)
    if too_large:
        return too_large
    body = text.strip()
    body = body[len(_PYTHON_TAG):].lstrip() if body.startswith(_PYTHON_TAG) else body
    if not body.startswith("{"):
        return _text_answer(text)
    values, rest = _json_values(body)
    if not values:
        return Parsed(None, [Reason("parse_error", "a call object that is not JSON")])
    flags = [Reason("text_around", f"text after the calls: {rest.strip()[:60]!r}")] if rest.strip() else []
    return _items_to_calls(values, flags, arguments_key="parameters")


@_refusing
def parse_mistral(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
    """Mistral: `[TOOL_CALLS]` then a JSON list of calls (tokenizers before v11), or one
    `[TOOL_CALLS]name[ARGS]{...}` per call (v11 and later). Without `[TOOL_CALLS]` a plain answer."""
    too_large = _checked(text, max_chars, max_depth)
    if too_large:
        return too_large
    if _MISTRAL_CALLS not in text:
        return _text_answer(text)
    before, _, after = text.partition(_MISTRAL_CALLS)
    flags = [Reason("text_around", "text before [TOOL_CALLS]")] if before.strip() else []
    if _MISTRAL_ARGS in after:  # v11: name[ARGS]{...}, one [TOOL_CALLS] per call
        items = []
        for i, chunk in enumerate(after.split(_MISTRAL_CALLS)):
            name, _, arguments = chunk.partition(_MISTRAL_ARGS)
            values, rest = _json_values(arguments)
            if len(values) != 1 or not isinstance(values[0], dict):
                return Parsed(None, [Reason("parse_error", f"call {i} ({name.strip()!r}): arguments that are not one JSON object")])
            if rest.strip():
                flags.append(Reason("text_around", f"text after call {i}"))
            items.append({"name": name.strip(), "arguments": values[0]})
        return _items_to_calls(items, flags)
    values, rest = _json_values(after)
    if not values:
        return Parsed(None, [Reason("parse_error", "no JSON after [TOOL_CALLS]")])
    if rest.strip():
        flags.append(Reason("text_around", "text after the calls"))
    items = [item for value in values for item in (value if isinstance(value, list) else [value])]
    return _items_to_calls(items, flags)


@_refusing
def parse_pythonic(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
    """Python-like calls, `[f(a=1), pkg.g(b="x")]` (Llama 3.2 / 4 pythonic, BFCL's prompting
    models), optionally inside `<|python_start|>...<|python_end|>`. Read with Python's parser, never
    run: every argument must be a keyword whose value is a literal (numbers, strings, booleans,
    None, and lists, dicts and tuples of them). Text that does not start with `[` is a plain answer."""
    import ast

    too_large = _checked(text, max_chars, max_depth)
    if too_large:
        return too_large
    body = strip_fence(text).removeprefix("<|python_start|>").removesuffix("<|python_end|>").strip()
    if not body.startswith("["):
        return _text_answer(text)
    try:
        tree = ast.parse(body, mode="eval").body
    except SyntaxError as e:  # also parentheses nested past the parser's limit
        return Parsed(None, [Reason("parse_error", f"not a Python list of calls: {e.msg} (line {e.lineno})")])
    except (RecursionError, MemoryError):
        return Parsed(None, [Reason("output_too_large", "nested too deep for Python's parser")])
    except ValueError as e:  # a null character, which Python's parser refuses with a ValueError
        return Parsed(None, [Reason("parse_error", f"not a Python list of calls: {str(e)[:120]}")])
    if not isinstance(tree, ast.List):
        return Parsed(None, [Reason("not_a_list", "the output is a Python expression, expected a list of calls")])
    calls, errors = [], []
    for i, node in enumerate(tree.elts):
        call, problem = _python_call(node)
        if problem:
            errors.append(Reason("not_a_call", f"item {i} {problem}"))
        else:
            calls.append(call)
    return Parsed(None, errors) if errors else Parsed(calls)


def _python_call(node) -> tuple[dict | None, str | None]:
    import ast

    if not isinstance(node, ast.Call):
        return None, f"is a Python {type(node).__name__}, expected a call"
    parts, target = [], node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if not isinstance(target, ast.Name):
        return None, "calls something that is not a (dotted) name"
    name = ".".join([target.id, *reversed(parts)])
    if node.args:
        return None, f"({name}) has positional arguments; expected keywords"
    arguments = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None, f"({name}) has **arguments"
        try:
            arguments[keyword.arg] = untrusted.check_value(_as_json(ast.literal_eval(keyword.value)))
        except UntrustedValue as e:
            return None, f"({name}) argument {keyword.arg!r} is refused ({e})"
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None, f"({name}) argument {keyword.arg!r} is not a literal JSON can hold"
    return {"name": name, "arguments": arguments}, None


def _as_json(value):
    """A Python literal as the JSON value it stands for (tuples become lists); TypeError for what JSON
    cannot hold (sets, bytes, complex numbers, keys that are not strings)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _as_json(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


# validation.parser: which of the formats above the model answers in
PARSERS = {"json": parse_output, "hermes": parse_hermes, "llama3_json": parse_llama3_json, "mistral": parse_mistral,
           "pythonic": parse_pythonic}
