"""The preflight provokes, on this machine, every failure it is there to catch: each run stops with
exit code 2 in seconds, before any model loads, naming the number or the path and what to change."""

import os
import subprocess
import time

import pytest

from pipelines.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def preflight(args: list[str], capsys) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(["conf=local", "preflight=true", *args])
    return code, capsys.readouterr().out, time.monotonic() - started


def test_a_healthy_setup_passes_on_the_mini_cluster(common_args, capsys):
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight", *common_args],
                             capsys)
    assert code == 0, out
    assert "[  ok] engine node:" in out and "vllm 0.29.0" in out and "preflight passed" in out


def test_a_missing_bucket(common_args, capsys):
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://no-such-bucket/labels",
                              *common_args], capsys)
    assert code == 2
    assert "[FAIL] output: cannot write under output.path 's3://no-such-bucket/labels'" in out
    assert "create the bucket" in out


def test_a_model_folder_without_config_json(common_args, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tokenizer.json").write_text("{}")
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight",
                              *common_args, f"model.source={tmp_path / 'model'}"], capsys)
    assert code == 2
    assert f"[FAIL] model: model.source '{tmp_path / 'model'}'" in out and "has no config.json" in out
    assert "engine node" not in out  # nothing started for a model that cannot load


def test_gpus_asked_of_a_cpu_only_cluster(common_args, capsys):
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight",
                                    *common_args, "engine.device=gpu", "engine.replicas=4"], capsys)
    assert code == 2
    assert ("[FAIL] cluster: engine.replicas x engine.tensor_parallel_size = 4 x 1 = 4 GPU(s) needed, "
            "0 present") in out


def test_a_max_model_len_over_the_models_context(common_args, capsys):
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight",
                              *common_args, "generation.max_model_len=100000"], capsys)
    assert code == 2
    assert ("[FAIL] model: generation.max_model_len=100000 is over the model's context of 8192 tokens (config.json); "
            "set generation.max_model_len=8192 or less") in out


def test_an_output_folder_without_write_permission(tmp_path, tiny_model, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    # root writes through permission bits: lock the folder with the immutable attribute instead.
    lock, unlock = ((["chattr", "+i", str(locked)], ["chattr", "-i", str(locked)]) if os.geteuid() == 0
                    else (["chmod", "555", str(locked)], ["chmod", "755", str(locked)]))
    subprocess.run(lock, check=True)
    try:
        code, out, _ = preflight(["dry_run=true", f"input.path={REPO / 'data' / 'sample'}",
                                  f"output.path={locked / 'labels'}"], capsys)
    finally:
        subprocess.run(unlock, check=True)
    assert code == 2
    assert f"[FAIL] output: cannot write under output.path '{locked / 'labels'}' (PermissionError" in out
