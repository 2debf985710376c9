"""Calls against the row's tools -> status, reasons, call type. Pure; jsonschema does the type checks."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Callable

import jsonschema
import referencing
import referencing.exceptions

from pipelines.core.parsing import PARSERS
from pipelines.core.prompts import parse_query
from pipelines.core.reasons import INVALID_CALL, NO_CALL, OK, PARSE_ERROR, Reason
from pipelines.core.tools import Tool, array_enum_parameters, linear_regex, parameters_schema

# Row statuses, in the order the pipeline can assign them.
# Bump when validation, parsing or scoring change what a label means: a rerun then refuses to mix.
# 3: out_of_range, enum on arrays checked on the items; 4: gold audited against its tools; 5: truncated labels;
# 6: possible answers as gold, scoring.rules, validation.parser; 7: hostile values refused (untrusted.py), patterns on RE2
VALIDATION_VERSION = "7"


@dataclass
class ValidationConfig:
    max_output_chars: int = 100_000  # longer raw output is rejected as output_too_large
    max_depth: int = 32  # deeper JSON nesting is rejected as output_too_large
    lenient: bool = False  # also accept {"tool_calls": [...]} (flagged; the json parser only)
    parser: str = "json"  # the format the model answers in: a key of parsing.PARSERS (Hammer's is json)


CALL_TYPES = ("single", "multiple", "parallel", "parallel_multiple", "none")
_DETAIL_CHARS = 300

# jsonschema keyword of a failed check -> our reason code; any other keyword is a wrong type
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
           "pattern", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties")
TYPE_MISMATCH = "type_mismatch"
SCHEMA_KEYWORD_CODES = {"required": "missing_required", "additionalProperties": "unknown_argument", "enum": "enum_mismatch",
           "const": "enum_mismatch", **{keyword: "out_of_range" for keyword in _BOUNDS}}


@dataclass
class Label:
    status: str
    calls: list[dict] | None
    errors: list[Reason] = field(default_factory=list)
    flags: list[Reason] = field(default_factory=list)
    call_type: str = "none"


def call_type(calls: list[dict], num_tools: int) -> str:
    """BFCL's categories: how many calls, and how many distinct functions, were made."""
    if not calls:
        return "none"
    if len(calls) == 1:
        return "multiple" if num_tools > 1 else "single"
    return "parallel" if len({c["name"] for c in calls}) == 1 else "parallel_multiple"


def label_output(text: str, tools: list[Tool], query: str = "", settings: ValidationConfig | None = None,
                 unmask: Callable[[list[dict]], list[dict]] | None = None) -> Label:
    """unmask: maps calls made against masked names back to `tools` (labeling with mask.names)."""
    settings = settings or ValidationConfig()
    parsed = PARSERS[settings.parser](text, settings.max_output_chars, settings.max_depth, settings.lenient)
    if parsed.calls is None:
        status = INVALID_CALL if parsed.errors[0].code == "not_a_call" else PARSE_ERROR
        return Label(status, None, parsed.errors, parsed.flags)
    calls = unmask(parsed.calls) if unmask else parsed.calls
    if not calls:
        return Label(NO_CALL, [], [], parsed.flags, "none")
    errors, flags = validate_calls(calls, tools)
    flags = parsed.flags + flags + grounding_flags(calls, tools, query)
    return Label(INVALID_CALL if errors else OK, calls, errors, flags, call_type(calls, len(tools)))


def validate_calls(calls: list[dict], tools: list[Tool]) -> tuple[list[Reason], list[Reason]]:
    by_name = {t.name: t for t in tools}
    validators: dict[str, jsonschema.Draft202012Validator] = {}
    errors: list[Reason] = []
    flags: list[Reason] = []
    for call in calls:
        name = call["name"]
        tool = by_name.get(name)
        if tool is None:
            errors.append(Reason("unknown_function", f"{name!r} is not among the tools ({', '.join(sorted(by_name))})"))
            continue
        if name not in validators:
            validators[name], unknown = _tool_validator(json.dumps(tool.to_dict()))
            flags += [Reason("unknown_type", f"{name} has type {t!r}; not checked") for t in sorted(unknown)]
        for err in validators[name].iter_errors(call["arguments"]):
            errors.append(_reason(name, err))
        flags += [Reason("enum_on_array", f"{name}.{p}: the enum is checked on each item") for p in array_enum_parameters(tool)
                  if p in call["arguments"]]
    return errors, flags


# ---------------------------------------------------------- a validator whose work is linear in the row
#
# jsonschema's 2020-12 validator with three keywords replaced, so that no check costs more than the
# value's size: `pattern` and `patternProperties` (and additionalProperties, which matches them)
# run on RE2 (tools.linear_regex); `uniqueItems` hashes each item once instead of comparing every
# pair. Its registry retrieves nothing: a reference never reaches a file or the network (the tools
# with one are refused first, tools.REFERENCE_KEYWORDS).


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not linear_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance[:80]!r} does not match {pattern!r}")


