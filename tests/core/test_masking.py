"""Hammer's masks and the irrelevance transform: each alone, their way back, and over random tool sets."""

import json

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.masking import FUNCTION_CHARS, PARAMETER_CHARS, MaskMap, mask_row, row_rng, unmask_calls, unmask_row
from pipelines.core.scoring import load_gold
from pipelines.core.tools import Tool, load_tools
from pipelines.core.validation import validate_calls
from pipelines.recipe.augment import IRRELEVANCE_SUFFIX, augment_row
from pipelines.recipe.config import AugmentSettings, IrrelevanceSettings, MaskSettings
from tests.conftest import REPO

SAMPLE = [{**r, "id": f"sample-{r['source_row']}"} for r in pq.read_table(REPO / "data" / "sample").to_pylist()
          if not r["category"].startswith("bad_")]
TIP = {"name": "calculate_tip", "description": "Calculate the tip for a bill.", "parameters": {
    "bill_amount": {"type": "float", "description": "The total bill amount."},
    "tip_percentage": {"type": "float, optional", "description": "Tip percentage, default 15.0.", "default": 15.0},
    "city": {"type": "str, optional", "description": "City of the restaurant, e.g. Paris.", "default": "Paris"}}}
TIP_QUERY = "What is the tip on a 50 dollar bill at 15.0 percent in paris?"
TIP_ANSWER = [{"name": "calculate_tip", "arguments": {"bill_amount": 50.0, "tip_percentage": 15.0, "city": "Paris"}}]


def _mask(query, tools, answers, seed=0, **masks):
    return mask_row(query, load_tools(tools), answers, row_rng(seed, "row-1", "mask-values"), **masks)


def test_function_mask_renames_tools_and_answers_consistently():
    _, tools, answers, mapping = _mask(TIP_QUERY, [TIP], TIP_ANSWER, parameters=False, defaults=False, shuffle=False)
    name = tools[0].name
    assert name != "calculate_tip" and 5 <= len(name) <= 15 and set(name) <= set(FUNCTION_CHARS)
    assert answers[0]["name"] == name and mapping.functions == {name: "calculate_tip"}
    assert list(tools[0].properties) == list(TIP["parameters"])


def test_parameter_mask_renames_properties_required_and_arguments():
    _, tools, answers, mapping = _mask(TIP_QUERY, [TIP], TIP_ANSWER, functions=False, defaults=False, shuffle=False)
    masked = list(tools[0].properties)
    assert all(4 <= len(p) <= 10 and set(p) <= set(PARAMETER_CHARS) for p in masked)
    assert set(answers[0]["arguments"]) == set(masked)
    assert mapping.parameters["calculate_tip"] == dict(zip(masked, TIP["parameters"]))


def test_default_mask_replaces_the_used_default_everywhere_case_variants_included():
    query, tools, answers, mapping = _mask(TIP_QUERY, [TIP], TIP_ANSWER, functions=False, parameters=False,
                                           shuffle=False)
    city, tip = tools[0].properties["city"]["default"], tools[0].properties["tip_percentage"]["default"]
    assert isinstance(city, str) and city != "Paris" and isinstance(tip, float) and tip != 15.0
    assert answers[0]["arguments"] == {"bill_amount": 50.0, "tip_percentage": tip, "city": city}
    assert "paris" not in query.lower() and city.lower() in query and str(tip) in query and "15.0" not in query
    assert f"e.g. {city.capitalize()}." in tools[0].properties["city"]["description"]
    assert {(d.parameter, d.original) for d in mapping.defaults} == {("city", "Paris"), ("tip_percentage", 15.0)}
    assert mapping.query == TIP_QUERY


def test_a_default_the_answer_does_not_use_is_left_alone():
    answer = [{"name": "calculate_tip", "arguments": {"bill_amount": 50.0, "tip_percentage": 20.0}}]
    _, tools, _, mapping = _mask(TIP_QUERY, [TIP], answer, functions=False, parameters=False, shuffle=False)
    assert tools[0].properties == TIP["parameters"] and not mapping.defaults


@pytest.mark.parametrize("row", SAMPLE, ids=lambda r: f"{r['category']}-{r['source_row']}")
def test_every_sample_row_masked_still_validates_and_unmasks_exactly(row):
    tools, answers = load_tools(row["tools"]), load_gold(row["answers"])
    query, masked_tools, masked_answers, mapping = mask_row(row["query"], tools, answers, row_rng(7, row["id"], "m"))
    assert validate_calls(answers, tools)[0] == [] and validate_calls(masked_answers, masked_tools)[0] == []
    assert not {t.name for t in tools} & {t.name for t in masked_tools}
    mapping = MaskMap.from_json(mapping.to_json())  # as stored in the mask_map column
    assert unmask_row(query, masked_tools, masked_answers, mapping) == (row["query"], tools, answers)


