"""The stage functions without Ray: pure cores and the batch wrappers on pyarrow tables."""

import datetime as dt
import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.masking import MaskMap
from pipelines.core.validation import ValidationConfig
from pipelines.label.config import Mode
from pipelines.engines.vllm.stage import engine_request, engine_response
from pipelines.run.lease import Lease
from pipelines.label.schema import ADDED_COLUMNS, output_schema
from pipelines.engines.columns import (EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_FINISH_COL, ENGINE_LOGPROBS_COL,
                                       ENGINE_PROMPT_TOKENS_COL, ENGINE_SAMPLES_COL, ENGINE_SAMPLE_ERROR_COL,
                                       ENGINE_SAMPLE_FINISH_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL, PROMPT_TOKENS_COL)
from pipelines.label.stages import (NAME_MAP_COL, PROMPT_TOKEN_COUNT_COL, TOOLS_COL, USER_MESSAGE_COL, PromptStage,
                                    annotate_batch, annotate_row, row_prompt)
from pipelines.run.stages import EARLY_ERRORS_COL, ROW_COL, SHARD_COL, read_shard, write_pieces

TOOLS = json.dumps([{"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {
    "a": {"type": "integer", "description": "A"}}, "required": ["a"]}}])
# TOOLS as the prompt stage hands them on (written out by hand, not computed by the code under test)
CANONICAL_TOOLS = json.dumps([{"name": "f", "description": "F.", "properties": {"a": {"type": "integer", "description": "A"}},
                               "required": ["a"], "form": "function"}])


@pytest.mark.parametrize("query, tools, code", [
    (None, TOOLS, "missing_query"), ("  ", TOOLS, "empty_query"), (3, TOOLS, "query_not_string"),
    (b"\xff\xfe", TOOLS, "query_not_utf8"), ("q", "nope", "tools_not_json"), ("q", None, "missing_tools"),
])
def test_row_prompt_bad_input(query, tools, code):
    assert row_prompt(query, tools, "hammer1").error.code == code


def test_row_prompt_accepts_struct_tools_with_null_fields():
    # A list<struct> column gives None for fields a tool lacks; they must not become `default: None`.
    tools = [{"name": "f", "description": "F.", "parameters": {"a": {"type": "int", "description": "A", "default": None}}}]
    row = row_prompt("q", tools, "hammer1")
    assert row.error is None and "default" not in row.tools[0].properties["a"]


@pytest.fixture(scope="module")
def prompt_stage(tiny_model):
    return PromptStage(tiny_model, "hammer1", max_prompt_tokens=900, trust_remote_code=False)


