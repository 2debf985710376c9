"""Hostile rows and outputs, one class at a time, through the pure row functions and the stages'
guard: each comes out as its row's reason, within a bounded time, reading nothing and calling no one.
The same classes go through the real job in tests/label/test_hostile_job.py."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core import untrusted
from pipelines.core.parsing import PARSERS, strip_fence
from pipelines.core.scoring import score_row
from pipelines.core.tools import load_tools
from pipelines.core.validation import ValidationConfig, label_output
from pipelines.label.config import Mode
from pipelines.label.stages import row_prompt
from pipelines.run.guard import ROW_EXCEPTION, ROW_TIME_BUDGET, guard_row, within_budget

TOOL = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}


def tools_with(spec: dict) -> list:
    return [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": spec}}}]


# ------------------------------------------------------------------------- the untrusted reader

@pytest.mark.parametrize("text, code", [
    ('{"a": NaN}', "not_finite"),
    ('{"a": Infinity}', "not_finite"),
    ('[-Infinity]', "not_finite"),
    ('[1e999]', "not_finite"),
    ('{"a": 1, "a": 2}', "duplicate_key"),
    ('["\\ud800"]', "invalid_unicode"),
    ('{"\\udc00": 1}', "invalid_unicode"),
    ("[" + "9" * 5000 + "]", "number_too_large"),
    ("[" * 40 + "]" * 40, "too_deep"),
])
def test_the_reader_refuses_each_value_with_its_code(text, code):
    with pytest.raises(untrusted.UntrustedValue) as refused:
        untrusted.loads(text)
    assert refused.value.code == code


def test_the_reader_keeps_what_json_holds():
    value = untrusted.loads('{"a": [1, 2.5, "\\u00e9\\ud83d\\ude00", null, true], "b": {"c": -0.0}}')
    assert value == {"a": [1, 2.5, "é😀", None, True], "b": {"c": -0.0}}


@pytest.mark.parametrize("value, code", [
    ({"a": float("nan")}, "not_finite"),
    ([10 ** 5000], "number_too_large"),
    ({"a": "x\ud800"}, "invalid_unicode"),
    ({1: "a"}, "not_json"),
    ({"a": b"bytes"}, "not_json"),
])
def test_parsed_values_are_held_to_the_same_rules(value, code):
    with pytest.raises(untrusted.UntrustedValue) as refused:
        untrusted.check_value(value)
    assert refused.value.code == code


# -------------------------------------------------------------------------------- input rows

@pytest.mark.parametrize("query, tools, code", [
    ('[{"role": "user", "content": "hi \\ud800 there"}]', [TOOL], "invalid_unicode"),
    ("plain \ud800 text", [TOOL], "invalid_unicode"),
    ("q", '[{"name": "f", "description": "", "parameters": {"a": {"type": "int", "default": ' + "7" * 5000 + "}}}]",
     "number_too_large"),
    ("q", tools_with({"type": "number", "maximum": float("nan")}), "not_finite"),
    ("q", '[{"name": "f", "name": "g", "description": "", "parameters": {}}]', "duplicate_key"),
    ("q", tools_with({"type": "string", "$dynamicRef": "file:///etc/hostname"}), "unsupported_ref"),
    ("q", tools_with({"type": "string", "$id": "http://169.254.169.254/latest/meta-data/"}), "unsupported_ref"),
    ("q", tools_with({"type": "string", "$schema": "http://127.0.0.1:9/x"}), "unsupported_ref"),
    ("q", tools_with({"type": "string", "pattern": "(a)\\1"}), "unsupported_pattern"),
    ("q", tools_with({"type": "string", "pattern": "(?=a)b"}), "unsupported_pattern"),
    ("q", tools_with({"type": "object", "patternProperties": {"(?<=x)y": {}}}), "unsupported_pattern"),
    ("q", tools_with({"type": "object", "unevaluatedProperties": False}), "unsupported_keyword"),
])
def test_a_hostile_input_row_is_bad_input_with_its_code(query, tools, code):
    row = row_prompt(query, tools, "hammer1")
    assert row.prompt is None and row.error.code == code


def test_a_long_type_name_is_an_unknown_type_read_in_bounded_time():
    nested = "List[" * 2000 + "int" + "]" * 2000
    started = time.perf_counter()
    tools = load_tools([{"name": "f", "description": "", "parameters": {"a": {"type": nested}}}])
    label = label_output('[{"name": "f", "arguments": {"a": 1}}]', tools)
    assert time.perf_counter() - started < 1.0
    assert label.status == "ok" and [f.code for f in label.flags] == ["unknown_type"]


# ----------------------------------------------------------------------------- model outputs

def test_a_backtracking_pattern_runs_in_linear_time():
    tools = load_tools(tools_with({"type": "string", "pattern": "^(a+)+$"}))
    started = time.perf_counter()
    label = label_output(json.dumps([{"name": "f", "arguments": {"a": "a" * 34 + "!"}}]), tools)
    assert time.perf_counter() - started < 1.0
    assert label.status == "invalid_call" and label.errors[0].code == "out_of_range"
    assert label_output(json.dumps([{"name": "f", "arguments": {"a": "a" * 34}}]), tools).status == "ok"


def test_pattern_properties_and_additional_properties_match_on_re2():
    spec = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    tools = load_tools(tools_with(spec))
    started = time.perf_counter()
    bad = label_output(json.dumps([{"name": "f", "arguments": {"a": {"a" * 40 + "!": 1}}}]), tools)
    assert time.perf_counter() - started < 1.0
    assert bad.status == "invalid_call" and bad.errors[0].code == "unknown_argument"
    good = label_output(json.dumps([{"name": "f", "arguments": {"a": {"aaa": 1}}}]), tools)
    wrong_type = label_output(json.dumps([{"name": "f", "arguments": {"a": {"aaa": "x"}}}]), tools)
    assert good.status == "ok" and wrong_type.errors[0].code == "type_mismatch"


def test_unique_items_is_linear_and_keeps_json_equality():
    tools = load_tools(tools_with({"type": "array", "uniqueItems": True}))
    items = [{"k": i, "v": [i, str(i)]} for i in range(20_000)]
    started = time.perf_counter()
    output = json.dumps([{"name": "f", "arguments": {"a": items}}])
    assert label_output(output, tools, settings=ValidationConfig(max_output_chars=len(output))).status == "ok"
    assert time.perf_counter() - started < 5.0

    def status(values):
        return label_output(json.dumps([{"name": "f", "arguments": {"a": values}}]), tools).status
    assert status([1, 1.0]) == "invalid_call"  # JSON Schema's equality: 1 == 1.0
    assert status([True, 1]) == "ok"  # ... but true is not 1
    assert status([{"a": 1, "b": 2}, {"b": 2, "a": 1}]) == "invalid_call"
    assert status([[1, 2], [2, 1]]) == "ok"


def test_an_unclosed_fence_is_found_in_linear_time():
    started = time.perf_counter()
    assert strip_fence("```" + "a" * 200_000) == "```" + "a" * 200_000
    assert time.perf_counter() - started < 1.0
    assert strip_fence('text ```json\n[{"name": "f"}]\n``` more') == '[{"name": "f"}]'


@pytest.mark.parametrize("parser, text, code", [
    ("json", '[{"name": "f", "arguments": {"a": NaN}}]', "not_finite"),
    ("json", '[{"name": "f", "arguments": {"a": "x", "a": "y"}}]', "duplicate_key"),
    ("json", '[{"name": "f", "arguments": {"a": "\\ud800"}}]', "invalid_unicode"),
    ("json", '[{"name": "f", "arguments": {"a": ' + "1" * 5000 + "}}]", "number_too_large"),
    ("hermes", '"stray <tool_call>' + "[" * 5000 + "</tool_call>", "too_deep"),
    ("hermes", '" <tool_call>{"name": "f", "arguments": {"a": ' + "[" * 3000 + "]" * 3000 + "}}</tool_call>",
     "too_deep"),
    ("mistral", '"[TOOL_CALLS]' + "[" * 3000 + "]" * 3000, "too_deep"),
    ("hermes", '<tool_call>{"name": "f", "arguments": {"a": Infinity}}</tool_call>', "not_finite"),
])
def test_hostile_output_is_a_parse_error_with_its_code(parser, text, code):
    label = label_output(text, load_tools([TOOL]), settings=_settings(parser))
    assert label.status == "parse_error" and label.errors[0].code == code


def test_pythonic_numbers_past_json_are_refused_not_raised():
    tools = load_tools([TOOL])
    hex_literal = label_output("[f(a=0x" + "f" * 5000 + ")]", tools, settings=_settings("pythonic"))
    decimal = label_output("[f(a=" + "1" * 5000 + ")]", tools, settings=_settings("pythonic"))
    huge_float = label_output("[f(a=1e999)]", tools, settings=_settings("pythonic"))
    assert hex_literal.status == "invalid_call" and "number_too_large" in str(hex_literal.errors[0])
    assert decimal.status == "parse_error" and decimal.errors[0].code == "parse_error"  # Python's parser refuses it
    assert label_output("[f(a='\x00')]", tools, settings=_settings("pythonic")).status == "parse_error"
    assert huge_float.status == "invalid_call" and "not_finite" in str(huge_float.errors[0])


def test_gold_with_hostile_values_is_bad_gold_not_an_exception():
    tools = load_tools([TOOL])
    for answers in ('[{"name": "f", "arguments": {"a": NaN}}]', '[{"name": "f", "arguments": {"a": "\\ud800"}}]',
                    '[{"name": "f", "arguments": {"a": 1, "a": 2}}]', "[" * 100 + "]" * 100):
        score = score_row("ok", [{"name": "f", "arguments": {"a": "x"}}], [], answers, tools)
        assert score.correct is None and score.mismatch.code == "bad_gold", answers


def test_every_written_call_is_strict_json():
    from pipelines.core.calls import written_calls
    with pytest.raises(ValueError):
        written_calls([{"name": "f", "arguments": {"a": float("inf")}}])


def _settings(parser: str):
    return ValidationConfig(parser=parser)


# ------------------------------------------------------------------------ nothing leaves the job

class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802
        _Recorder.seen.append((self.server.server_address[1], self.path, self.headers.get("Authorization")))
        target = getattr(self.server, "redirect_to", None)
        if target:
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return
        body = json.dumps({"data": [{"id": "m"}], "type": "string"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def listeners():
    _Recorder.seen = []
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers
    for server in servers:
        server.shutdown()


def test_a_reference_is_never_retrieved_by_the_validator(listeners):
    """Even a schema that reached the validator with a reference (the tools loader refuses them first)
    resolves nothing: the registry retrieves nothing, so the listener sees no connection."""
    from pipelines.core.validation import LinearValidator, _NO_RETRIEVAL
    import referencing.exceptions
    port = listeners[0].server_address[1]
    validator = LinearValidator({"$ref": f"http://127.0.0.1:{port}/schema.json"}, registry=_NO_RETRIEVAL)
    with pytest.raises(referencing.exceptions.Unresolvable):
        list(validator.iter_errors("x"))
    assert _Recorder.seen == []


def test_the_preflight_probe_keeps_the_key_to_its_origin(listeners):
    from pipelines.engines.config import EndpointConfig
    from pipelines.engines.endpoint.stage import probe
    first, second = listeners
    first.redirect_to = f"http://127.0.0.1:{second.server_address[1]}/v1/models"
    endpoint = EndpointConfig(base_url=f"http://127.0.0.1:{first.server_address[1]}/v1", model="m")
    assert probe(endpoint, "sekrit") == ["m"]
    assert _Recorder.seen == [(first.server_address[1], "/v1/models", "Bearer sekrit"),
                              (second.server_address[1], "/v1/models", None)]


def test_one_redaction_for_tokens_and_url_credentials():
    from pipelines.config import redact
    plain = {"engine": {"engine_kwargs": {"hf_token": "hf_abc", "max_num_seqs": 4},
                        "endpoint": {"base_url": "https://user:pa55@host.example/v1", "api_key_env": "KEY"}}}
    shown = json.dumps(redact(plain))
    assert "hf_abc" not in shown and "pa55" not in shown and "user:" not in shown
    assert '"max_num_seqs": 4' in shown and '"api_key_env": "KEY"' in shown and "host.example/v1" in shown


# ---------------------------------------------------------------------------------- the guard

def test_the_guard_turns_an_exception_into_the_rows_reason():
    value, why = guard_row(lambda: 1 / 0, 5.0)
    assert value is None and why.code == ROW_EXCEPTION and why.detail.startswith("ZeroDivisionError")
    assert guard_row(lambda: 7, 5.0) == (7, None)


def _spin():
    while True:
        pass


@pytest.mark.parametrize("in_thread", [False, True])
def test_the_time_budget_stops_a_row_and_frees_its_thread(in_thread):
    results = []

    def rows():
        started = time.perf_counter()
        results.append((guard_row(_spin, 0.3), time.perf_counter() - started))
        results.append((guard_row(lambda: "next row", 0.3), 0.0))

    if in_thread:  # as in a Ray actor that runs its tasks in a thread of its own
        thread = threading.Thread(target=rows)
        thread.start()
        thread.join(10)
        assert not thread.is_alive()
    else:
        rows()
    (value, why), took = results[0]
    assert value is None and why.code == ROW_TIME_BUDGET and 0.3 <= took < 3.0
    assert results[1][0] == ("next row", None)


def test_a_row_that_ends_at_its_deadline_leaves_no_exception_behind():
    for _ in range(200):  # rows that finish about when the watchdog fires: nothing may land after them
        guard_row(lambda: time.sleep(0.004), 0.004)
    time.sleep(0.05)
    assert within_budget(lambda: "still fine", 1.0) == "still fine"


# --------------------------------------------------------------------- any cell, any output

def _dumps(value) -> str:
    """JSON text as a hostile writer makes it: NaN and Infinity kept, surrogates escaped (so that the
    text is UTF-8 an Arrow string holds), integers past Python's conversion limit spelled out."""
    try:
        return json.dumps(value, ensure_ascii=True)
    except ValueError:
        return "[" + "9" * 5000 + "]"


