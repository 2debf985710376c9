import json

import pytest

from pipelines.core.tools import BadInput, load_tools, parameters_schema, type_schema

def _deep(levels):
    schema = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


FN = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {
    "a": {"type": "string", "description": "A"}}, "required": ["a"]}}


def test_three_forms_normalize_to_one_canonical_tool():
    openai = {"type": "function", "function": FN}
    xlam = {"name": "f", "description": "d", "parameters": {"a": {"type": "str", "description": "A"}}}
    tools = load_tools([openai]) + load_tools(json.dumps([FN])) + load_tools([xlam])
    assert [t.form for t in tools] == ["openai", "function", "xlam"]
    assert all(t.name == "f" and list(t.properties) == ["a"] for t in tools)
    assert [parameters_schema(t)[0]["required"] for t in tools] == [["a"], ["a"], ["a"]]


def test_xlam_optional_and_defaults_are_not_required():
    tool = load_tools([{"name": "f", "description": "", "parameters": {
        "x": {"type": "int"}, "y": {"type": "int, optional"}, "z": {"type": "str", "default": "q"},
        "w": {"type": "Optional[int]"}}}])[0]
    assert parameters_schema(tool)[0]["required"] == ["x"]


@pytest.mark.parametrize("raw, code", [
    (None, "missing_tools"),
    ("{not json", "tools_not_json"),
    ('{"name": "f"}', "tools_not_list"),
    ("3", "tools_not_list"),
    ("[]", "tools_empty"),
    ('["f"]', "tool_not_object"),
    ('[{"description": "x"}]', "tool_without_name"),
    ('[{"name": "f"}, {"name": "f"}]', "duplicate_tool_name"),
    ('[{"name": "f", "parameters": [1]}]', "parameters_not_object"),
    ('[{"name": "f", "parameters": {"type": "string"}}]', "parameters_not_object"),
    ('[{"name": "f", "parameters": {"type": "object", "properties": {}, "required": ["a"]}}]', "required_not_found"),
    ('[{"name": "f", "parameters": {"a": "str"}}]', "parameter_not_object"),
    ('[{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string", "minLength": "x"}}}}]',
     "invalid_schema"),
    ('[{"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/defs/a"}}}}]', "unsupported_ref"),
    (json.dumps([{"name": "f", "parameters": {"type": "object", "properties": {"a": _deep(20)}}}]), "schema_too_deep"),
])
def test_bad_tools_name_the_problem(raw, code):
    with pytest.raises(BadInput) as e:
        load_tools(raw)
    assert e.value.code == code


@pytest.mark.parametrize("name, schema", [
    ("string", {"type": "string"}), ("str", {"type": "string"}), ("String", {"type": "string"}),
    ("int", {"type": "integer"}), ("long", {"type": "integer"}), ("float", {"type": "number"}),
    ("double", {"type": "number"}), ("bool", {"type": "boolean"}), ("Boolean", {"type": "boolean"}),
    ("dict", {"type": "object"}), ("HashMap", {"type": "object"}), ("tuple", {"type": "array"}),
    ("ArrayList", {"type": "array"}), ("any", {}), ("int, optional", {"type": "integer"}),
    ("List[int]", {"type": "array", "items": {"type": "integer"}}),
    ("Dict[str, Any]", {"type": "object", "additionalProperties": {}}),
    ("Optional[str]", {"anyOf": [{"type": "string"}, {"type": "null"}]}),
    ("Union[int, float]", {"anyOf": [{"type": "integer"}, {"type": "number"}]}),
    ("Tuple[int, str]", {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False}),
    ("List[Dict[str, int]]", {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "integer"}}}),
])
def test_type_names(name, schema):
    assert type_schema(name) == (schema, True)


def test_unknown_type_is_reported_not_fatal():
    assert type_schema("Callable") == ({}, False)
    tool = load_tools([{"name": "f", "parameters": {"cb": {"type": "Callable"}}}])[0]
    assert parameters_schema(tool)[1] == {"Callable"}
