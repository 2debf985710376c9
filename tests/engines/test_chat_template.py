"""prompt.format=chat_template: a row's tools handed to the model's own chat template, through the
in-process engine and through an endpoint, against plain vLLM's `LLM.chat(..., tools=...)`; a
template that ignores tools refused before any row. The tiny model is given a Hermes-style tools
template (tests/data/hermes_tools_template.jinja); its output is noise, read by the hermes parser."""

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration
MAX_TOKENS = 24
ROWS = 4
KEY, KEY_ENV = "tools-test-key", "HAMMER_TEST_TOOLS_KEY"


def openai_form(tools_cell) -> bool:
    """Tools given exactly as OpenAI's function objects: their OpenAI form is written here by hand."""
    try:
        tools = json.loads(tools_cell)
    except (TypeError, ValueError):
        return False
    return isinstance(tools, list) and bool(tools) and all(
        isinstance(t, dict) and list(t) == ["name", "description", "parameters"]
        and isinstance(t["parameters"], dict) and list(t["parameters"]) == ["type", "properties", "required"]
        for t in tools)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    sample = pq.read_table(REPO / "data" / "sample").to_pylist()
    picked = [r for r in sample if isinstance(r["query"], str) and r["query"].strip() and openai_form(r["tools"])
              and not r["query"].lstrip().startswith("[")][:ROWS]
    assert len(picked) == ROWS
    for i, row in enumerate(picked):
        row["id"] = f"row-{i}"
    folder = tmp_path_factory.mktemp("tools-rows")
    pq.write_table(pa.Table.from_pylist(picked), folder / "part-0.parquet")
    return folder, picked


@pytest.fixture(scope="module")
def tools_model(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tools-model") / "tiny-qwen2-tools"
    shutil.copytree(tiny_model, folder)
    (folder / "chat_template.jinja").write_text((REPO / "tests" / "data" / "hermes_tools_template.jinja").read_text())
    return str(folder)


def job_args(rows_folder, out, cluster, model, *extra):
    return ["conf=local", f"input.path={rows_folder}", f"output.path={out}", f"ray.address={cluster[0].address}",
            "progress_interval_s=600", f"model.source={model}", "prompt.format=chat_template",
            "validation.parser=hermes", "generation.constrained=false", f"generation.max_tokens={MAX_TOKENS}",
            "engine.max_num_seqs=1",
            # where the shared cluster's other tests expect each stage's actors (test_integration looks)
            "prompt.resources={prompt_node: 0.1}", "engine.resources={engine_node: 0.1}", *extra]


def label(args, out):
    from pipelines.cli import main

    assert main(args) == 0
    return {r["id"]: r for r in pq.read_table(out).to_pylist()}


@pytest.fixture(scope="module")
def labeled(rows, cluster, tools_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("tools-labels") / "out"
    args = job_args(rows[0], out, cluster, tools_model)
    return args, label(args, out)


def reference_tools(row: dict) -> list[dict]:
    return [{"type": "function", "function": tool} for tool in json.loads(row["tools"])]


def test_the_rows_tools_reach_the_engine_through_the_models_template(rows, labeled, tools_model, tmp_path):
    from transformers import AutoTokenizer

    from pipelines.engines.vllm.stage import engine_settings
    from pipelines.label.config import load_config

    args, out = labeled
    tokenizer = AutoTokenizer.from_pretrained(tools_model)
    for row in rows[1]:
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": row["query"]}], tools=reference_tools(row),
                                                 add_generation_prompt=True, tokenize=False)
        assert json.loads(row["tools"])[0]["name"] in rendered  # the reference template does take tools
        assert out[row["id"]]["num_prompt_tokens"] == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    request = {"model": tools_model, "engine_kwargs": engine_settings(load_config(args)).engine_kwargs,
               "max_tokens": MAX_TOKENS,
               "rows": [{"id": r["id"], "messages": [{"role": "user", "content": r["query"]}], "schema": None,
                         "tools": reference_tools(r)} for r in rows[1]]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([sys.executable, str(REPO / "tests" / "reference_chat.py"), str(tmp_path / "request.json"),
                    str(tmp_path / "result.json")], check=True, cwd=REPO)
    reference = json.loads((tmp_path / "result.json").read_text())
    assert len(reference) == ROWS
    assert {i: out[i]["raw_output"] for i in reference} == reference
    # read by the hermes parser: an answer without a <tool_call> block is a plain answer, no call
    plain = [r for r in out.values() if "<tool_call>" not in r["raw_output"]]
    assert plain and all(r["status"] == "no_call" and any(f.startswith("text_answer") for f in r["flags"])
                         for r in plain)


def test_a_template_that_ignores_tools_is_refused_before_any_row(rows, cluster, tiny_model, tmp_path, capsys):
    from pipelines.cli import main

    out = tmp_path / "out"
    assert main(job_args(rows[0], out, cluster, tiny_model)) == 2
    said = capsys.readouterr()
    text = said.out + said.err
    assert "prompt.format=chat_template" in text and "ignores tools" in text
    assert not list(out.glob("*.parquet"))


@pytest.fixture(scope="module")
def tools_server(tools_model, tmp_path_factory):
    from tests.conftest import vllm_server

    with vllm_server(tools_model, "tiny-tools", KEY, tmp_path_factory.mktemp("tools-server") / "serve.log") as served:
        yield served


def test_through_an_endpoint_the_server_renders_the_tools_and_the_labels_are_the_in_process_ones(
        rows, labeled, tools_server, cluster, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    out = tmp_path / "out"
    args = job_args(rows[0], out, cluster, "unused", "engine.kind=endpoint",
                    f"engine.endpoint.base_url={tools_server.base_url}", "engine.endpoint.model=tiny-tools",
                    f"engine.endpoint.api_key_env={KEY_ENV}", "engine.endpoint.tool_choice=none")
    through_server = label(args, out)
    _, in_process = labeled
    assert {i: r["raw_output"] for i, r in through_server.items()} == {i: r["raw_output"] for i, r in in_process.items()}
    # the prompt's tokens as the server counted them: the tools are in it
    assert {i: r["num_prompt_tokens"] for i, r in through_server.items()} == {
        i: r["num_prompt_tokens"] for i, r in in_process.items()}


def test_tool_choice_auto_reaches_the_server(rows, tools_server, cluster, tmp_path, monkeypatch, capsys):
    """The server was started without a tool-call parser, so it rejects tool_choice=auto, where
    tool_choice=none (above) labeled every row: the preflight's request with the run's settings
    (a probe tool and the tool_choice) meets the server's refusal, and the run stops at start, exit 2,
    naming the key, before any row (it used to label every row engine_error and exit 0)."""
    from pipelines.cli import main

    monkeypatch.setenv(KEY_ENV, KEY)
    out = tmp_path / "out"
    args = job_args(rows[0], out, cluster, "unused", "engine.kind=endpoint", "validation.parser=json",
                    f"engine.endpoint.base_url={tools_server.base_url}", "engine.endpoint.model=tiny-tools",
                    f"engine.endpoint.api_key_env={KEY_ENV}", "engine.endpoint.tool_choice=auto")
    assert main(args) == 2
    printed = capsys.readouterr().out
    refusal = next(line for line in printed.splitlines() if "[FAIL] endpoint:" in line)
    assert f"{tools_server.base_url} refused a request with this run's settings (HTTP 400" in refusal
    assert "engine.endpoint.tool_choice=auto" in refusal
    assert not list(out.glob("*.parquet"))