KEYS = st.sampled_from(["name", "description", "parameters", "type", "properties", "required", "items", "enum",
                        "pattern", "patternProperties", "uniqueItems", "additionalProperties", "$ref", "$dynamicRef",
                        "$id", "default", "arguments", "role", "content", "minimum", "format"])
TEXT_ANY = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([5000, -400, 70]).map(lambda d: (-1 if d < 0 else 1) * 10 ** abs(d)),
                   st.floats(), TEXT_ANY, st.sampled_from(["^(a+)+$", "(a)\\1", "a" * 40 + "!", "string", "int",
                                                           "List[" * 50 + "int" + "]" * 50, "file:///etc/hostname"]))
JSON_LIKE = st.recursive(LEAVES, lambda children: st.lists(children, max_size=4)
                         | st.dictionaries(st.one_of(KEYS, TEXT_ANY), children, max_size=4), max_leaves=25)
TOOLS_LIKE = st.lists(st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["f", "g"]), TEXT_ANY), "description": st.one_of(TEXT_ANY, JSON_LIKE),
     "parameters": st.one_of(JSON_LIKE, st.fixed_dictionaries(
         {"type": st.just("object"), "properties": st.dictionaries(st.sampled_from(["a", "b"]), JSON_LIKE, max_size=2),
          "required": st.one_of(st.just([]), st.just(["a"]), JSON_LIKE)}))}), max_size=3)