def test_calls_made_against_masked_tools_map_back():
    _, tools, answers, mapping = _mask(TIP_QUERY, [TIP], TIP_ANSWER)
    assert unmask_calls(answers, mapping) == TIP_ANSWER


def _settings(fraction=0.0, probability=0.0):
    return AugmentSettings(IrrelevanceSettings(fraction), MaskSettings(probability))


def _tool_names(cell) -> list[str]:
    """The tool names of a raw `tools` cell, read without the code under test (OpenAI tools nest theirs)."""
    return [t.get("function", t)["name"] for t in json.loads(cell)]


def _called(cell) -> set[str]:
    return {c["name"] for c in json.loads(cell)} if cell else set()


def test_irrelevance_rows_never_contain_a_called_tool():
    made = [r for row in SAMPLE for r in augment_row(row, _settings(fraction=1.0), seed=0) if r["origin"] == "irrelevance"]
    for row in made:
        source = next(r for r in SAMPLE if f"{r['id']}{IRRELEVANCE_SUFFIX}" == row["id"])
        called = _called(source["answers"])
        assert row["answers"] == "[]" and not called & set(_tool_names(row["tools"]))
        assert _tool_names(row["tools"]) == [n for n in _tool_names(source["tools"]) if n not in called]
    # Every row with gold calls makes one, except rows whose every tool is called.
    expected = [r["id"] for r in SAMPLE if _called(r["answers"]) and not set(_tool_names(r["tools"])) <= _called(r["answers"])]
    skipped = [r for r in SAMPLE if _called(r["answers"]) and set(_tool_names(r["tools"])) <= _called(r["answers"])]
    assert expected and skipped and sorted(r["id"] for r in made) == sorted(i + IRRELEVANCE_SUFFIX for i in expected)


def test_augment_is_deterministic_per_seed_and_id_and_follows_the_shares():
    settings_ = _settings(fraction=0.5, probability=0.5)
    first = [r for row in SAMPLE for r in augment_row(row, settings_, seed=3)]
    again = [r for row in reversed(SAMPLE) for r in augment_row(row, settings_, seed=3)]
    assert sorted(first, key=lambda r: r["id"]) == sorted(again, key=lambda r: r["id"])
    other = [r for row in SAMPLE for r in augment_row(row, settings_, seed=4)]
    assert other != first
    origins = [r["origin"] for r in first]
    assert 0 < origins.count("masked") < len(SAMPLE) and origins.count("irrelevance") > 0


@pytest.mark.parametrize("row, expected", [
    ({"id": "x", "query": "q", "tools": "[{not json", "answers": None}, "tools_not_json"),
    ({"id": "x", "query": 7, "tools": '[{"name": "f", "description": "", "parameters": {}}]', "answers": None},
     "query_not_string"),
    ({"id": "x", "query": "q", "tools": '[{"name": "f", "description": "", "parameters": {}}]', "answers": "{"},
     "bad_answers"),
])
def test_rows_it_cannot_augment_pass_through_with_their_reason(row, expected):
    (out,) = augment_row(row, _settings(1.0, 1.0), seed=0)
    assert out["not_augmented"].split(":")[0] == expected
    assert {k: v for k, v in out.items() if k != "not_augmented"} == {**row, "origin": "original", "mask_map": None}


_TYPES = st.sampled_from([("string", "abc"), ("integer", 3), ("number", 2.5), ("boolean", True)])


@st.composite
def _tool_sets(draw):
    tools, answers = [], []
    for i in range(draw(st.integers(1, 4))):
        params, args = {}, {}
        for j in range(draw(st.integers(0, 4))):
            kind, default = draw(_TYPES)
            params[f"p{i}_{j}"] = {"type": kind, "description": f"parameter {j}", "default": default}
            if draw(st.booleans()):
                args[f"p{i}_{j}"] = default
        tools.append({"name": f"tool_{i}", "description": f"tool {i}",
                      "parameters": {"type": "object", "properties": params, "required": []}})
        if draw(st.booleans()):
            answers.append({"name": f"tool_{i}", "arguments": args})
    return tools, answers


@settings(max_examples=150, deadline=None)
@given(_tool_sets(), st.integers(0, 2**32))
def test_masking_random_tool_sets_round_trips_and_keeps_answers_valid(tool_set, seed):
    raw_tools, answers = tool_set
    tools = load_tools(raw_tools)
    query = "use " + " ".join(str(v) for a in answers for v in a["arguments"].values())
    q, masked_tools, masked_answers, mapping = mask_row(query, tools, answers, row_rng(seed, "r", "m"))
    assert validate_calls(masked_answers, masked_tools)[0] == []
    assert unmask_row(q, masked_tools, masked_answers, MaskMap.from_json(mapping.to_json())) == (query, tools, answers)
    assert all(isinstance(t, Tool) for t in masked_tools) and len(masked_tools) == len(tools)
