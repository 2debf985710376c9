"""Tool definitions: the three accepted forms -> one canonical form, and type names -> JSON Schema.

Accepted forms, mixed freely within a dataset and even within a row:
  * OpenAI:   {"type": "function", "function": {name, description, parameters}}
  * function: {name, description, parameters: {"type": "object", "properties": {...}, "required": [...]}}
  * xLAM:     {name, description, parameters: {param: {type, description, default?}, ...}}

The canonical tool keeps every parameter's own keys in their original order (the Hammer prompt
shows them as written) and adds the list of required names.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jsonschema_rs
import re2

from pipelines.core import untrusted
from pipelines.core.reasons import Reason


class BadInput(ValueError):
    """A row that cannot be labeled; `code` is the stable reason code written to `errors`."""

    def __init__(self, code: str, detail: str):
        self.reason = Reason(code, detail)
        super().__init__(str(self.reason))
        self.code = code


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    properties: dict[str, dict]  # parameter name -> the parameter's own object, as given
    required: list[str] = field(default_factory=list)  # as declared (xLAM declares none)
    form: str = "function"  # "openai", "function" or "xlam"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "properties": self.properties,
            "required": self.required,
            "form": self.form,
        }

    def to_raw(self) -> dict:
        """Back to the form it was given in (the inverse of normalize_tool, up to keys it ignores)."""
        if self.form == "xlam":
            return {"name": self.name, "description": self.description, "parameters": self.properties}
        function = {"name": self.name, "description": self.description,
                    "parameters": {"type": "object", "properties": self.properties, "required": self.required}}
        return {"type": "function", "function": function} if self.form == "openai" else function

    @classmethod
    def from_dict(cls, d: dict) -> "Tool":
        return cls(d["name"], d["description"], d["properties"], d["required"], d["form"])


def plain_cell(value: Any) -> Any:
    """A `tools` or `answers` cell read from parquet as plain Python: a list of structs comes back
    with absent fields as None (parquet structs cannot tell absent from null), so those are dropped."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: plain_cell(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain_cell(v) for v in value]
    return value


def load_tools(raw: Any) -> list[Tool]:
    """Parses the `tools` cell (a JSON string or a list of objects) into canonical tools.

    Raises BadInput naming the tool and what is wrong with it.
    """
    if raw is None:
        raise BadInput("missing_tools", "tools is null")
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadInput("tools_not_json", f"tools is not UTF-8 ({e})") from None
    if isinstance(raw, str):
        return list(_load_tools_text(raw))
    try:
        untrusted.check_value(raw, MAX_TOOLS_DEPTH)
    except untrusted.UntrustedValue as e:
        raise _tools_refused(e) from None
    return _load_tools_value(raw)


def _tools_refused(e: untrusted.UntrustedValue) -> BadInput:
    """A tools cell the untrusted reader refused, as the row's reason; nesting keeps the one code a
    too-deep schema has (schema_too_deep), whichever check met it first."""
    return BadInput("schema_too_deep" if e.code == "too_deep" else e.code, f"tools: {e.reason.detail}")


@functools.lru_cache(maxsize=4096)
def _load_tools_text(raw: str) -> tuple[Tool, ...]:
    """Each distinct tool set is parsed and checked once: datasets repeat them."""
    try:
        value = untrusted.loads(raw, MAX_TOOLS_DEPTH)
    except json.JSONDecodeError as e:
        raise BadInput("tools_not_json", f"tools is not valid JSON ({e})") from None
    except untrusted.UntrustedValue as e:
        raise _tools_refused(e) from None
    return tuple(_load_tools_value(value))


def _load_tools_value(raw: Any) -> list[Tool]:
    if isinstance(raw, dict):
        raise BadInput("tools_not_list", "tools is one object, expected a list of tools")
    if not isinstance(raw, list):
        raise BadInput("tools_not_list", f"tools is a {type(raw).__name__}, expected a list of tools")
    if not raw:
        raise BadInput("tools_empty", "tools is an empty list: nothing to call")
    tools = [normalize_tool(t, i) for i, t in enumerate(raw)]
    seen: set[str] = set()
    for t in tools:
        if t.name in seen:
            raise BadInput("duplicate_tool_name", f"tool name {t.name!r} appears more than once")
        seen.add(t.name)
    return tools