CELL = st.one_of(st.none(), st.text(max_size=40), JSON_LIKE.map(_dumps), TOOLS_LIKE.map(_dumps),
                 st.sampled_from(["[" * 5000 + "]" * 5000, '[{"role": "user", "content": "hi \\ud800"}]']))
CALLS_LIKE = st.lists(st.fixed_dictionaries({"name": st.one_of(st.sampled_from(["f", "g"]), TEXT_ANY),
                                             "arguments": st.one_of(JSON_LIKE, st.dictionaries(
                                                 st.sampled_from(["a", "b"]), JSON_LIKE, max_size=2))}), max_size=3)
OUTPUT = st.one_of(st.text(max_size=60), JSON_LIKE.map(_dumps), CALLS_LIKE.map(_dumps),
                   CALLS_LIKE.map(lambda c: f"```json\n{_dumps(c)}\n```"),
                   CALLS_LIKE.map(lambda c: "".join(f"<tool_call>{_dumps(x)}</tool_call>" for x in c)),
                   CALLS_LIKE.map(lambda c: f'"[TOOL_CALLS]{_dumps(c)}'),
                   st.sampled_from(["```" + "a" * 20_000, '[{"name": "f", "arguments": {"a": NaN, "a": 1}}]',
                                    "[f(a=0x" + "f" * 3000 + ")]", '"<tool_call>' + "[" * 3000]))