def test_prompt_stage_builds_tokens_and_marks_rows_that_stop_early(prompt_stage):
    long_query = "word " * 2000
    batch = pa.table({"query": ["use f with a=1", None, long_query], "tools": [TOOLS, TOOLS, TOOLS], "keep": [1, 2, 3]})
    out = {r["keep"]: r for r in prompt_stage(batch).to_pylist()}
    ok, bad, long = out[1], out[2], out[3]
    assert ok[EARLY_STATUS_COL] is None and ok[PROMPT_TOKENS_COL] and ok[PROMPT_TOKEN_COUNT_COL] == len(ok[PROMPT_TOKENS_COL])
    text = prompt_stage.tokenizer.tokenizer.decode(ok[PROMPT_TOKENS_COL])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n[BEGIN OF TASK")
    assert text.endswith(ok[USER_MESSAGE_COL] + "<|im_end|>\n<|im_start|>assistant\n")
    assert bad[EARLY_STATUS_COL] == "bad_input" and bad[PROMPT_TOKENS_COL] == [] and bad[EARLY_ERRORS_COL][0].startswith("missing_query")
    assert long[EARLY_STATUS_COL] == "prompt_too_long" and long[PROMPT_TOKEN_COUNT_COL] > 900 and long[PROMPT_TOKENS_COL] == []
    assert sorted(out) == [1, 2, 3]


def test_prompt_stage_puts_rows_of_one_tool_set_together(prompt_stage):
    other = json.dumps([{"name": "g", "description": "G.", "parameters": {}}])
    tools = [TOOLS, other, TOOLS, other, "not json", TOOLS]
    batch = pa.table({"query": ["q"] * 6, "tools": tools, "keep": list(range(6))})
    kept = prompt_stage(batch).column("keep").to_pylist()
    assert sorted(kept) == list(range(6))
    runs = [tools[k] for k in kept]
    assert sum(a != b for a, b in zip(runs, runs[1:])) == 2  # three tool-set runs: each set's rows adjacent


def test_engine_request_maps_our_columns_onto_ray_data_llm_and_keeps_early_rows_out():
    params = {"temperature": 0.0, "max_tokens": 8}
    request = engine_request({EARLY_STATUS_COL: None, PROMPT_TOKENS_COL: [1, 2, 3]}, params)
    assert request == {"tokenized_prompt": [1, 2, 3], PROMPT_TOKENS_COL: None, "sampling_params": params,
                       "hammer_sample_params": None, "__inference_error__": ""}
    early = engine_request({EARLY_STATUS_COL: "bad_input", PROMPT_TOKENS_COL: []}, params)
    assert early["__inference_error__"] == "skipped: bad_input"
    constrained = engine_request({EARLY_STATUS_COL: None, PROMPT_TOKENS_COL: [1], "_call_schema": '{"type": "array"}'}, params)
    assert constrained["sampling_params"] == {**params, "structured_outputs": {"json": '{"type": "array"}'}}


def test_engine_response_maps_ray_data_llm_back_to_our_columns_and_drops_the_rest():
    # What ray.data.llm 2.60 hands back: a row it ran, a row it failed, a row it skipped.
    batch = pa.table({"id": ["ran", "failed", "skipped"], EARLY_STATUS_COL: [None, None, "bad_input"],
                      "generated_text": ["[]", "", None], "num_generated_tokens": [3, 0, None],
                      "__inference_error__": ["", "ValueError: too long", "skipped: bad_input"],
                      "request_id": [0, -1, None], "params": ["p", "", None], "time_taken_llm": [0.1, -1.0, None]})
    out = engine_response(batch, keep=["id", EARLY_STATUS_COL])
    assert out.column_names == ["id", EARLY_STATUS_COL, ENGINE_TEXT_COL, ENGINE_ERROR_COL, ENGINE_TOKENS_COL,
                                ENGINE_FINISH_COL, ENGINE_SAMPLES_COL, ENGINE_SAMPLE_FINISH_COL, ENGINE_SAMPLE_ERROR_COL,
                                ENGINE_LOGPROBS_COL, ENGINE_PROMPT_TOKENS_COL]
    assert out.column(ENGINE_PROMPT_TOKENS_COL).to_pylist() == [None, None, None]  # the prompt stage counted them
    assert out.column(ENGINE_TEXT_COL).to_pylist() == ["[]", None, None]
    assert out.column(ENGINE_ERROR_COL).to_pylist() == [None, "ValueError: too long", None]
    assert out.column(ENGINE_TOKENS_COL).to_pylist() == [3, None, None]
    with pytest.raises(ValueError, match=r"engine_response needs the columns \['_shard'\]"):
        engine_response(batch, keep=["id", SHARD_COL])


def test_a_carried_column_with_an_engine_name_crosses_the_engine_renamed_and_comes_back():
    # A labeling output's `model` and `prompt` (what the judge reads): ray.data.llm would take them
    # as a LoRA adapter and a text prompt. generate() renames them before the engine stage.
    batch = pa.table({"id": ["a"], "_carried_model": ["labeler"], "_carried_prompt": ["the Hammer message"],
                      "prompt": ["consumed by the engine"], "generated_text": ["{}"], "num_generated_tokens": [1],
                      "__inference_error__": [""]})
    out = engine_response(batch, keep=["id", "model", "prompt"])
    assert out.select(["id", "model", "prompt"]).to_pylist() == [{"id": "a", "model": "labeler", "prompt": "the Hammer message"}]


def _generated(text, **extra):
    return {TOOLS_COL: CANONICAL_TOOLS, EARLY_STATUS_COL: None, EARLY_ERRORS_COL: [], ENGINE_TEXT_COL: text,
            ENGINE_TOKENS_COL: 7, ENGINE_ERROR_COL: None, ENGINE_SAMPLES_COL: None, ENGINE_SAMPLE_ERROR_COL: None,
            ENGINE_LOGPROBS_COL: None, ENGINE_FINISH_COL: "stop", ENGINE_SAMPLE_FINISH_COL: None,
            ENGINE_PROMPT_TOKENS_COL: None, **extra}


def test_an_output_cut_at_max_tokens_says_so_first_and_keeps_the_status_its_text_gives():
    kw = {"mode": Mode.GENERATE, "validation": ValidationConfig()}
    cut = annotate_row(_generated('[{"name": "f", "argum', **{ENGINE_FINISH_COL: "length"}), **kw)
    assert cut["status"] == "parse_error" and cut["finish_reason"] == "length"
    assert cut["errors"][0] == ("truncated: the output stopped at generation.max_tokens (7 tokens) before its end of "
                                "turn: raise generation.max_tokens")
    assert len(cut["errors"]) == 2 and not cut["errors"][1].startswith("truncated")  # the parser's reason follows
    # the list closed on the last token allowed, before the end of turn came: a usable label, flagged
    calls = annotate_row(_generated('[{"name": "f", "arguments": {"a": 1}}]', **{ENGINE_FINISH_COL: "length"}), **kw)
    assert calls["status"] == "ok" and calls["errors"] == [] and any(f.startswith("truncated: ") for f in calls["flags"])
    stopped = annotate_row(_generated("{oops"), **kw)
    assert stopped["finish_reason"] == "stop" and not any(e.startswith("truncated") for e in stopped["errors"])


def test_annotate_row_statuses():
    kw = {"mode": Mode.GENERATE, "validation": ValidationConfig()}
    ok = annotate_row(_generated('[{"name": "f", "arguments": {"a": 1}}]'), **kw)
    assert ok["status"] == "ok" and ok["calls"] == [{"name": "f", "arguments": '{"a": 1}'}] and ok["call_type"] == "single"
    assert ok["num_output_tokens"] == 7
    assert annotate_row(_generated("[]"), **kw)["status"] == "no_call"
    assert annotate_row(_generated("{oops"), **kw)["status"] == "parse_error"
    bad = annotate_row(_generated('[{"name": "f", "arguments": {}}]'), **kw)
    assert bad["status"] == "invalid_call" and bad["errors"] == ["missing_required: f.a"]
    err = annotate_row(_generated(None, **{ENGINE_ERROR_COL: "ValueError: too long"}), **kw)
    assert err["status"] == "engine_error" and err["errors"] == ["engine_error: ValueError: too long"]
    early = annotate_row({EARLY_STATUS_COL: "bad_input", EARLY_ERRORS_COL: ["missing_query: query is null"]}, **kw)
    assert early["status"] == "bad_input" and early["errors"] == ["missing_query: query is null"]
    assert annotate_row(_generated(None), mode=Mode.DRY_RUN, validation=ValidationConfig())["status"] == "dry_run"


def test_annotate_row_revalidates_raw_output_and_scores_against_gold():
    row = {**_generated(None), "raw_output": '[{"name": "f", "arguments": {"a": 2}}]', "num_output_tokens": 9,
           "query": "use f with 2", "answers": '[{"name": "f", "arguments": {"a": 2.0}}]'}
    out = annotate_row(row, mode=Mode.REVALIDATE, validation=ValidationConfig())
    assert (out["status"], out["correct"], out["mismatch"], out["gold_call_type"]) == ("ok", True, None, "single")
    assert out["num_output_tokens"] == 9
    missing = annotate_row({**row, "raw_output": None}, mode=Mode.REVALIDATE, validation=ValidationConfig())
    assert missing["status"] == "bad_input" and missing["errors"] == ["missing_raw_output: raw_output is null"]


def test_annotate_batch_passes_odd_input_columns_through_with_their_types():
    input_schema = pa.schema([("query", pa.string()), ("tools", pa.string()), ("id", pa.int64()),
                              ("blob", pa.binary()), ("when", pa.timestamp("us")), ("nested", pa.struct([("k", pa.list_(pa.int16()))])),
                              ("status", pa.int8())])  # a clashing name: the added column wins
    when = dt.datetime(2024, 1, 2, 3, 4, 5)
    row = {**_generated("[]"), "query": "q", "tools": TOOLS, "id": 7, "blob": b"\x00\xff", "when": when,
           "nested": {"k": [1, 2]}, "status": 3, USER_MESSAGE_COL: "the prompt", PROMPT_TOKEN_COUNT_COL: 12,
           NAME_MAP_COL: None, SHARD_COL: "s.parquet", ROW_COL: 4}
    batch = pa.Table.from_pylist([row])
    out = annotate_batch(batch, input_schema=input_schema, lineage={"model": "m", "prompt_format": "hammer1",
                       "run_id": "r", "config_hash": "h"}, mode=Mode.GENERATE, validation=ValidationConfig())
    assert out.schema.remove(out.schema.get_field_index(SHARD_COL)).remove(len(out.schema) - 2) == output_schema(input_schema)
    assert out.column_names[:6] == ["query", "tools", "id", "blob", "when", "nested"]
    assert out.column_names[6:] == [*ADDED_COLUMNS, SHARD_COL, ROW_COL]
    got = out.to_pylist()[0]
    assert (got["id"], got["blob"], got["when"], got["nested"]) == (7, b"\x00\xff", when, {"k": [1, 2]})
    assert (got["status"], got["prompt"], got["num_prompt_tokens"], got["model"]) == ("no_call", "the prompt", 12, "m")


def test_read_shard_adds_stable_ids_and_skips_rows_already_done(tmp_path):
    pq.write_table(pa.table({"query": list("abcde"), "tools": ["[]"] * 5}), tmp_path / "s.parquet")
    item = {"path": [str(tmp_path / "s.parquet")], "shard": ["dir/s.parquet"], "done": ["[]"]}
    tables = list(read_shard(item, filesystem=fsspec.filesystem("file"), add_id=True, batch_rows=2))
    assert [t.num_rows for t in tables] == [2, 2, 1]
    table = pa.concat_tables(tables)
    assert table.column("id").to_pylist() == [f"dir/s.parquet:{i}" for i in range(5)]
    assert table.column(SHARD_COL).to_pylist() == ["dir/s.parquet"] * 5 and table.column(ROW_COL).to_pylist() == [0, 1, 2, 3, 4]
    item["done"] = ["[[0, 2], [3, 4]]"]
    table = pa.concat_tables(read_shard(item, filesystem=fsspec.filesystem("file"), add_id=True, batch_rows=2))
    assert table.column("query").to_pylist() == ["c", "e"] and table.column(ROW_COL).to_pylist() == [2, 4]


def test_write_pieces_commits_one_file_named_by_its_rows(tmp_path):
    from pipelines.run.output import committed_coverage

    batch = pa.table({"id": ["a", "b", "c"], "status": ["ok", "bad_input", "engine_error"],
                      "errors": [[], ["missing_query: null"], ["engine_error: boom"]],
                      SHARD_COL: ["s1.parquet", "s1.parquet", "s2.parquet"], ROW_COL: [4, 5, 0]})
    fs = fsspec.filesystem("file")
    lease = Lease(fs, str(tmp_path), "test-run")
    lease.acquire()
    stats = write_pieces(batch, filesystem=fs, root=str(tmp_path), lease_token=lease.token).to_pylist()[0]
    assert stats["rows"] == 3 and json.loads(stats["reasons"]) == {"missing_query": 1, "engine_error": 1}
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("_lease"))
    assert files[0] == "_tmp" and list((tmp_path / "_tmp").iterdir()) == []
    assert len(files) == 2 and files[1].startswith("s1-000000004-") and files[1].endswith(".parquet")
    assert pq.read_table(tmp_path / files[1]).column_names == ["id", "status", "errors"]
    assert committed_coverage(fs, str(tmp_path)) == {"s1.parquet": [[4, 6]], "s2.parquet": [[0, 1]]}
    write_pieces(batch, filesystem=fs, root=str(tmp_path), lease_token=lease.token)  # a retried task rewrites the same file
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("_lease")) == files