def normalize_tool(raw: Any, index: int = 0) -> Tool:
    """One tool in any accepted form -> Tool."""
    where = f"tool #{index}"
    if not isinstance(raw, dict):
        raise BadInput("tool_not_object", f"{where} is a {type(raw).__name__}, expected an object")
    form = "function"
    if raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        raw, form = raw["function"], "openai"
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadInput("tool_without_name", f"{where} has no name")
    where = f"tool {name!r}"
    description = raw.get("description")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise BadInput("bad_description", f"{where} has a {type(description).__name__} description")
    params = raw.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadInput("parameters_not_object", f"{where}: parameters is a {type(params).__name__}")

    if isinstance(params.get("type"), str):  # a JSON-schema wrapper; xLAM values are objects
        if params["type"] not in ("object", "dict"):  # `dict` is BFCL's spelling
            raise BadInput("parameters_not_object", f"{where}: parameters has type {params['type']!r}, expected object")
        properties = params.get("properties") or {}
        required = params.get("required") or []
        if not isinstance(properties, dict):
            raise BadInput("parameters_not_object", f"{where}: parameters.properties is not an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise BadInput("bad_required", f"{where}: parameters.required is not a list of names")
        absent = [r for r in required if r not in properties]
        if absent:
            raise BadInput("required_not_found", f"{where}: required names absent parameters {absent}")
    else:
        form, properties, required = "xlam", params, []
    for pname, spec in properties.items():
        if not isinstance(spec, dict):
            raise BadInput("parameter_not_object", f"{where}: parameter {pname!r} is not an object")
    depth = _depth(params)
    if depth > MAX_SCHEMA_DEPTH:
        raise BadInput("schema_too_deep", f"{where}: parameters nest {depth} levels deep, limit {MAX_SCHEMA_DEPTH}")
    reference, unsupported, patterns = _scan(params)
    if reference:
        raise BadInput("unsupported_ref", f"{where}: parameters use {reference}; inline the referenced schema "
                                          "(nothing outside the row's own tools is ever read)")
    if unsupported:
        raise BadInput("unsupported_keyword", f"{where}: parameters use {unsupported}, which is not checked; "
                                              "use additionalProperties / items")
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            raise BadInput("unsupported_pattern", f"{where}: pattern {untrusted.shown(pattern)} {problem}")
    tool = Tool(name, description, properties, list(required), form)
    problem = _schema_problem(json.dumps(parameters_schema(tool)[0], sort_keys=True))
    if problem:
        raise BadInput("invalid_schema", f"{where}: {problem}")
    return tool


# Regular expressions of a tool (`pattern`, `patternProperties`) run on RE2, whose time is linear in
# the text: a backtracking engine takes exponential time on `^(a+)+$` against a model's `aaaa...!`.
# RE2 has no back-references or look-arounds; a tool using them is refused. Like ECMA-262's (JSON
# Schema's own dialect), its \w, \d and \b are ASCII.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=4096)
def linear_regex(pattern: str):
    """A tool's pattern compiled for RE2; re2.error for one it cannot run in linear time."""
    return re2.compile(pattern, _RE2_OPTIONS)


def pattern_problem(pattern: str) -> str | None:
    try:
        linear_regex(pattern)
    except re2.error as e:
        return (f"cannot run in linear time ({e.args[0].decode() if isinstance(e.args[0], bytes) else e}): "
                "back-references and look-arounds are not checked; rewrite the pattern without them")
    return None


def _is_linear_regex(pattern: str) -> bool:
    return pattern_problem(pattern) is None


# The 2020-12 meta-schema, checked by jsonschema-rs: jsonschema's own check_schema took 0.6 ms per
# schema, most of the prompt stage's time (docs/performance.md); this takes about 2 us. Patterns are
# checked with RE2, the engine that validation later runs them with.
_META_SCHEMA = jsonschema_rs.Draft202012Validator(
    jsonschema.Draft202012Validator.META_SCHEMA, validate_formats=True, formats={"regex": _is_linear_regex})


@functools.lru_cache(maxsize=65536)
def _schema_problem(schema_json: str) -> str | None:
    """The meta-schema check, once per distinct schema (datasets repeat their tool sets)."""
    error = next(_META_SCHEMA.iter_errors(json.loads(schema_json)), None)
    return error.message if error else None


MAX_SCHEMA_DEPTH = 16  # nesting of objects and lists in one tool's parameters


def _depth(value, limit: int = MAX_SCHEMA_DEPTH + 1) -> int:
    """Nesting depth, counted no further than `limit` (so a hostile schema costs little)."""
    if limit <= 0 or not isinstance(value, (dict, list)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(c, limit - 1) for c in children), default=0)