_STAGES = {}


def _prompt_stage(tiny_model):
    from pipelines.label.stages import PromptStage
    if "prompt" not in _STAGES:
        _STAGES["prompt"] = PromptStage(tiny_model, "hammer1", 100_000, False, constrained=True, mask_names=True)
    return _STAGES["prompt"]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=CELL, tools=CELL, answers=CELL, output=OUTPUT, parser=st.sampled_from(sorted(PARSERS)))
def test_any_cells_and_any_output_give_one_row_through_the_row_stages(tiny_model, query, tools, answers, output,
                                                                      parser):
    """The prompt stage (with the tokenizer, name masking and the call schema) and the validation
    stage, on one row of any cells and any model text: exactly one row out, a known status, no
    exception, within a time bound, and every written call strict JSON."""
    import pyarrow as pa

    from pipelines.core.reasons import STATUSES
    from pipelines.engines.columns import ENGINE_TEXT_COL, WRITE_TYPES
    from pipelines.label.stages import annotate_batch
    from pipelines.run.stages import ROW_COL, SHARD_COL

    started = time.perf_counter()
    batch = pa.table({"id": ["r"], "query": pa.array([query], pa.string()), "tools": pa.array([tools], pa.string()),
                      "answers": pa.array([answers], pa.string())})
    prompted = _prompt_stage(tiny_model)(batch)
    assert prompted.num_rows == 1
    generated = prompted.append_column(SHARD_COL, pa.array(["s"])).append_column(ROW_COL, pa.array([0], pa.int64()))
    for name, type_ in WRITE_TYPES.items():
        generated = generated.append_column(name, pa.array([output if name == ENGINE_TEXT_COL else None], type_))
    out = annotate_batch(generated, input_schema=batch.schema, lineage={}, mode=Mode.GENERATE,
                         validation=ValidationConfig(parser=parser), row_time_budget_s=10.0)
    assert out.num_rows == 1
    row = out.to_pylist()[0]
    assert row["id"] == "r" and row["status"] in STATUSES and row["status"] != "row_error", row["errors"]
    for call in (row["calls"] or []) + (row["consensus_calls"] or []):
        json.loads(call["arguments"], parse_constant=lambda name: pytest.fail(f"{name} written in calls"))
    assert time.perf_counter() - started < 10.0


