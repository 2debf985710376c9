"""pipelines.api: the job and its row-level pieces from Python, as a notebook uses them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from pipelines import api
from pipelines.config import ConfigError
from pipelines.core.tools import BadInput
from tests.conftest import REPO

WEATHER = [{"name": "get_weather", "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                            "unit": {"type": "string", "enum": ["c", "f"]}},
                           "required": ["city"]}}]


def test_a_rows_prompt_is_the_hammer_message():
    messages = api.prompt("Weather in Paris?", WEATHER)
    assert [m["role"] for m in messages] == ["user"]
    assert '"name": "get_weather"' in messages[0]["content"]
    assert messages[0]["content"].endswith("[BEGIN OF QUERY]\nWeather in Paris?\n[END OF QUERY]\n\n")
    with pytest.raises(BadInput) as bad:
        api.prompt("q", "[]")
    assert bad.value.reason.code == "tools_empty"


def test_an_output_is_judged_and_scored_as_the_job_does():
    ok = api.judge_output('[{"name": "get_weather", "arguments": {"city": "Paris"}}]', WEATHER, "Weather in Paris?")
    assert ok == {"status": "ok", "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}], "errors": [],
                  "flags": [], "call_type": "single"}
    bad = api.judge_output('[{"name": "get_weather", "arguments": {"city": "Paris", "unit": "k"}}]', WEATHER)
    assert bad["status"] == "invalid_call" and bad["errors"][0].startswith("enum_mismatch: get_weather.unit")
    assert api.judge_output("not json", WEATHER)["status"] == "parse_error"
    gold = [{"name": "get_weather", "arguments": {"city": "paris"}}]
    assert api.score(ok["calls"], gold, WEATHER)["correct"] is True  # BFCL's string normalization
    wrong = api.score([{"name": "get_weather", "arguments": {"city": "Rome"}}], json.dumps(gold), WEATHER)
    assert wrong["correct"] is False and wrong["mismatch"].startswith("wrong_value")


def test_settings_are_the_command_lines_keys():
    config = api.config({"input.path": "in", "output.path": "out", "generation.max_tokens": 64, "dry_run": True,
                         "prompt.resources": {"prompt_node": 0.1}})
    assert config.generation.max_tokens == 64 and config.dry_run is True
    assert config.prompt.resources == {"prompt_node": 0.1}
    with pytest.raises(ConfigError, match="generation.max_tokenz"):
        api.config({"input.path": "in", "output.path": "out", "generation.max_tokenz": 1})


NOTEBOOK = textwrap.dedent("""
    import json, sys
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False)  # the notebook's own session (not another Ray here)
    from pipelines import api

    data, out, model = sys.argv[1:4]
    common = {"model.source": model, "generation.constrained": False, "dry_run": True}
    summary = api.label({"input.path": data, "output.path": out, **common})
    after_label = ray.is_initialized()
    tools = json.dumps([{"name": "f", "description": "d", "parameters": {"type": "object",
                         "properties": {"a": {"type": "string"}}, "required": ["a"]}}])
    ds = ray.data.from_items([{"id": "a", "query": "call f", "tools": tools, "keep": 1},
                              {"id": "b", "query": "call f", "tools": "not json", "keep": 2},
                              {"id": "c", "query": "[{\\"role\\": \\"user\\", \\"content\\": \\"\\\\ud800\\"}]",
                               "tools": tools, "keep": 3}])
    rows = api.label_dataset(ds, common).take_all()
    print("RESULT " + json.dumps({
        "rows": summary["rows"], "status": summary["status"], "after_label": after_label,
        "after_dataset": ray.is_initialized(),
        "labeled": sorted((r["id"], r["status"], (r["errors"] or [""])[0].split(":")[0], r["keep"]) for r in rows),
        "columns": sorted(rows[0])}))
""")


@pytest.mark.integration
def test_from_a_script_outside_the_repository_on_the_callers_ray_session(tmp_path, tiny_model):
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "sample", data)
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    proc = subprocess.run([sys.executable, str(script), str(data), str(tmp_path / "out"), tiny_model], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["rows"] == 65 and result["status"]["dry_run"] == 58 and result["status"]["bad_input"] == 7
    assert result["after_label"] and result["after_dataset"]  # the caller's session was never stopped
    assert result["labeled"] == [["a", "dry_run", "", 1], ["b", "bad_input", "tools_not_json", 2],
                                 ["c", "bad_input", "invalid_unicode", 3]]
    assert {"status", "calls", "errors", "prompt", "num_prompt_tokens", "config_hash"} <= set(result["columns"])
    assert "_shard" not in result["columns"] and "_row" not in result["columns"]
    assert (tmp_path / "out" / "_summary.json").exists()
