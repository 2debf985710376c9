"""The whole job for real: a two-node Ray mini-cluster, vLLM on the CPU with the tiny model, and input
and output through a real S3 endpoint (moto's server on 127.0.0.1). One job run, shared by the tests."""

import json
import subprocess
import sys

import pyarrow.dataset as pads
import pytest

from pipelines.config import load_config
from pipelines.io import arrow_filesystem, filesystem
from pipelines.schema import ADDED_COLUMNS
from tests.conftest import REPO

pytestmark = pytest.mark.integration
SECRET = "PLANTED-SECRET-3f9a"
SAMPLE_ROWS = 65
BAD_ROWS = {  # category in the sample data -> the reason code the row must carry
    "bad_tools_not_json": "tools_not_json", "bad_null_query": "missing_query", "bad_empty_query": "empty_query",
    "bad_tool_without_name": "tool_without_name", "bad_tools_not_list": "tools_not_list",
    "bad_duplicate_names": "duplicate_tool_name", "bad_empty_tools": "tools_empty",
}


@pytest.fixture(scope="session")
def s3_endpoint():
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key=SECRET,
                      region_name="us-east-1")
    s3.create_bucket(Bucket="shards")
    s3.create_bucket(Bucket="labels")
    for shard in sorted((REPO / "data" / "sample").glob("*.parquet")):
        s3.upload_file(str(shard), "shards", f"sample/{shard.name}")
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "resources": {"prompt_node": 1}})
    engine_node = cluster.add_node(num_cpus=2, resources={"engine_node": 1})
    cluster.wait_for_nodes()
    yield cluster, engine_node
    import ray

    ray.shutdown()
    cluster.shutdown()


def run_job(args: list[str], revalidate: bool = False):
    """Runs a job through the jobs' command line; returns (config, summary, output table, fs, root)."""
    from pipelines.cli import main

    assert main(args, revalidate=revalidate) == 0
    config = load_config(args)
    fs, root = filesystem(config.output.path, config.s3)
    summary = json.loads(fs.cat(f"{root}/_summary.json"))
    table = pads.dataset(root, filesystem=arrow_filesystem(fs), format="parquet").to_table()
    return config, summary, table, fs, root


@pytest.fixture(scope="session")
def common_args(s3_endpoint, cluster, tiny_model):
    # Every job pins its prompt actors to the head and its engines to the second node.
    return [f"s3.endpoint_url={s3_endpoint}", "s3.access_key_id=testing", f"s3.secret_access_key={SECRET}",
            f"model.source={tiny_model}", f"ray.address={cluster[0].address}",
            "prompt.resources={prompt_node: 0.1}", "engine.resources={engine_node: 0.1}"]


@pytest.fixture(scope="session")
def job(common_args):
    """The labeling job, once."""
    return run_job(["conf=local", "input.path=s3://shards/sample", "output.path=s3://labels/run1",
                    "generation.max_tokens=16", "run_id=label-run", *common_args])


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
        assert row["run_id"] == config.run_id and row["prompt_format"] == "hammer1"
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
    everything = saved_config + json.dumps(summary) + json.dumps(table.to_pylist(), default=str)
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


def test_constrained_decoding_yields_only_calls_to_the_rows_tools(common_args):
    max_tokens = 48
    _, summary, table, _, _ = run_job(["conf=local", "input.path=s3://shards/sample", "output.path=s3://labels/constrained",
                                       "generation.constrained=true", f"generation.max_tokens={max_tokens}", *common_args])
    generated = [r for r in table.to_pylist() if r["status"] != "bad_input"]
    # Random weights, but the grammar holds: every finished output is a valid list of calls.
    finished = [r for r in generated if r["num_output_tokens"] < max_tokens]
    assert finished and all(r["status"] in ("ok", "no_call") for r in finished), finished[:3]
    assert summary["status"]["parse_error"] == len(generated) - len(finished)


def test_stages_spread_across_the_two_nodes(job, cluster):
    from ray.util.state import list_actors

    head, engine_node = cluster[0].head_node, cluster[1]
    actors = list_actors(detail=True, limit=1000, raise_on_missing_output=False)
    nodes = {}
    for actor in actors:
        for stage in ("PromptStage", "vLLMEngineStageUDF"):
            if stage in actor.class_name:
                nodes.setdefault(stage, set()).add(actor.node_id)
    assert nodes["PromptStage"] == {head.node_id}
    assert nodes["vLLMEngineStageUDF"] == {engine_node.node_id}


def test_dry_run_from_the_command_line_loads_no_model(tmp_path, tiny_model):
    out = tmp_path / "dry"
    proc = subprocess.run(
        [sys.executable, "jobs/label.py", "conf=local", "input.path=data/sample", f"output.path={out}", "dry_run=true",
         f"model.source={tiny_model}", "ray.num_cpus=2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "vLLM" not in proc.stdout + proc.stderr  # no engine was started
    table = pads.dataset(str(out), format="parquet").to_table()
    statuses = table.column("status").to_pylist()
    assert len(statuses) == SAMPLE_ROWS and statuses.count("dry_run") == SAMPLE_ROWS - len(BAD_ROWS)
    assert "status    dry_run" in proc.stdout


def test_bad_config_fails_fast_with_exit_code_2():
    proc = subprocess.run([sys.executable, "jobs/label.py", "conf=prod"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "input.path" in proc.stdout and "Started a local Ray" not in proc.stderr