VALID_TOOL_SETS = [
    tools_with({"type": "string", "pattern": "^(a+)+$"}),
    [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {
        "a": {"type": "array", "uniqueItems": True, "items": {"type": "object"}},
        "b": {"type": "object", "patternProperties": {"^(a|aa)+$": {"type": "integer"}}, "additionalProperties": False}},
        "required": ["a"]}},
     {"name": "g", "description": "", "parameters": {"a": {"type": "List[Dict[str, int]]"}, "b": {"type": "int, optional",
                                                                                              "default": 3}}}],
    [{"name": "f", "description": "", "parameters": {"type": "object", "properties": {
        "a": {"type": "string", "enum": ["x", "y"]}, "b": {"type": "number", "minimum": 0, "maximum": 10}}}}],
]


# calls to the tools' own names and parameters: what reaches the schema checks
CALLS_TO_TOOLS = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["f", "g"]), "arguments": st.dictionaries(
    st.sampled_from(["a", "b"]), st.one_of(JSON_LIKE, st.just("a" * 34 + "!"), st.lists(JSON_LIKE, max_size=30)),
    max_size=2)}), min_size=1, max_size=3).map(_dumps)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(tools=st.sampled_from(VALID_TOOL_SETS), answers=st.one_of(CELL, CALLS_TO_TOOLS),
       output=st.one_of(OUTPUT, CALLS_TO_TOOLS), samples=st.lists(st.one_of(OUTPUT, CALLS_TO_TOOLS), max_size=2),
       parser=st.sampled_from(["json", "json", "json", "hermes", "llama3_json", "mistral", "pythonic"]))
