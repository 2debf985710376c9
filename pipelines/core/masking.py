"""Hammer's masking, pure: function-name, parameter-name and default-value masks, tool shuffling,
and the way back.

Hammer trains on rows whose names are replaced by random strings, so that the model reads the
descriptions. A masked row keeps a `MaskMap`: enough to turn the masked row, or calls made against
its masked tools, back into the original exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.tools import Tool

FUNCTION_CHARS = string.ascii_letters + string.digits + "_."
PARAMETER_CHARS = string.ascii_letters + string.digits


def row_rng(seed: int, row_id: Any, purpose: str) -> random.Random:
    """A generator that depends only on (seed, row id, purpose): the same draws whatever the number
    of workers or blocks, and independent draws for independent decisions."""
    digest = hashlib.sha256(f"{seed}\x00{row_id}\x00{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


@dataclass
class MaskedDefault:
    function: str  # original names
    parameter: str
    original: Any
    masked: Any


@dataclass
class MaskMap:
    functions: dict[str, str] = field(default_factory=dict)  # masked name -> original
    parameters: dict[str, dict[str, str]] = field(default_factory=dict)  # masked function -> masked param -> original
    defaults: list[MaskedDefault] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # original index of the tool at each masked position
    query: str | None = None  # the original query, when a default mask changed it
    descriptions: dict[str, dict[str, str]] = field(default_factory=dict)  # original function -> param -> original text

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "MaskMap":
        d = json.loads(text)
        d["defaults"] = [MaskedDefault(**x) for x in d["defaults"]]
        return cls(**d)


def _random_name(rng: random.Random, shortest: int, longest: int, alphabet: str, taken: set[str]) -> str:
    """A fresh name starting with a letter (so it reads as an identifier), unique within `taken`."""
    while True:
        rest = "".join(rng.choice(alphabet) for _ in range(rng.randint(shortest, longest) - 1))
        name = rng.choice(string.ascii_letters) + rest
        if name not in taken:
            taken.add(name)
            return name


def _new_value(rng: random.Random, old: Any) -> Any:
    """A random value of the same JSON type, different from `old`; None for types not masked."""
    if isinstance(old, bool):
        return not old
    if isinstance(old, int):
        return old + rng.randint(1, 9999)
    if isinstance(old, float):
        return round(old + rng.uniform(1, 1000), 2)
    if isinstance(old, str) and old.strip():
        new = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 10)))
        return new.upper() if old.isupper() else new.capitalize() if old[0].isupper() else new  # same case shape
    return None


def _case_variants(old: str, new: str) -> list[tuple[str, str]]:
    pairs = [(old, new), (old.lower(), new.lower()), (old.upper(), new.upper()), (old.capitalize(), new.capitalize()),
             (old.title(), new.title())]
    return list(dict.fromkeys(pairs))


def _replace_words(text: str, old: Any, new: Any) -> str:
    """Replaces whole-word occurrences of `old` (as written, lower, upper, capitalized, title case)
    by the same case of `new`."""
    for before, after in _case_variants(_as_text(old), _as_text(new)):
        text = re.sub(rf"(?<!\w){re.escape(before)}(?!\w)", lambda _: after, text)
    return text


def _as_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _copy_tool(tool: Tool, **changes) -> Tool:
    return dataclasses.replace(tool, properties=json.loads(json.dumps(tool.properties)), **changes)


def mask_row(query: str, tools: list[Tool], answers: list[dict] | None, rng: random.Random, *, functions: bool = True,
             parameters: bool = True, defaults: bool = True, shuffle: bool = True
             ) -> tuple[str, list[Tool], list[dict] | None, MaskMap]:
    """Masks one row; `answers` (gold calls, {name, arguments}) follow every renaming."""
    mapping = MaskMap()
    tools = [_copy_tool(t) for t in tools]
    answers = json.loads(json.dumps(answers)) if answers is not None else None
    by_name = {t.name: t for t in tools}

    if defaults and answers:
        for call in answers:
            tool = by_name.get(call.get("name"))
            for pname, value in (call.get("arguments") or {}).items():
                spec = tool.properties.get(pname) if tool else None
                if not spec or "default" not in spec or spec["default"] != value or type(spec["default"]) is not type(value):
                    continue
                old, new = spec["default"], _new_value(rng, spec["default"])
                if new is None:
                    continue
                mapping.defaults.append(MaskedDefault(tool.name, pname, old, new))
                spec["default"] = new
                if isinstance(spec.get("description"), str):
                    changed = _replace_words(spec["description"], old, new)
                    if changed != spec["description"]:
                        mapping.descriptions.setdefault(tool.name, {})[pname] = spec["description"]
                        spec["description"] = changed
                for other in answers:
                    args = other.get("arguments") or {}
                    if other.get("name") == tool.name and args.get(pname) == old:
                        args[pname] = new
                masked_query = _replace_words(query, old, new)
                if masked_query != query:
                    mapping.query = mapping.query if mapping.query is not None else query
                    query = masked_query

    if parameters:
        for i, tool in enumerate(tools):
            taken: set[str] = set()
            renamed = {p: _random_name(rng, 4, 10, PARAMETER_CHARS, taken) for p in tool.properties}
            tools[i] = dataclasses.replace(tool, properties={renamed[p]: s for p, s in tool.properties.items()},
                                           required=[renamed[r] for r in tool.required])
            mapping.parameters[tool.name] = {new: old for old, new in renamed.items()}
            for call in answers or []:
                if call.get("name") == tool.name and isinstance(call.get("arguments"), dict):
                    call["arguments"] = {renamed.get(k, k): v for k, v in call["arguments"].items()}

    if functions:
        taken = set()
        renamed = {t.name: _random_name(rng, 5, 15, FUNCTION_CHARS, taken) for t in tools}
        tools = [dataclasses.replace(t, name=renamed[t.name]) for t in tools]
        mapping.functions = {new: old for old, new in renamed.items()}
        mapping.parameters = {renamed[f]: params for f, params in mapping.parameters.items()}
        for call in answers or []:
            call["name"] = renamed.get(call.get("name"), call.get("name"))

    mapping.order = list(range(len(tools)))
    if shuffle:
        rng.shuffle(mapping.order)
        tools = [tools[i] for i in mapping.order]
    return query, tools, answers, mapping


def unmask_calls(calls: list[dict], mapping: MaskMap) -> list[dict]:
    """Calls made against masked tools -> the same calls against the original tools."""
    out = []
    for call in calls:
        name = call["name"]
        original = mapping.functions.get(name, name)
        params = mapping.parameters.get(name, {})
        arguments = {}
        for key, value in call["arguments"].items():
            pname = params.get(key, key)
            for d in mapping.defaults:
                if d.function == original and d.parameter == pname and value == d.masked and type(value) is type(d.masked):
                    value = d.original
            arguments[pname] = value
        out.append({**call, "name": original, "arguments": arguments})
    return out


def unmask_tools(tools: list[Tool], mapping: MaskMap) -> list[Tool]:
    """Masked tools -> the original tools, in their original order."""
    restored: list[Tool | None] = [None] * len(tools)
    for position, tool in enumerate(tools):
        original = mapping.functions.get(tool.name, tool.name)
        params = mapping.parameters.get(tool.name, {})
        properties = {params.get(p, p): spec for p, spec in json.loads(json.dumps(tool.properties)).items()}
        for d in mapping.defaults:
            if d.function == original:
                properties[d.parameter]["default"] = d.original
        for pname, text in mapping.descriptions.get(original, {}).items():
            properties[pname]["description"] = text
        restored[mapping.order[position]] = dataclasses.replace(
            tool, name=original, properties=properties, required=[params.get(r, r) for r in tool.required])
    return restored


def unmask_row(query: str, tools: list[Tool], answers: list[dict] | None, mapping: MaskMap
               ) -> tuple[str, list[Tool], list[dict] | None]:
    return (mapping.query if mapping.query is not None else query, unmask_tools(tools, mapping),
            unmask_calls(answers, mapping) if answers is not None else None)