def test_mask_names_prompts_with_masked_names_and_judges_against_the_originals(tiny_model):
    stage = PromptStage(tiny_model, "hammer1", max_prompt_tokens=900, trust_remote_code=False, mask_names=True, seed=5)
    batch = pa.table({"id": ["r1", "r2"], "query": ["use f with a=1", "use f with a=2"], "tools": [TOOLS, TOOLS]})
    first, second = stage(batch).to_pylist()
    mapping = MaskMap.from_json(first[NAME_MAP_COL])
    (masked_f, original_f), = mapping.functions.items()
    (masked_a, original_a), = mapping.parameters[masked_f].items()
    assert (original_f, original_a) == ("f", "a") and first[NAME_MAP_COL] != second[NAME_MAP_COL]
    assert f'"name": "{masked_f}"' in first[USER_MESSAGE_COL] and f'"{masked_a}"' in first[USER_MESSAGE_COL]
    assert '"name": "f"' not in first[USER_MESSAGE_COL]
    assert stage(batch).to_pylist()[0][NAME_MAP_COL] == first[NAME_MAP_COL]  # a function of (seed, id)

    # The model answers with the masked names; the row is judged with the original ones.
    text = json.dumps([{"name": masked_f, "arguments": {masked_a: 1}}])
    answers = json.dumps([{"name": "f", "arguments": {"a": 1}}])
    out = annotate_row(_generated(text, answers=answers, **{NAME_MAP_COL: first[NAME_MAP_COL]}), mode=Mode.GENERATE,
                     validation=ValidationConfig())
    assert out["status"] == "ok" and out["calls"] == [{"name": "f", "arguments": '{"a": 1}'}] and out["correct"]
    # Re-validation maps back through the name_map the labeling run wrote, not the prompt stage's (none).
    revalidated = annotate_row({**_generated(None, **{NAME_MAP_COL: None}), "raw_output": text, "answers": answers,
                                "name_map": first[NAME_MAP_COL]}, mode=Mode.REVALIDATE, validation=ValidationConfig())
    assert revalidated["calls"] == [{"name": "f", "arguments": '{"a": 1}'}]
    assert revalidated["name_map"] == first[NAME_MAP_COL]
    # Calls that keep the masked name are unknown to the original tools.
    wrong = annotate_row(_generated(json.dumps([{"name": masked_f + "x", "arguments": {}}]), **{NAME_MAP_COL: first[NAME_MAP_COL]}),
                       mode=Mode.GENERATE, validation=ValidationConfig())
    assert wrong["status"] == "invalid_call" and wrong["errors"][0].startswith("unknown_function")


