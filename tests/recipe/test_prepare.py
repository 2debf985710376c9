"""jobs/prepare.py without Ray: source rows -> shard rows, the file formats, bad rows, the shards."""

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipelines.config import CONF_DIR, ConfigError, load_profile
from pipelines.core.tools import BadInput
from pipelines.recipe.config import PrepareConfig
from pipelines.recipe.prepare import load_source, run, shard_rows, to_shard_row
from pipelines.storage import InputError, OutputError
from tests.conftest import REPO

TOOL = {"name": "f", "description": "F.", "parameters": {"a": {"type": "int", "description": "A"}}}
ANSWER = [{"name": "f", "arguments": {"a": 1}}]


def test_xlam_rows_keep_their_id_and_json_strings():
    row = {"id": 7, "query": "f with a=1", "tools": json.dumps([TOOL]), "answers": json.dumps(ANSWER)}
    assert to_shard_row(row, 0) == {"id": "7", "query": "f with a=1", "tools": json.dumps([TOOL]),
                                    "answers": json.dumps(ANSWER), "bfcl_category": None}


def test_lists_become_json_and_a_missing_id_is_the_position():
    out = to_shard_row({"query": "q", "tools": [TOOL], "answers": ANSWER}, 12)
    assert out["id"] == "12" and json.loads(out["tools"]) == [TOOL] and json.loads(out["answers"]) == ANSWER