def _matched_by_pattern(schema: dict, key: str) -> bool:
    return any(linear_regex(p).search(key) for p in schema.get("patternProperties", {}))


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = linear_regex(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    extras = [k for k in instance if k not in known and not _matched_by_pattern(schema, k)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        shown = ", ".join(repr(e) for e in sorted(extras))
        yield jsonschema.ValidationError(f"Additional properties are not allowed ({shown} "
                                         f"{'was' if len(extras) == 1 else 'were'} unexpected)")


def _identity(value):
    """A hashable key equal for values JSON Schema calls equal: 1 and 1.0 alike, true and 1 not,
    objects by their keys and values in any order."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_identity(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, _identity(v)) for k, v in value.items()))
    return ("other", repr(value))


def _unique_items(validator, unique, instance, schema):
    if unique and validator.is_type(instance, "array"):
        seen = set()
        for item in instance:
            key = _identity(item)
            if key in seen:
                yield jsonschema.ValidationError(f"{json.dumps(item)[:80]} appears more than once (non-unique elements)")
                return
            seen.add(key)


def _no_retrieval(uri: str):
    raise referencing.exceptions.NoSuchResource(ref=uri)


LinearValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties,
     "uniqueItems": _unique_items})
_NO_RETRIEVAL = referencing.Registry(retrieve=_no_retrieval)


@functools.lru_cache(maxsize=4096)
def _tool_validator(tool_json: str) -> tuple[jsonschema.Draft202012Validator, frozenset[str]]:
    """A tool's arguments validator, built once per distinct tool: datasets repeat tool sets, and a
    row's label and its gold calls are checked against the same tools (keyed by the canonical JSON,
    in its order, so that a tool rebuilt from it is the same tool)."""
    schema, unknown = parameters_schema(Tool.from_dict(json.loads(tool_json)))
    return LinearValidator(schema, registry=_NO_RETRIEVAL), frozenset(unknown)


def _reason(function: str, err: jsonschema.ValidationError) -> Reason:
    # The deepest failing keyword says what went wrong; anyOf/oneOf wrap type failures.
    leaf = min(err.context, key=lambda e: -len(e.absolute_path)) if err.context else err
    code = SCHEMA_KEYWORD_CODES.get(leaf.validator, TYPE_MISMATCH)
    if err.validator == "required" and not err.absolute_path:
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return Reason("missing_required", f"{function}.{missing}")
    if err.validator == "additionalProperties" and not err.absolute_path:
        return Reason("unknown_argument", f"{function}: {err.message}"[:_DETAIL_CHARS])
    where = ".".join(str(p) for p in err.absolute_path)
    return Reason(code, f"{function}.{where}: {leaf.message}"[:_DETAIL_CHARS])


def normalize_text(value) -> str:
    """BFCL's string normalization: case, spaces and `,./-_*^` ignored; single and double quotes alike."""
    return _PUNCT.sub("", str(value)).lower().replace("'", '"')


_PUNCT = re.compile(r"[ ,./\-_*^]")


def grounding_flags(calls: list[dict], tools: list[Tool], query: str) -> list[Reason]:
    """Soft flags: arguments the query does not support, and repeated calls."""
    by_name = {t.name: t for t in tools}
    flags, seen = [], set()
    where = normalize_text(query_text(query))
    for call in calls:
        key = json.dumps(call, sort_keys=True)
        if key in seen:
            flags.append(Reason("duplicate_call", f"{call['name']} with the same arguments"))
        seen.add(key)
        tool = by_name.get(call["name"])
        if tool is None:
            continue
        for arg, value in call["arguments"].items():
            spec = tool.properties.get(arg)
            if not isinstance(spec, dict):
                continue
            if "default" in spec and values_equal(value, spec["default"]):
                if normalize_text(_plain(value)) not in where:
                    flags.append(Reason("default_not_in_query", f"{call['name']}.{arg} = {_plain(value)!r} is the default"))
            elif isinstance(value, str) and "enum" not in spec and normalize_text(value) not in where:
                flags.append(Reason("value_not_in_query", f"{call['name']}.{arg} = {value[:80]!r}"))
    return flags


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def query_text(query: str) -> str:
    """The words a user wrote: a multi-turn query's message contents, else the query."""
    messages = parse_query(query) if query else None
    return " ".join(m["content"] for m in messages) if messages else (query or "")


def values_equal(a, b) -> bool:
    """Equality for scoring: strings after normalize_text, int equal to float (not bool), lists in
    order, dicts by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return normalize_text(a) == normalize_text(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return a == b
