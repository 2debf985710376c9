"""Property tests: valid calls generated from random schemas validate, and each single mutation
yields exactly the expected reason code."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.tools import load_tools
from pipelines.core.validation import label_output

TEXT = st.text(alphabet="abcxyz XYZ019-", max_size=8)
INTS = st.integers(-10**6, 10**6)
NUMBERS = st.one_of(INTS, st.floats(allow_nan=False, allow_infinity=False, width=32))
# family -> (type names across JSON Schema / Python-xLAM / BFCL Java-JS, valid values, a wrong value)
FAMILIES = {
    "string": (["string", "str", "String"], TEXT, 123),
    "integer": (["integer", "int", "long"], INTS, 1.5),
    "number": (["number", "float", "double"], NUMBERS, "x"),
    "boolean": (["boolean", "bool", "Boolean"], st.booleans(), "yes"),
    "array": (["array", "list", "ArrayList"], st.lists(TEXT, max_size=3), "x"),
    "int_list": (["List[int]"], st.lists(INTS, max_size=3), ["x"]),
    "object": (["object", "dict", "HashMap", "Dict[str, Any]"], st.dictionaries(TEXT, INTS, max_size=2), [1]),
}


@st.composite
def tool_and_call(draw):
    names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "eps", "zeta"]), min_size=1,
                          max_size=5, unique=True))
    form = draw(st.sampled_from(["function", "xlam"]))
    params, values, required = {}, {}, []
    for name in names:
        family = draw(st.sampled_from(sorted(FAMILIES)))
        type_names, valid, wrong = FAMILIES[family]
        type_name = draw(st.sampled_from(type_names))
        is_required = draw(st.booleans())
        if form == "xlam" and not is_required:
            type_name = f"{type_name}, optional" if "[" not in type_name else f"Optional[{type_name}]"
        params[name] = {"type": type_name, "description": f"the {name}"}
        if is_required:
            required.append(name)
        if is_required or draw(st.booleans()):
            values[name] = (draw(valid), wrong)
    parameters = params if form == "xlam" else {"type": "object", "properties": params, "required": required}
    tool = {"name": "fn", "description": "a function", "parameters": parameters}
    return tool, required, values


def _codes(tool, arguments, name="fn"):
    result = label_output(json.dumps([{"name": name, "arguments": arguments}]), load_tools([tool]))
    return result.status, [e.code for e in result.errors]


@settings(max_examples=150, deadline=None)
@given(tool_and_call(), st.data())
def test_valid_calls_validate_and_each_mutation_has_its_code(case, data):
    tool, required, values = case
    arguments = {k: v for k, (v, _) in values.items()}
    assert _codes(tool, arguments) == ("ok", [])

    assert _codes(tool, arguments, name="fn_renamed") == ("invalid_call", ["unknown_function"])
    assert _codes(tool, {**arguments, "not_a_parameter": 1}) == ("invalid_call", ["unknown_argument"])
    if required:
        dropped = data.draw(st.sampled_from(required))
        assert _codes(tool, {k: v for k, v in arguments.items() if k != dropped}) == ("invalid_call", ["missing_required"])
    if values:
        changed = data.draw(st.sampled_from(sorted(values)))
        assert _codes(tool, {**arguments, changed: values[changed][1]}) == ("invalid_call", ["type_mismatch"])
    text = json.dumps([{"name": "fn", "arguments": arguments}])
    broken = label_output(text[: data.draw(st.integers(1, len(text) - 1))], load_tools([tool]))
    assert broken.status == "parse_error" and broken.errors[0].code == "parse_error"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True), st.data())
def test_enum_values_outside_the_enum_are_enum_mismatch(enum, data):
    tool = {"name": "fn", "parameters": {"type": "object", "properties": {"e": {"type": "string", "enum": enum}},
                                         "required": ["e"]}}
    assert _codes(tool, {"e": data.draw(st.sampled_from(enum))}) == ("ok", [])
    assert _codes(tool, {"e": "not-" + enum[0]}) == ("invalid_call", ["enum_mismatch"])
