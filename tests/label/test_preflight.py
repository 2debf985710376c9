"""The preflight provokes, on this machine, every failure it is there to catch: each run stops with
exit code 2 in seconds, before any model loads, naming the number or the path and what to change."""

import json
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


def test_a_healthy_setup_passes_on_the_mini_cluster(common_args, cluster, capsys):
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight", *common_args],
                             capsys)
    assert code == 0, out
    assert "[  ok] engine node:" in out and "vllm 0.29.0" in out and "preflight passed" in out
    # each node that offers engine.resources checked (an earlier run on this cluster may have probed it)
    assert out.count(f"(CPU engine; {alive_engine_nodes(cluster)} engine node(s) probed") == alive_engine_nodes(cluster)


def alive_engine_nodes(cluster) -> int:
    """The engine nodes the shared cluster still has (a fault test removes one)."""
    return len([node for node in cluster[1] if node in cluster[0].worker_nodes])


def test_each_engine_node_is_probed_once_per_cluster(common_args, cluster, capsys):
    from ray._raylet import GcsClient

    from pipelines.engines.vllm.preflight import PROBE_NAMESPACE, _probe_key

    args = ["input.path=s3://shards/sample", "output.path=s3://labels/preflight", *common_args]
    assert preflight(args, capsys)[0] == 0  # probes the nodes no earlier run on this cluster probed
    # kept in the cluster's own store, one record per engine node (the tiny model is a Qwen2)
    gcs = GcsClient(address=cluster[0].address)
    kept = [gcs.internal_kv_get(_probe_key(node.node_id, "cpu", ["Qwen2ForCausalLM"]), PROBE_NAMESPACE)
            for node in cluster[1] if node in cluster[0].worker_nodes]
    assert kept and all(kept) and {json.loads(k)["vllm"] for k in kept} == {"0.29.0"}
    code, out, _ = preflight(args, capsys)
    n = alive_engine_nodes(cluster)
    assert code == 0 and out.count(f"(CPU engine; {n} engine node(s) probed, {n} of them by an earlier run on this cluster)") == n


def test_a_missing_bucket(common_args, capsys):
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://no-such-bucket/labels",
                              *common_args], capsys)
    assert code == 2
    assert "[FAIL] output: cannot write under output.path 's3://no-such-bucket/labels'" in out
    assert "create the bucket" in out


def test_constrained_decoding_with_a_parser_of_another_format(common_args, capsys):
    """The grammar makes a JSON list of calls: validation.parser=hermes would read every label as no call."""
    code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight", *common_args,
                              "generation.constrained=true", "validation.parser=hermes"], capsys)
    assert code == 2
    assert "[FAIL] generation: generation.constrained=true" in out and "validation.parser=hermes" in out


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


def test_tensor_parallel_shards_must_share_a_node(common_args, cluster, capsys):
    from pipelines.engines.vllm.preflight import replicas_that_fit

    assert replicas_that_fit([1, 1, 1, 1], 2) == 0 and replicas_that_fit([2, 2, 1], 2) == 2
    assert replicas_that_fit([8], 4) == 2 and replicas_that_fit([8, 3], 4) == 2
    # Two nodes of one (logical) GPU each: 2 GPUs in all, enough by count, none holds a TP=2 replica.
    gpu_nodes = [cluster[0].add_node(num_cpus=0, num_gpus=1) for _ in range(2)]
    cluster[0].wait_for_nodes()
    try:
        code, out, _ = preflight(["input.path=s3://shards/sample", "output.path=s3://labels/preflight", *common_args,
                                  "engine.device=gpu", "engine.tensor_parallel_size=2"], capsys)
    finally:
        for node in gpu_nodes:
            cluster[0].remove_node(node)
    assert code == 2
    assert ("[FAIL] cluster: engine.tensor_parallel_size=2 needs 2 GPUs on one node for each of engine.replicas=1; "
            "the GPU nodes hold 1, 1 (at most 1 on one), room for 0 replica(s)") in out