def test_stages_refuse_a_batch_without_the_columns_they_declare(prompt_stage):
    # A missing column is a wiring error named with the stage, never a column of nulls.
    with pytest.raises(ValueError, match=r"PromptStage needs the columns \['tools'\]"):
        prompt_stage(pa.table({"query": ["q"]}))
    row = {**_generated("[]"), "query": "q", "tools": TOOLS, USER_MESSAGE_COL: "p", PROMPT_TOKEN_COUNT_COL: 1,
           SHARD_COL: "s.parquet", ROW_COL: 0}
    del row[ENGINE_LOGPROBS_COL]  # and no _name_map column
    with pytest.raises(ValueError, match=r"annotate_batch needs the columns \['_name_map', '_logprob_stats'\]"):
        annotate_batch(pa.Table.from_pylist([row]), input_schema=pa.schema([("query", pa.string()), ("tools", pa.string())]),
                       lineage={}, mode=Mode.GENERATE, validation=ValidationConfig())


# ------------------------------------------------------------------------- stage contracts

def test_a_stage_missing_a_column_it_reads_names_itself_and_the_column():
    from pipelines.contract import StageWiringError
    from pipelines.judge.stages import JudgePromptStage

    stage = JudgePromptStage(None, "{query}", 100, False)
    with pytest.raises(StageWiringError, match=r"JudgePromptStage needs the columns \['calls'\]"):
        stage(pa.table({"query": ["q"], "tools": ["[]"], "status": ["ok"]}))


