"""The judge's pure core (template, prompt, verdict) and its stages on pyarrow tables, without Ray."""

import json

import pyarrow as pa
import pytest

from pipelines.config import ConfigError
from pipelines.core.judging import (AGREE, DISAGREE, UNPARSEABLE, TemplateError, check_template, judge_prompt,
                                    parse_verdict)
from pipelines.core.tools import load_tools
from pipelines.judge.config import load_judge_config, load_template
from pipelines.judge.plan import VerdictCounter
from pipelines.judge.stages import (NOT_JUDGED, JudgePromptStage, annotate_verdicts, judged_schema, verdict_row)
from pipelines.engines.columns import (CALL_SCHEMA_COL, EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_TEXT_COL,
                                       PROMPT_TOKENS_COL)
from pipelines.run.stages import EARLY_ERRORS_COL, ROW_COL, SHARD_COL

TOOLS = json.dumps([{"name": "weather", "description": "Weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "City"}}, "required": ["city"]}}])
TEMPLATE = "Tools: $tools\nAsk: $query\nCalls: $calls\nCost: $$5"


def test_judge_prompt_fills_the_template_and_cuts_it_after_the_tools():
    prompt = judge_prompt(TEMPLATE, "Weather in Oslo?", load_tools(TOOLS), [{"name": "weather", "arguments": {"city": "Oslo"}}])
    tools = ('[{"name": "weather", "description": "Weather in a city.", "properties": {"city": {"type": "string", '
             '"description": "City"}}, "required": ["city"], "form": "function"}]')
    expected = f'Tools: {tools}\nAsk: Weather in Oslo?\nCalls: [{{"name": "weather", "arguments": {{"city": "Oslo"}}}}]\nCost: $5'
    assert prompt.messages == [{"role": "user", "content": expected}]
    assert prompt.parts == ("Tools: ", tools, expected[len("Tools: ") + len(tools):])


def test_a_multi_turn_query_is_shown_as_role_lines():
    query = json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"},
                        {"role": "user", "content": "Weather in Oslo"}])
    content = judge_prompt(TEMPLATE, query, load_tools(TOOLS), []).messages[0]["content"]
    assert "Ask: user: Hi\nassistant: Yes?\nuser: Weather in Oslo\nCalls: []\n" in content


@pytest.mark.parametrize("template, problem", [
    ("$tools $query", "once"), ("$tools $query $calls $calls", "once"), ("$tools $query $calls $extra", "once"),
    ("$query $tools $calls", "before"), ("$tools $query $calls costs $", "dollar"),
])
def test_bad_templates_are_refused(template, problem):
    with pytest.raises(TemplateError, match=problem):
        check_template(template)


def test_the_shipped_template_loads_and_a_missing_one_names_the_key():
    assert "$tools" in load_template("judge-v1")
    with pytest.raises(ConfigError, match="judge.prompt.template='v0'.*templates: judge-v1"):
        load_judge_config(["conf=local", "judge.prompt.template=v0"])


@pytest.mark.parametrize("text, verdict, reason", [
    ('{"verdict": "agree", "reason": "Right city."}', AGREE, "Right city."),
    ('Sure. {"verdict": "disagree", "reason": " Wrong city. "} done', DISAGREE, "Wrong city."),
    ('{"verdict": "maybe", "reason": "x"}', UNPARSEABLE, 'verdict is "maybe", not "agree" or "disagree"'),
    ('{"verdict": "agree"}', UNPARSEABLE, "reason is not a string"),
    ("agree", UNPARSEABLE, "no JSON object in the answer"),
    ('{"verdict": "agree", "reason": "cut', UNPARSEABLE, "not JSON: Unterminated string starting at: line 1 column 32 (char 31)"),
])
def test_parse_verdict(text, verdict, reason):
    assert (parse_verdict(text).verdict, parse_verdict(text).reason) == (verdict, reason)


def test_the_reason_is_cut_to_500_characters():
    assert len(parse_verdict(json.dumps({"verdict": "agree", "reason": "x" * 900})).reason) == 500


@pytest.mark.parametrize("row, expected", [
    ({EARLY_STATUS_COL: NOT_JUDGED}, (None, None, None)),
    ({EARLY_STATUS_COL: "prompt_too_long", EARLY_ERRORS_COL: ["prompt_too_long: 5000 tokens, limit 4000"]},
     ("prompt_too_long", "prompt_too_long: 5000 tokens, limit 4000", None)),
    ({EARLY_STATUS_COL: None, ENGINE_ERROR_COL: "boom"}, ("engine_error", "boom", None)),
    ({EARLY_STATUS_COL: None, ENGINE_TEXT_COL: '{"verdict": "agree", "reason": "ok"}'},
     ("agree", "ok", '{"verdict": "agree", "reason": "ok"}')),
    ({EARLY_STATUS_COL: None, ENGINE_TEXT_COL: "[]"}, ("unparseable", "no JSON object in the answer", "[]")),
])
def test_verdict_row(row, expected):
    out = verdict_row(row)
    assert (out["judge_verdict"], out["judge_reason"], out["judge_output"]) == expected


def _labeled():
    return pa.table({
        "id": ["a", "b", "c", "d"],
        "query": ["Weather in Oslo?", "Tell me a joke.", "Weather?", "Weather in Rome?"],
        "tools": [TOOLS] * 4,
        "status": ["ok", "no_call", "invalid_call", "ok"],
        "calls": pa.array([[{"name": "weather", "arguments": '{"city": "Oslo"}'}], [], [{"name": "weather", "arguments": "{}"}],
                           [{"name": "weather", "arguments": "not json"}]],
                          pa.list_(pa.struct([("name", pa.string()), ("arguments", pa.string())]))),
    })


def test_the_prompt_stage_judges_ok_and_no_call_rows_only(tiny_model):
    stage = JudgePromptStage(tiny_model, load_template("judge-v1"), max_prompt_tokens=4000, trust_remote_code=False,
                             constrained=True)
    out = stage(_labeled()).to_pylist()
    assert [r[EARLY_STATUS_COL] for r in out] == [None, None, NOT_JUDGED, "bad_input"]
    assert out[3][EARLY_ERRORS_COL][0].startswith("bad_label: JSONDecodeError")
    assert [bool(r[PROMPT_TOKENS_COL]) for r in out] == [True, True, False, False]
    assert json.loads(out[0][CALL_SCHEMA_COL])["properties"]["verdict"] == {"enum": ["agree", "disagree"]}
    assert out[2][CALL_SCHEMA_COL] is None
    short = JudgePromptStage(tiny_model, load_template("judge-v1"), max_prompt_tokens=50, trust_remote_code=False)
    first = short(_labeled()).to_pylist()[0]
    assert first[EARLY_STATUS_COL] == "prompt_too_long" and first[PROMPT_TOKENS_COL] == []


def test_annotate_verdicts_keeps_every_input_column_and_adds_the_judges():
    batch = _labeled().append_column(EARLY_STATUS_COL, pa.array([None, None, NOT_JUDGED, None]))
    batch = batch.append_column(EARLY_ERRORS_COL, pa.array([[], [], [], []], pa.list_(pa.string())))
    batch = batch.append_column(ENGINE_TEXT_COL, pa.array(['{"verdict": "agree", "reason": "r"}', "x", None, None]))
    batch = batch.append_column(ENGINE_ERROR_COL, pa.array([None, None, None, "died"]))
    batch = batch.append_column(SHARD_COL, pa.array(["s"] * 4)).append_column(ROW_COL, pa.array([0, 1, 2, 3], pa.int64()))
    schema = _labeled().schema
    out = annotate_verdicts(batch, input_schema=schema, lineage={"judge_model": "m", "judge_template": "judge-v1",
                                                                  "judge_run_id": "r1", "judge_config_hash": "h"})
    assert out.schema == judged_schema(schema).append(pa.field(SHARD_COL, pa.string())).append(pa.field(ROW_COL, pa.int64()))
    rows = out.to_pylist()
    assert [r["judge_verdict"] for r in rows] == ["agree", "unparseable", None, "engine_error"]
    assert [r["status"] for r in rows] == ["ok", "no_call", "invalid_call", "ok"]
    assert rows[2]["calls"] == [{"name": "weather", "arguments": "{}"}] and rows[2]["judge_run_id"] == "r1"


def test_verdict_counter():
    counter = VerdictCounter()
    counter.add({"status": ["ok", "ok", "no_call", "invalid_call", "ok"],
                 "judge_verdict": ["agree", "disagree", "agree", None, "unparseable"],
                 "correct": [True, True, None, False, False]})
    summary = counter.to_dict(wall_seconds=2.0)
    assert summary["rows"] == 5 and summary["rows_per_second"] == 2.5
    assert summary["verdicts"] == {"agree": 2, "disagree": 1, "unparseable": 1, "prompt_too_long": 0,
                                   "engine_error": 0, "not_judged": 1}
    assert summary["by_label_status"] == {"invalid_call": {"not_judged": 1}, "no_call": {"agree": 1},
                                          "ok": {"agree": 1, "disagree": 1, "unparseable": 1}}
    assert summary["against_gold"] == {"agree": {"correct": 1, "incorrect": 0}, "disagree": {"correct": 1, "incorrect": 0}}
