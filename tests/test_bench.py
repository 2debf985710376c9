"""The GPU benchmark runs as a user runs it, here on vLLM's CPU build with the tiny model."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_gpu_benchmark_compares_the_job_with_bare_vllm_on_the_cpu_path(tiny_model, tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--conf", "local", "--model", tiny_model, "--rows", "6,12",
                           "--max-tokens", "4", "--repeats", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["rows"] == [6, 12] and report["conf"] == "local" and report["model"] == tiny_model
    assert set(report["results"]) == {"job", "vllm"}
    for result in report["results"].values():
        # At 6 and 12 rows the marginal rates are noise (their sign too): present, not judged here.
        for figure in ("rows_per_s", "prompt_tokens_per_s", "output_tokens_per_s"):
            assert isinstance(result[figure]["median"], float)
        assert result["wall_s_6"]["median"] > 0 and result["workers_peak_mib_12"]["median"] > 0
        assert result["gpus"] == 0  # no NVIDIA GPU here: no utilization figures, and no made-up ones
    # Both contenders ran with the job's own engine settings.
    assert report["engine_kwargs"]["gpu_memory_utilization"] == 0.2 and report["engine_kwargs"]["max_model_len"] == 4096
    assert "ratio_to_bare_vllm" in report
    # the job's one engine at 12 rows, step by step, and what that says of the settings
    (engine,) = report["results"]["job"]["engines_12"][-1]
    assert engine["steps"] >= 4 and engine["running_max"] >= 1 and engine["max_num_seqs"] >= engine["running_max"]
    assert set(report["settings_check"]) == {"job"}  # bare vLLM's LLM class records no steps
    (lines,) = report["settings_check"]["job"]
    assert lines and all(isinstance(line, str) for line in lines)
