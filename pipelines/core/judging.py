"""The judge: a second model's verdict on a label. Its prompt, from a template, and its answer. Pure.

A template is plain text with `$query`, `$tools` and `$calls` (string.Template: `$$` is a dollar);
the job keeps its templates under conf/judge/templates/ and puts the template's name and text in its
fingerprint. The judge answers with one JSON object, `{"verdict": "agree" | "disagree", "reason": "..."}`;
anything else is `unparseable`, never a guess.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass

from pipelines.core import untrusted
from pipelines.core.prompts import Prompt, parse_query
from pipelines.core.reasons import ENGINE_ERROR, NO_CALL, OK, PROMPT_TOO_LONG
from pipelines.core.tools import Tool

AGREE = "agree"  # the judge finds the calls do what the query asks
DISAGREE = "disagree"
UNPARSEABLE = "unparseable"  # the judge's answer is not the JSON object asked for
# judge_verdict's values; null where a row was not judged. A row meant to be judged whose prompt
# does not fit the judge, or which the judge's engine failed, says so instead of passing unjudged.
VERDICTS = (AGREE, DISAGREE, UNPARSEABLE, PROMPT_TOO_LONG, ENGINE_ERROR)
JUDGED_STATUSES = (OK, NO_CALL)  # labels worth a second opinion: the others are already wrong
MAX_REASON_CHARS = 500
PLACEHOLDERS = ("query", "tools", "calls")
# For judge.generation.constrained: only the verdict object can be generated.
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"enum": [AGREE, DISAGREE]}, "reason": {"type": "string", "maxLength": MAX_REASON_CHARS}},
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}


class TemplateError(ValueError):
    """A judge template that cannot show a row: the message names the problem."""


def check_template(text: str) -> None:
    """Every placeholder once, `$tools` before `$query` and `$calls`, nothing else (the rest is fixed text)."""
    template = string.Template(text)
    if not template.is_valid():
        raise TemplateError("it has a `$` that is not a placeholder; write a dollar as `$$`")
    found = [m.group("named") or m.group("braced") for m in template.pattern.finditer(text)
             if m.group("named") or m.group("braced")]
    if sorted(found) != sorted(PLACEHOLDERS):
        raise TemplateError(f"it must hold each of ${', $'.join(PLACEHOLDERS)} once (found {found})")
    if found[0] != "tools":
        raise TemplateError("$tools must come before $query and $calls: the text up to the tools repeats "
                            "across rows and is tokenized once")


def judge_prompt(template: str, query: str, tools: list[Tool], calls: list[dict]) -> Prompt:
    """One row's judge prompt: a single user turn, cut after the tools JSON (the parts before it
    repeat across rows of a tool set, see prompt_tokens.py). calls: [{"name", "arguments": {...}}]."""
    tools_json = json.dumps([t.to_dict() for t in tools], ensure_ascii=False)
    tools_at = next(m for m in string.Template.pattern.finditer(template) if "tools" in (m.group("named"), m.group("braced")))
    head, tail = template[:tools_at.start()], template[tools_at.end():]
    values = {"query": _query_text(query), "calls": json.dumps(calls, ensure_ascii=False)}
    # `$$` is a dollar on both sides of the cut
    parts = (string.Template(head).substitute({}), tools_json, string.Template(tail).substitute(values))
    return Prompt([{"role": "user", "content": "".join(parts)}], parts)


def _query_text(query: str) -> str:
    messages = parse_query(query)
    if messages is None:
        return query
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # AGREE, DISAGREE or UNPARSEABLE
    reason: str | None  # the judge's sentence; for UNPARSEABLE, what was wrong with the answer


def parse_verdict(text: str) -> Verdict:
    """The judge's answer -> its verdict: the first JSON object in the text, with `verdict` agree or
    disagree and a string `reason` (cut to MAX_REASON_CHARS)."""
    start = text.find("{")
    if start < 0:
        return Verdict(UNPARSEABLE, "no JSON object in the answer")
    try:
        value, _ = untrusted.raw_decode(text, start)
    except json.JSONDecodeError as e:
        return Verdict(UNPARSEABLE, f"not JSON: {str(e).splitlines()[0]}")
    except untrusted.UntrustedValue as e:  # NaN, a duplicate key, a lone surrogate, a 5,000-digit number, depth
        return Verdict(UNPARSEABLE, str(e.reason))
    if not isinstance(value, dict):
        return Verdict(UNPARSEABLE, "not a JSON object")
    verdict, reason = value.get("verdict"), value.get("reason")
    if verdict not in (AGREE, DISAGREE):
        return Verdict(UNPARSEABLE, f"verdict is {json.dumps(verdict)[:80]}, not \"agree\" or \"disagree\"")
    if not isinstance(reason, str):
        return Verdict(UNPARSEABLE, "reason is not a string")
    return Verdict(verdict, reason.strip()[:MAX_REASON_CHARS])