def test_any_output_against_valid_tools_gives_one_judged_row(tiny_model, tools, answers, output, samples, parser):
    """The validation stage proper (parsing, schema checks, grounding, the gold audit and scoring,
    the samples' agreement) on any model text and any gold: one row, no exception, no row_error."""
    import pyarrow as pa

    from pipelines.core.reasons import STATUSES
    from pipelines.engines.columns import ENGINE_SAMPLES_COL, ENGINE_TEXT_COL, WRITE_TYPES
    from pipelines.label.stages import annotate_batch
    from pipelines.run.stages import ROW_COL, SHARD_COL

    started = time.perf_counter()
    batch = pa.table({"id": ["r"], "query": ["aaaa x y 3"], "tools": [json.dumps(tools)],
                      "answers": pa.array([answers], pa.string())})
    prompted = _prompt_stage(tiny_model)(batch)
    generated = prompted.append_column(SHARD_COL, pa.array(["s"])).append_column(ROW_COL, pa.array([0], pa.int64()))
    values = {ENGINE_TEXT_COL: output, ENGINE_SAMPLES_COL: samples or None}
    for name, type_ in WRITE_TYPES.items():
        generated = generated.append_column(name, pa.array([values.get(name)], type_))
    out = annotate_batch(generated, input_schema=batch.schema, lineage={}, mode=Mode.GENERATE,
                         validation=ValidationConfig(parser=parser), samples=len(samples), row_time_budget_s=10.0)
    row = out.to_pylist()[0]
    assert out.num_rows == 1 and row["status"] in STATUSES and row["status"] not in ("row_error", "bad_input"), row
    for call in (row["calls"] or []) + (row["consensus_calls"] or []):
        json.loads(call["arguments"], parse_constant=lambda name: pytest.fail(f"{name} written in calls"))
    assert time.perf_counter() - started < 10.0


@pytest.mark.parametrize("text, reason", [
    ('{"verdict": "agree", "reason": "\\ud800"}', "invalid_unicode"),
    ('{"verdict": "agree", "verdict": "disagree", "reason": "r"}', "duplicate_key"),
    ('{"verdict": "agree", "reason": "r", "n": ' + "1" * 5000 + "}", "number_too_large"),
    ('{"verdict": NaN, "reason": "r"}', "not_finite"),
    ('{"a": ' + "[" * 3000 + "]" * 3000 + "}", "too_deep"),
])
def test_a_hostile_judge_answer_is_unparseable_with_its_reason(text, reason):
    from pipelines.core.judging import UNPARSEABLE, parse_verdict
    verdict = parse_verdict(text)
    assert verdict.verdict == UNPARSEABLE and verdict.reason.startswith(reason), verdict


def test_the_judges_stages_write_a_row_the_job_could_not_handle_as_row_error():
    import pyarrow as pa

    from pipelines.engines.columns import EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_TEXT_COL
    from pipelines.judge.stages import annotate_verdicts
    from pipelines.run.stages import EARLY_ERRORS_COL, ROW_COL, SHARD_COL

    schema = pa.schema([("id", pa.string())])
    batch = pa.table({"id": ["a", "b"], EARLY_STATUS_COL: pa.array([None, None], pa.string()),
                      EARLY_ERRORS_COL: pa.array([[], []], pa.list_(pa.string())),
                      ENGINE_TEXT_COL: ['{"verdict": "agree", "reason": "fine"}', "{" + "[" * 5000],
                      ENGINE_ERROR_COL: pa.array([None, None], pa.string()), SHARD_COL: ["s", "s"], ROW_COL: [0, 1]})
    out = {r["id"]: r for r in annotate_verdicts(batch, input_schema=schema, lineage={},
                                                 row_time_budget_s=5.0).to_pylist()}
    assert out["a"]["judge_verdict"] == "agree" and out["b"]["judge_verdict"] == "unparseable"
    slow = batch.slice(0, 1)
    import pipelines.judge.stages as judge_stages
    original = judge_stages.parse_verdict
    judge_stages.parse_verdict = lambda text: (_spin(), original(text))[1]  # a row that never ends
    try:
        stuck = annotate_verdicts(slow, input_schema=schema, lineage={}, row_time_budget_s=0.3).to_pylist()
    finally:
        judge_stages.parse_verdict = original
    assert stuck[0]["judge_verdict"] == "row_error" and stuck[0]["judge_reason"].startswith("row_time_budget")
