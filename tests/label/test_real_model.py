"""The job on a real, trained model (built:smollm2-135m-instruct): a few rows of the sample, on a
local Ray instance and vLLM on the CPU. Its output depends on every token of the prompt, so these
tests see what the random tiny model cannot: the prompt, chat template, tokenization and sampling
are those of plain vLLM, the model ends its turn on its own, and seeded samples repeat."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.prompts import build_prompt
from pipelines.core.tools import calls_schema, load_tools
from tests.conftest import REPO

pytestmark = pytest.mark.integration
ROWS_PER_CATEGORY = 2  # of single, multiple, parallel, parallel_multiple and irrelevance: 10 rows
MAX_TOKENS = 160  # conf/local.yaml's
SAMPLES = 4
# docs/output.md, "Confidence": the mean |agreement difference| per row between two runs of the same
# rows and seed (samples are seeded; CPU numerics still follow the batch's shape)
AGREEMENT_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def real_model():
    from pipelines.models.built import ensure_built

    return ensure_built("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Good rows of every gold category from the sample, as one shard with ids."""
    sample = pq.read_table(REPO / "data" / "sample").to_pylist()
    picked = []
    for category in ("single", "multiple", "parallel", "parallel_multiple", "irrelevance"):
        picked += [r for r in sample if r["category"] == category][:ROWS_PER_CATEGORY]
    for i, row in enumerate(picked):
        row["id"] = f"{row['category']}-{i}"
    folder = tmp_path_factory.mktemp("real-rows")
    pq.write_table(pa.Table.from_pylist(picked), folder / "part-0.parquet")
    return folder, picked


def job_args(rows_folder, out, cluster, *extra):
    return ["conf=local", f"input.path={rows_folder}", f"output.path={out}", f"ray.address={cluster[0].address}",
            "progress_interval_s=600", *extra]


def label(rows_folder, out, cluster, *extra):
    from pipelines.cli import main

    args = job_args(rows_folder, out, cluster, *extra)
    assert main(args) == 0
    table = pq.read_table(out).to_pylist()
    return json.loads((out / "_summary.json").read_text()), {r["id"]: r for r in table}, out


# One sequence at a time: CPU kernels round differently with the batch's shape, and which rows share
# a step depends on when requests arrive, so a near-tie between two tokens could go either way in two
# runs with more in flight (seen: 1 row of 15, deep inside a repetition loop).
ONE_AT_A_TIME = ("engine.max_num_seqs=1",)


@pytest.fixture(scope="module")
def constrained(rows, cluster, tmp_path_factory):
    """conf=local's run, its engine recording its settings (pipelines/engines/vllm/plugin.py)."""
    from pipelines.engines.vllm.keys import RECORD_DIR_ENV

    root = tmp_path_factory.mktemp("real")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RECORD_DIR_ENV, str(root / "engines"))
        return label(rows[0], root / "constrained", cluster, *ONE_AT_A_TIME)


def test_the_engine_computes_in_conf_locals_float32_on_the_bf16_weights(constrained, real_model):
    _, _, out = constrained
    (record,) = [json.loads(p.read_text()) for p in (out.parent / "engines").glob("engine-*.json")]
    assert json.loads((Path(real_model) / "config.json").read_text())["dtype"] == "bfloat16"
    assert record["model_config.dtype"] == "float32"