# Keywords that make a schema read another document (or name itself for one to read): a row's
# tools could point the validator at a local file or any address (an instance-metadata URL). Refused
# wherever they appear; the validators also run with a registry that retrieves nothing.
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef", "$id", "$schema", "$anchor", "$dynamicAnchor",
                      "$recursiveAnchor", "$vocabulary")
# jsonschema evaluates these by matching patternProperties with Python's backtracking `re`.
UNSUPPORTED_KEYWORDS = ("unevaluatedProperties", "unevaluatedItems")
MAX_TOOLS_DEPTH = 64  # nesting of a whole tools cell, refused (too_deep) before any schema is read


def _scan(params) -> tuple[str | None, str | None, list[str]]:
    """One walk over a tool's parameters (its depth already bounded): the first reference keyword,
    the first unsupported keyword, and every `pattern` and `patternProperties` key."""
    reference = unsupported = None
    patterns: list[str] = []
    stack = [params]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            reference = reference or next((k for k in REFERENCE_KEYWORDS if k in item), None)
            unsupported = unsupported or next((k for k in UNSUPPORTED_KEYWORDS if k in item), None)
            if isinstance(item.get("pattern"), str):
                patterns.append(item["pattern"])
            if isinstance(item.get("patternProperties"), dict):
                patterns.extend(item["patternProperties"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return reference, unsupported, patterns


def _is_optional(spec: dict) -> bool:
    t = spec.get("type")
    return "default" in spec or (isinstance(t, str) and (t.endswith("optional") or t.startswith("Optional[")))


# ---------------------------------------------------------------- type names -> JSON Schema

_SIMPLE_TYPES = {
    # JSON Schema
    "string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
    "array": "array", "object": "object", "null": "null",
    # Python / xLAM
    "str": "string", "int": "integer", "float": "number", "bool": "boolean",
    "list": "array", "dict": "object", "tuple": "array", "set": "array", "none": "null",
    # BFCL Java / JavaScript
    "char": "string", "long": "integer", "short": "integer", "byte": "integer",
    "double": "number", "bigint": "integer", "hashmap": "object", "map": "object",
    "arraylist": "array", "linkedlist": "array", "array": "array",
}
_ANY = {"any", "object?", "mixed"}
MAX_TYPE_CHARS = 256
_GENERIC = re.compile(r"^\s*([A-Za-z_.]+)\s*\[(.*)\]\s*$", re.S)


def type_schema(type_name: str) -> tuple[dict, bool]:
    """A type name (JSON Schema, BFCL or Python) -> (JSON Schema, known).

    Unknown names give an accept-anything schema and known=False; so do names longer than
    MAX_TYPE_CHARS, whose nested generics would cost depth x length to read.
    """
    t = type_name.strip()
    if len(t) > MAX_TYPE_CHARS:
        return {}, False
    t = re.sub(r",\s*optional\s*$", "", t, flags=re.I)
    generic = _GENERIC.match(t)
    if generic:
        head, args = generic.group(1).lower().split(".")[-1], _split_args(generic.group(2))
        inner = [type_schema(a) for a in args]
        known = all(k for _, k in inner)
        if head == "optional" and len(inner) == 1:
            return {"anyOf": [inner[0][0], {"type": "null"}]}, known
        if head == "union":
            return {"anyOf": [s for s, _ in inner]}, known
        if head in ("list", "set", "sequence", "iterable"):
            return ({"type": "array", "items": inner[0][0]} if inner else {"type": "array"}), known
        if head == "tuple":
            if len(args) == 2 and args[1].strip() == "...":
                return {"type": "array", "items": inner[0][0]}, inner[0][1]
            return {"type": "array", "prefixItems": [s for s, _ in inner], "items": False}, known
        if head in ("dict", "mapping"):
            value = inner[1][0] if len(inner) == 2 else {}
            return {"type": "object", "additionalProperties": value}, known
        if head == "literal":
            return {"enum": [_literal_value(a) for a in args]}, True
        return {}, False
    if "|" in t:
        parts = [type_schema(p) for p in t.split("|")]
        return {"anyOf": [s for s, _ in parts]}, all(k for _, k in parts)
    low = t.lower()
    if low in _ANY:
        return {}, True
    if low in _SIMPLE_TYPES:
        return {"type": _SIMPLE_TYPES[low]}, True
    return {}, False


def _split_args(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _literal_value(s: str) -> Any:
    try:
        return json.loads(s.replace("'", '"'))
    except json.JSONDecodeError:
        return s


# Keys of a parameter object that describe it for people, not for validation.
_NOT_VALIDATION = {"description", "default", "title", "examples", "example", "required", "optional"}


def param_schema(spec: dict) -> tuple[dict, set[str]]:
    """A parameter object -> (JSON Schema for its value, unknown type names met)."""
    unknown: set[str] = set()
    schema = {k: copy.deepcopy(v) for k, v in spec.items() if k not in _NOT_VALIDATION}
    t = spec.get("type")
    if isinstance(t, str):
        ts, known = type_schema(t)
        if not known:
            unknown.add(t)
        del schema["type"]
        schema = _merge(ts, schema)
    elif isinstance(t, list):
        parts = [type_schema(x) if isinstance(x, str) else ({}, False) for x in t]
        unknown |= {str(x) for x, (_, k) in zip(t, parts) if not k}
        del schema["type"]
        schema = _merge({"anyOf": [s for s, _ in parts]}, schema)
    if isinstance(spec.get("items"), dict):
        schema["items"], u = param_schema(spec["items"])
        unknown |= u
    if _is_array_enum(spec):
        # BFCL's and OpenAPI-derived specs put an array's allowed item values in the array's `enum`.
        schema["items"] = {**schema.get("items", {}), "enum": schema.pop("enum")}
    if isinstance(spec.get("properties"), dict):
        props = {}
        for name, sub in spec["properties"].items():
            if isinstance(sub, dict):
                props[name], u = param_schema(sub)
                unknown |= u
        schema["properties"] = props
        required = spec.get("required")
        nested_required = [n for n, s in spec["properties"].items() if isinstance(s, dict) and s.get("required") is True]
        if isinstance(required, list):
            schema["required"] = required
        elif nested_required:
            schema["required"] = nested_required
    if isinstance(spec.get("additionalProperties"), dict):
        schema["additionalProperties"], u = param_schema(spec["additionalProperties"])
        unknown |= u
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(spec.get(key), list):
            subs = [param_schema(s) if isinstance(s, dict) else (s, set()) for s in spec[key]]
            schema[key] = [s for s, _ in subs]
            for _, u in subs:
                unknown |= u
    return schema, unknown


def _is_array_enum(spec: dict) -> bool:
    """An array parameter whose `enum` lists scalars: meant for its items, not for the whole list."""
    enum = spec.get("enum")
    return (spec.get("type") in ("array", "list") and isinstance(enum, list) and bool(enum)
            and not any(isinstance(v, list) for v in enum))


def array_enum_parameters(tool: Tool) -> list[str]:
    """The tool's parameters whose `enum` is checked on the items (flagged `enum_on_array`)."""
    return [name for name, spec in tool.properties.items() if isinstance(spec, dict) and _is_array_enum(spec)]


def _merge(base: dict, extra: dict) -> dict:
    if not extra:
        return base
    if "anyOf" in base and len(base) == 1:
        return {**extra, "anyOf": base["anyOf"]}
    return {**base, **extra}


def parameters_schema(tool: Tool) -> tuple[dict, set[str]]:
    """The whole argument object of a tool -> (JSON Schema, unknown type names met)."""
    props, unknown = {}, set()
    for name, spec in tool.properties.items():
        props[name], u = param_schema(spec)
        unknown |= u
    schema = {"type": "object", "properties": props, "required": required_parameters(tool), "additionalProperties": False}
    return schema, unknown


def required_parameters(tool: Tool) -> list[str]:
    if tool.form == "xlam":  # xLAM marks optional parameters in the type name; the others are required
        return [p for p, spec in tool.properties.items() if not _is_optional(spec)]
    return tool.required


def openai_tool(tool: Tool) -> dict:
    """A tool as OpenAI's function tools give it (what chat templates' `tools=` and the chat API take):
    its parameters as given, under a JSON Schema object."""
    parameters = {"type": "object", "properties": tool.properties, "required": required_parameters(tool)}
    return {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": parameters}}


def calls_schema(tools: list[Tool]) -> dict:
    """JSON Schema of a valid answer: a list of calls, each to one of `tools` with its arguments."""
    variants = [
        {"type": "object",
         "properties": {"name": {"const": t.name}, "arguments": parameters_schema(t)[0]},
         "required": ["name", "arguments"], "additionalProperties": False}
        for t in tools
    ]
    return {"type": "array", "items": {"anyOf": variants}}