def test_a_row_shaping_stage_that_writes_a_column_of_the_wrong_type_is_stopped():
    """shape_rows checks what it returns against the contract: a row function that returns a column
    of another type (here an int where the contract declares text) is a wiring error, not a bad row."""
    from pipelines.contract import Contract, StageWiringError
    from pipelines.run.stages import shape_rows

    contract = Contract("toy", ("x",), {"y": pa.string()})
    wrong = pa.schema([("x", pa.int64()), ("y", pa.int64())])
    with pytest.raises(StageWiringError, match=r"toy broke its contract: y \(int64, declared string\)"):
        shape_rows(pa.table({"x": [1, 2]}), contract, wrong, lambda row: {"x": row["x"], "y": row["x"]},
                   lambda row, why: {"x": row["x"], "y": None}, None)


def test_shape_rows_gives_a_raising_row_its_reason_and_keeps_the_others():
    from pipelines.contract import Contract
    from pipelines.run.stages import shape_rows

    contract = Contract("toy", ("x",), {"y": pa.string()})
    schema = pa.schema([("x", pa.int64()), ("y", pa.string())])

    def row_fn(row):
        if row["x"] == 2:
            raise ZeroDivisionError("boom")
        return {"x": row["x"], "y": f"ok {row['x']}"}

    out = shape_rows(pa.table({"x": [1, 2, 3]}), contract, schema, row_fn,
                     lambda row, why: {"x": row["x"], "y": str(why)}, None)
    assert out.column("y").to_pylist() == ["ok 1", "row_exception: ZeroDivisionError: boom", "ok 3"]


def test_every_engine_kind_writes_its_contract():
    """The in-process kind's edge returns exactly the engine contract's columns and types."""
    from pipelines.engines.columns import CONTRACT

    out = engine_response(pa.table({"id": ["a"], "__inference_error__": [""], "generated_text": ["[]"],
                                    "num_generated_tokens": [2]}), keep=["id"])
    assert {name: out.schema.field(name).type for name in CONTRACT.writes} == CONTRACT.writes