@pytest.fixture(scope="module")
def sampled(rows, cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("real-samples")
    return [label(rows[0], root / name, cluster, f"generation.samples={SAMPLES}", "generation.max_tokens=64")
            for name in ("first", "again")]


def test_labels_equal_plain_vllm_chat_token_for_token(rows, constrained, real_model, cluster, tmp_path):
    from pipelines.label.config import load_config
    from pipelines.engines.vllm.stage import engine_settings

    folder, picked = rows
    config = load_config(job_args(folder, tmp_path / "unused", cluster, *ONE_AT_A_TIME))
    assert config.generation.constrained and config.generation.max_tokens == MAX_TOKENS
    # the engine's keywords as the job hands them to vLLM (compact JSON, eager, max_model_len, ...)
    request = {"model": real_model, "engine_kwargs": engine_settings(config).engine_kwargs, "max_tokens": MAX_TOKENS,
               "rows": [{"id": r["id"], "messages": build_prompt("hammer1", r["query"], load_tools(r["tools"])).messages,
                         "schema": calls_schema(load_tools(r["tools"]))} for r in picked]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([sys.executable, str(REPO / "tests" / "reference_chat.py"), str(tmp_path / "request.json"),
                    str(tmp_path / "result.json")], check=True, cwd=REPO)
    reference = json.loads((tmp_path / "result.json").read_text())
    _, labeled, _ = constrained
    different = {i: (labeled[i]["raw_output"], text) for i, text in reference.items() if labeled[i]["raw_output"] != text}
    assert len(reference) == len(picked) and not different, different


def test_constrained_rows_that_end_on_their_own_are_calls_or_no_call(constrained):
    _, labeled, _ = constrained
    ended = [r for r in labeled.values() if r["finish_reason"] == "stop"]
    assert ended and all(r["status"] in ("ok", "no_call") for r in ended), [r for r in ended if r["status"] not in
                                                                               ("ok", "no_call")]
    # real calls, not noise: the model names tools it was offered and some rows match the gold
    assert sum(r["correct"] is True for r in labeled.values()) >= 1


def test_the_model_stops_on_its_end_of_turn_and_the_summary_counts_its_tokens(constrained):
    summary, labeled, _ = constrained
    stopped = [r for r in labeled.values() if r["finish_reason"] == "stop"]
    assert len(stopped) > len(labeled) / 2
    assert all(r["num_output_tokens"] < MAX_TOKENS for r in stopped)
    assert summary["output_tokens"] == sum(r["num_output_tokens"] for r in labeled.values())
    assert summary["truncated"]["rows"] == sum(r["finish_reason"] == "length" for r in labeled.values())


def test_a_rerun_with_samples_gives_the_same_agreement_within_the_stated_tolerance(sampled):
    (_, first, _), (_, again, _) = sampled
    assert first.keys() == again.keys()
    assert all(len(r["sample_outputs"]) == SAMPLES - 1 for r in first.values() if r["sample_outputs"] is not None)
    gaps = [abs(first[i]["agreement"] - again[i]["agreement"]) for i in first
            if first[i]["agreement"] is not None and again[i]["agreement"] is not None]
    assert len(gaps) == len(first)  # every row of the sample's gold categories got a label and samples
    assert sum(gaps) / len(gaps) <= AGREEMENT_TOLERANCE, gaps


def test_the_report_of_a_real_run_with_samples_opens_drawn_and_says_what_the_summary_says(sampled):
    """The sample's gold rows labeled by SmolLM2 with samples: the report the run wrote, in Chromium."""
    from tests.report.browser import open_page

    summary, _, out = sampled[0]
    seen = open_page(out / "_report.html")
    assert seen.errors == []
    # the statuses' plot, the rows over the run, accuracy per agreement, and coverage against accuracy
    assert len(seen.images) >= 4 and all(complete and w > 0 and h > 0 for complete, w, h in seen.images)
    for status, rows in summary["status"].items():
        if rows:
            assert f"{status}\t{rows}\t" in seen.text
    assert f"rows\t{summary['rows']}" in seen.text and "The least confident ok rows" in seen.text
    (out / "report.png").write_bytes(seen.screenshot)


# ---------------------------------------------------------------- labeling through an endpoint

KEY_ENV = "HAMMER_TEST_ENDPOINT_KEY"
KEY = "endpoint-key-7c1e"  # the server's key: never in any output or log of the job


@pytest.fixture(scope="module")
def served(real_model, tmp_path_factory):
    from tests.conftest import vllm_server

    with vllm_server(real_model, "smollm2", KEY, tmp_path_factory.mktemp("server") / "serve.log") as served:
        yield served


@pytest.fixture
def server(served):
    """The module's server, up: a test that killed it and failed before its restart leaves the next one a server."""
    if not served.running():
        served.start()
    return served


# The row request the gate holds while the test kills the server: two rows answered before it
HELD_ROW_REQUEST = 3


@pytest.fixture
def gate(server):
    from tests.conftest import EndpointGate

    with EndpointGate(server.base_url, hold_at=HELD_ROW_REQUEST) as gate:
        yield gate


def endpoint_args(server, *extra):
    """The job's keys for labeling through `server` (a VllmServer or the EndpointGate before one)."""
    return [*ONE_AT_A_TIME, "engine.kind=endpoint", f"engine.endpoint.base_url={server.base_url}",
            "engine.endpoint.model=smollm2", f"engine.endpoint.api_key_env={KEY_ENV}", *extra]


def run_job(args, env_key=KEY) -> subprocess.CompletedProcess:
    """The labeling job as a scheduler starts it: a process of its own (the server can be killed meanwhile)."""
    import os

    return subprocess.Popen([sys.executable, "jobs/label.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, KEY_ENV: env_key})


def pieces(out) -> int:
    return len(list(out.glob("*.parquet"))) if out.exists() else 0


def test_a_wrong_key_stops_the_run_before_any_row_and_names_its_variable_not_its_value(rows, server, cluster, tmp_path):
    out = tmp_path / "wrong-key"
    wrong = "not-the-key-5d2b"
    proc = run_job(job_args(rows[0], out, cluster, *endpoint_args(server)), env_key=wrong)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, stdout
    assert KEY_ENV in stdout and "refused" in stdout
    assert wrong not in stdout and KEY not in stdout
    assert pieces(out) == 0


def test_a_servers_template_that_ignores_tools_is_refused_for_chat_template_before_any_row(rows, server, cluster,
                                                                                            tmp_path):
    """SmolLM2's template writes no tools: vLLM's /tokenize counts as many tokens with a tool as without."""
    out = tmp_path / "no-tools"
    proc = run_job(job_args(rows[0], out, cluster, *endpoint_args(server), "prompt.format=chat_template",
                            "validation.parser=hermes", "generation.constrained=false"))
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, stdout
    assert "prompt.format=chat_template" in stdout and "ignores tools" in stdout and server.base_url in stdout
    assert pieces(out) == 0


def test_labels_through_an_endpoint_equal_the_in_process_engines_across_a_server_killed_and_restarted_mid_run(
        rows, constrained, server, gate, cluster, tmp_path):
    """Greedy, constrained (the server's json_schema response_format), the chat template applied by the
    server: every row as the in-process engine labeled it, the rows in flight when the server died
    retried until it came back."""
    out = tmp_path / "restarted"
    # retries for at least 0.5 x (2 + 4 + 8 + 16 + 30 x 8) = 135 s (jitter halves a wait at most): a restart fits
    proc = run_job(job_args(rows[0], out, cluster, *endpoint_args(gate), "engine.batch_size=1",
                            "engine.max_concurrent_batches=1", "output.rows_per_file=1",
                            "engine.endpoint.max_concurrency=1",
                            "engine.endpoint.max_retries=12", "engine.endpoint.backoff_s=2",
                            "engine.endpoint.backoff_max_s=30"))
    killed_mid_run(server, gate, proc, out)  # the held row and those after it go through the restart
    server.start()
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout
    table = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in table) == sorted(r["id"] for r in rows[1])  # every row once
    _, in_process, _ = constrained
    assert all(r["status"] != "engine_error" for r in table), [r["errors"] for r in table]
    labeled = {r["id"]: r for r in table}
    for field in ("raw_output", "status", "calls", "num_output_tokens", "finish_reason", "num_prompt_tokens"):
        different = {i: (labeled[i][field], in_process[i][field]) for i in labeled if labeled[i][field] != in_process[i][field]}
        assert not different, (field, different)
    assert {r["model"] for r in labeled.values()} == {"smollm2"}
    # the server's token counts reach the summary
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["prompt_tokens"] == sum(r["num_prompt_tokens"] for r in in_process.values()) > 0


def test_a_server_gone_for_good_stops_the_run_and_a_rerun_completes_it_rows_it_rejects_are_engine_errors(
        rows, server, gate, cluster, tmp_path):
    folder = tmp_path / "rows"
    folder.mkdir()
    picked = rows[1][:4]  # rows before the held one, and rows after it
    # a prompt over the server's 4,096 tokens: no tokenizer here to say prompt_too_long, the server rejects it
    long_row = {**picked[0], "id": "over-the-context", "query": "Find the weather. " * 1500}
    pq.write_table(pa.Table.from_pylist([long_row, *picked]), folder / "part-0.parquet")
    out = tmp_path / "gone"
    args = job_args(folder, out, cluster, *endpoint_args(gate), "engine.batch_size=1",
                    "engine.max_concurrent_batches=1", "output.rows_per_file=1",
                    "engine.endpoint.max_concurrency=1", "engine.endpoint.max_retries=1",
                    "engine.endpoint.backoff_s=0.2")
    proc = run_job(args)
    killed_mid_run(server, gate, proc, out)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout
    assert f"the endpoint {gate.base_url} did not answer" in stdout.splitlines()[-1], stdout[-2000:]
    written = pq.read_table(out).num_rows
    assert 0 < written < HELD_ROW_REQUEST  # the rows answered before the held one, some or all
    server.start()
    proc = run_job(args)
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout
    table = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert sorted(table) == sorted([long_row["id"], *(r["id"] for r in picked)])  # every row once
    rejected = table[long_row["id"]]
    assert rejected["status"] == "engine_error" and rejected["errors"][0].startswith("engine_error: HTTP 400 from"), rejected
    assert all(r["status"] != "engine_error" for i, r in table.items() if i != long_row["id"])


def killed_mid_run(server, gate, proc, out) -> None:
    """Kills the server behind the gate while it holds a row's request, once a row is written, and
    lets the held request through to the dead server: rows answered before it, rows after it."""
    from tests.conftest import wait_for

    wait_for(lambda: gate.holding.is_set() and pieces(out) >= 1, proc, timeout=600,
             what=f"its row request {gate.hold_at} held and a row written")
    server.kill()
    gate.released.set()


def test_judging_through_an_endpoint_gives_the_in_process_judges_verdicts(constrained, server, cluster, tmp_path,
                                                                          monkeypatch):
    from pipelines.cli import data_job_main
    from pipelines.judge.config import load_judge_config
    from pipelines.judge.plan import run

    monkeypatch.setenv(KEY_ENV, KEY)
    labeled = constrained[2]
    common = ["conf=local", f"input.path={labeled}", f"ray.address={cluster[0].address}", "progress_interval_s=600",
              "judge.engine.max_num_seqs=1"]
    verdicts = {}
    for name, extra in (("in-process", []), ("endpoint", [
            "judge.engine.kind=endpoint", f"judge.engine.endpoint.base_url={server.base_url}",
            "judge.engine.endpoint.model=smollm2", f"judge.engine.endpoint.api_key_env={KEY_ENV}"])):
        out = tmp_path / name
        assert data_job_main([*common, f"output.path={out}", *extra], load_judge_config, run) == 0
        verdicts[name] = {r["id"]: (r["judge_verdict"], r["judge_output"]) for r in pq.read_table(out).to_pylist()}
    assert verdicts["endpoint"] == verdicts["in-process"]
    assert any(v in ("agree", "disagree") for v, _ in verdicts["endpoint"].values())