def test_bfcl_rows_become_a_query_or_a_conversation():
    single = to_shard_row({"id": "simple_0", "question": [[{"role": "user", "content": "hi"}]], "function": [TOOL]}, 0)
    assert single == {"id": "simple_0", "query": "hi", "tools": json.dumps([TOOL]), "answers": None, "bfcl_category": None}
    turns = [[{"role": "user", "content": "a"}], [{"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]]
    multi = to_shard_row({"id": "m", "question": turns, "function": [TOOL]}, 0)
    assert json.loads(multi["query"]) == [m for turn in turns for m in turn]


@pytest.mark.parametrize("row, code", [
    ({"text": "q"}, "unknown_row_shape"),
    ({"query": " ", "tools": [TOOL]}, "empty_query"),
    ({"query": "q", "tools": "not json"}, "tools_not_json"),
    ({"query": "q", "tools": "[]"}, "tools_empty"),
    ({"query": "q", "tools": [TOOL], "answers": "{"}, "bad_answers"),
    ({"query": "q", "tools": [TOOL], "answers": [{"name": "g", "arguments": {}}]}, "answer_unknown_function"),
    ({"question": "nope", "function": [TOOL]}, "bad_question"),
    ({"question": [[{"role": "user"}]], "function": [TOOL]}, "bad_question"),
])
def test_bad_rows_name_their_reason(row, code):
    with pytest.raises(BadInput) as e:
        to_shard_row(row, 0)
    assert e.value.code == code


def test_duplicate_ids_are_bad_rows_with_their_position():
    rows, bad = shard_rows([{"id": 1, "query": "q", "tools": [TOOL]}, {"id": 1, "query": "r", "tools": [TOOL]}])
    assert len(rows) == 1 and bad == ["row 1 (id 1): duplicate_id: id '1' appears earlier in the source"]


@pytest.mark.parametrize("name, write", [
    ("src.json", lambda p, rows: p.write_text(json.dumps(rows))),
    ("src.jsonl", lambda p, rows: p.write_text("".join(json.dumps(r) + "\n" for r in rows))),
    ("src.parquet", lambda p, rows: pq.write_table(pa.Table.from_pylist(rows), p)),
    ("src.csv", lambda p, rows: pacsv.write_csv(pa.Table.from_pylist(rows), p)),
])
def test_local_files_of_each_format(tmp_path, name, write):
    rows = [{"id": str(i), "query": f"q{i}", "tools": json.dumps([TOOL]), "answers": json.dumps(ANSWER)} for i in range(3)]
    write(tmp_path / name, rows)
    shards, bad = shard_rows(load_source(str(tmp_path / name), None, "train"))
    assert bad == [] and [r["query"] for r in shards] == ["q0", "q1", "q2"]


def _config(*args):
    return load_profile(PrepareConfig, list(args), CONF_DIR / "prepare")


def test_every_job_takes_conf_name_and_the_data_jobs_default_to_their_local_profile(capsys):
    from pipelines.cli import data_job_main
    from pipelines.config import profile_loader
    from pipelines.recipe.config import AugmentConfig

    assert (_config().input.path, _config().output.path) == ("data/sources/xlam.json", "out/shards")
    assert _config("conf=local", "output.path=elsewhere").output.path == "elsewhere"
    augment = load_profile(AugmentConfig, ["conf=local"], CONF_DIR / "augment")
    assert (augment.input.path, augment.output.path) == ("out/shards", "out/augmented")
    with pytest.raises(ConfigError, match="conf=nope: no .*conf/prepare/nope.yaml; profiles: local"):
        _config("conf=nope")
    assert data_job_main(["conf=nope"], profile_loader(PrepareConfig, "prepare"), lambda config: {}) == 2
    assert "conf=nope" in capsys.readouterr().out


def test_run_writes_shards_of_the_configured_size(tmp_path):
    summary = run(_config(f"input.path={REPO / 'data' / 'sources' / 'xlam.json'}", f"output.path={tmp_path / 'out'}",
                          "output.rows_per_shard=25"))
    assert summary["rows"] == 58 and summary["shards"] == 3 and summary["bad_rows"] == 0
    table = pq.read_table(tmp_path / "out")
    assert table.num_rows == 58 and table.schema.names == ["id", "query", "tools", "answers", "bfcl_category"]
    assert sorted(pq.read_metadata(p).num_rows for p in (tmp_path / "out").glob("*.parquet")) == [8, 25, 25]
    with pytest.raises(OutputError, match="is not empty"):
        run(_config(f"input.path={REPO / 'data' / 'sources' / 'xlam.json'}", f"output.path={tmp_path / 'out'}"))


def test_bad_rows_stop_the_job_before_it_writes_unless_dropped(tmp_path):
    source = tmp_path / "src.jsonl"
    source.write_text(json.dumps({"query": "q", "tools": [TOOL]}) + "\n" + json.dumps({"query": "", "tools": [TOOL]}) + "\n")
    with pytest.raises(InputError, match=r"1 of 2 rows .* nothing was written .*\n  row 1: empty_query"):
        run(_config(f"input.path={source}", f"output.path={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()
    summary = run(_config(f"input.path={source}", f"output.path={tmp_path / 'out'}", "prepare.drop_bad=true"))
    assert summary["rows"] == 1 and summary["bad_reasons"] == {"empty_query": 1}


def _bfcl_file(folder, name, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


BFCL_TOOL = {"name": "area", "description": "Area.", "parameters": {"type": "dict", "properties": {
    "base": {"type": "integer", "description": "b"}, "unit": {"type": "string", "description": "u", "default": "cm"}},
    "required": ["base"]}}


def test_bfcl_files_are_joined_with_their_possible_answers_and_keep_their_category(tmp_path):
    data = tmp_path / "data"
    question = [[{"role": "user", "content": "Area with base 10?"}]]
    _bfcl_file(data, "BFCL_v4_simple_python.json", [{"id": "simple_python_1", "question": question, "function": [BFCL_TOOL]},
                                                   {"id": "simple_python_0", "question": question, "function": [BFCL_TOOL]}])
    _bfcl_file(data / "possible_answer", "BFCL_v4_simple_python.json", [
        {"id": "simple_python_0", "ground_truth": [{"area": {"base": [10], "unit": ["cm", ""]}}]},
        {"id": "simple_python_1", "ground_truth": [{"area": {"base": [12]}}]}])
    _bfcl_file(data, "BFCL_v4_irrelevance.json", [{"id": "irrelevance_0", "question": question, "function": [BFCL_TOOL]}])
    _bfcl_file(data, "BFCL_v4_live_relevance.json", [{"id": "live_relevance_0", "question": question, "function": [BFCL_TOOL]}])
    summary = run(_config("input.format=bfcl", f"input.path={data}", f"output.path={tmp_path / 'out'}",
                          "prepare.categories=[simple_python,irrelevance,live_relevance]"))
    assert summary["rows"] == 4 and summary["null_answers"] == 1
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    assert json.loads(rows["simple_python_0"]["answers"]) == [{"area": {"base": [10], "unit": ["cm", ""]}}]
    assert json.loads(rows["simple_python_1"]["answers"]) == [{"area": {"base": [12]}}]
    assert rows["irrelevance_0"]["answers"] == "[]" and rows["live_relevance_0"]["answers"] is None
    assert {r["bfcl_category"] for r in rows.values()} == {"simple_python", "irrelevance", "live_relevance"}
    assert rows["simple_python_0"]["query"] == "Area with base 10?"


def test_bfcl_import_refuses_what_it_cannot_score_like_the_leaderboard(tmp_path):
    data = tmp_path / "data"
    _bfcl_file(data, "BFCL_v4_simple_python.json", [{"id": "simple_python_0", "question": [[{"role": "user", "content": "q"}]],
                                                   "function": [BFCL_TOOL]}])
    out = f"output.path={tmp_path / 'out'}"
    with pytest.raises(ConfigError, match="simple_java are not scored like the leaderboard"):
        run(_config("input.format=bfcl", f"input.path={data}", out, "prepare.categories=[simple_java]"))
    with pytest.raises(ConfigError, match="names multi_turn_long_context"):  # first turns of multi_turn_base only
        run(_config("input.format=bfcl", f"input.path={data}", out, "prepare.categories=[multi_turn_long_context]"))
    with pytest.raises(InputError, match="has no BFCL_v4_simple_python.json"):  # the possible answers are missing
        run(_config("input.format=bfcl", f"input.path={data}", out, "prepare.categories=[simple_python]"))
    with pytest.raises(InputError, match="is not a folder"):
        run(_config("input.format=bfcl", f"input.path={tmp_path / 'nowhere'}", out))
    assert not (tmp_path / "out").exists()


def test_bfcl_import_from_the_installed_package_reads_every_category(tmp_path):
    summary = run(_config("input.format=bfcl", "input.path=bfcl-eval", f"output.path={tmp_path / 'out'}",
                          "prepare.drop_bad=true"))
    # the leaderboard's 3,491 single-turn Python and relevance rows; 4 live_irrelevance rows have no tools
    assert (summary["source_rows"], summary["rows"], summary["bad_reasons"]) == (3491, 3487, {"tools_empty": 4})
    table = pq.read_table(tmp_path / "out", columns=["bfcl_category", "answers"])
    counts = dict(zip(*[c.to_pylist() for c in table.group_by("bfcl_category").aggregate([("bfcl_category", "count")])
                        .select(["bfcl_category", "bfcl_category_count"]).columns]))
    assert counts == {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "live_simple": 258,
                      "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24, "irrelevance": 240,
                      "live_irrelevance": 880, "live_relevance": 16}


def test_bfcl_multi_turn_first_turns_come_with_their_environments_and_gold_calls(tmp_path):
    import json

    summary = run(_config("input.format=bfcl", "input.path=bfcl-eval", f"output.path={tmp_path / 'out'}",
                          "prepare.categories=[multi_turn_base]"))
    assert (summary["rows"], summary["bad_rows"]) == (200, 0)
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    first = rows["multi_turn_base_0"]
    assert first["query"].startswith("Move 'final_report.pdf' within document directory")
    assert first["involved_classes"] == ["TwitterAPI", "GorillaFileSystem"]  # as BFCL lists them
    assert "final_report.pdf" in json.loads(first["initial_config"])["GorillaFileSystem"]["root"]["workspace"]["contents"][
        "document"]["contents"]
    assert json.loads(first["answers"]) == [{"name": "cd", "arguments": {"folder": "document"}},
                                            {"name": "mkdir", "arguments": {"dir_name": "temp"}},
                                            {"name": "mv", "arguments": {"source": "final_report.pdf", "destination": "temp"}}]
    assert {t["name"] for t in json.loads(first["tools"])} >= {"cd", "mkdir", "mv", "post_tweet"}
    # BFCL writes `displayCarStatus('fuel')`: positional arguments are named by the environment's signature
    assert json.loads(rows["multi_turn_base_55"]["answers"])[:2] == [
        {"name": "displayCarStatus", "arguments": {"option": "fuel"}},
        {"name": "fillFuelTank", "arguments": {"fuelAmount": 15.0}}]
