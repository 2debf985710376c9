"""Calls against the row's tools -> status, reasons, call type. Pure; jsonschema does the type checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import jsonschema

from pipelines.parsing import parse_output
from pipelines.tools import Tool, parameters_schema

# Row statuses, in the order the pipeline can assign them.
STATUSES = ("ok", "no_call", "parse_error", "invalid_call", "prompt_too_long", "bad_input", "engine_error", "dry_run")
CALL_TYPES = ("single", "multiple", "parallel", "parallel_multiple", "none")
_DETAIL_CHARS = 300

# jsonschema keyword of a failed check -> our reason code
_REASON = {"required": "missing_required", "additionalProperties": "unknown_argument", "enum": "enum_mismatch", "const": "enum_mismatch"}


@dataclass
class Label:
    status: str
    calls: list[dict] | None
    errors: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    call_type: str = "none"


def call_type(calls: list[dict], num_tools: int) -> str:
    """BFCL's categories: how many calls, and how many distinct functions, were made."""
    if not calls:
        return "none"
    if len(calls) == 1:
        return "multiple" if num_tools > 1 else "single"
    return "parallel" if len({c["name"] for c in calls}) == 1 else "parallel_multiple"


def label_output(text: str, tools: list[Tool], max_output_chars: int = 100_000) -> Label:
    parsed = parse_output(text, max_output_chars)
    if parsed.calls is None:
        code = parsed.errors[0].split(":", 1)[0]
        status = "invalid_call" if code == "not_a_call" else "parse_error"
        return Label(status, None, parsed.errors)
    calls = parsed.calls
    if not calls:
        return Label("no_call", [], [], [], "none")
    errors, flags = validate_calls(calls, tools)
    return Label("invalid_call" if errors else "ok", calls, errors, flags, call_type(calls, len(tools)))


def validate_calls(calls: list[dict], tools: list[Tool]) -> tuple[list[str], list[str]]:
    by_name = {t.name: t for t in tools}
    validators: dict[str, jsonschema.Draft202012Validator] = {}
    errors: list[str] = []
    flags: list[str] = []
    for call in calls:
        name = call["name"]
        tool = by_name.get(name)
        if tool is None:
            errors.append(f"unknown_function: {name!r} is not among the tools ({', '.join(sorted(by_name))})")
            continue
        if name not in validators:
            schema, unknown = parameters_schema(tool)
            validators[name] = jsonschema.Draft202012Validator(schema)
            flags += [f"unknown_type: {name} has type {t!r}; not checked" for t in sorted(unknown)]
        for err in validators[name].iter_errors(call["arguments"]):
            errors.append(_reason(name, err))
    return errors, flags


def _reason(function: str, err: jsonschema.ValidationError) -> str:
    # The deepest failing keyword says what went wrong; anyOf/oneOf wrap type failures.
    leaf = min(err.context, key=lambda e: -len(e.absolute_path)) if err.context else err
    code = _REASON.get(leaf.validator, "type_mismatch")
    if err.validator == "required" and not err.absolute_path:
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"missing_required: {function}.{missing}"
    if err.validator == "additionalProperties" and not err.absolute_path:
        return f"unknown_argument: {function}: {err.message}"[:_DETAIL_CHARS]
    where = ".".join(str(p) for p in err.absolute_path)
    return f"{code}: {function}.{where}: {leaf.message}"[:_DETAIL_CHARS]
