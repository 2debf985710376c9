"""GPU sizing from a model's config.json; expectations worked out by hand from the formulas in docs/gpu.md."""

import json

import pytest

from pipelines.core.sizing import ModelShape, SizingError, kv_budget
from pipelines.engines.vllm.preflight import context_length, driver_problem
from tests.conftest import REPO

CONFIGS = REPO / "tests" / "data" / "model_configs"
H100_BYTES = 81559 * 1024**2


def shape(name: str) -> ModelShape:
    return ModelShape.from_hf_config(json.loads((CONFIGS / f"{name}.json").read_text()))


@pytest.mark.parametrize("name, published", [("Qwen2-7B-Instruct", 7.61e9), ("Qwen2.5-7B-Instruct", 7.61e9),
                                             ("Qwen2.5-3B", 3.09e9), ("Qwen2.5-1.5B", 1.54e9)])
def test_parameter_count_matches_the_published_one(name, published):
    assert abs(shape(name).parameters() - published) < 0.01e9  # published to two decimals, in billions


def test_kv_bytes_per_token_of_a_7b_qwen2():
    qwen = shape("Qwen2-7B-Instruct")
    assert qwen.kv_bytes_per_token() == 2 * 28 * 4 * 128 * 2 == 57_344
    assert qwen.kv_bytes_per_token(tensor_parallel_size=2) == 2 * 28 * 2 * 128 * 2
    assert qwen.kv_bytes_per_token(tensor_parallel_size=8) == 2 * 28 * 1 * 128 * 2  # 4 KV heads, replicated


def test_kv_budget_of_a_7b_on_an_h100_by_hand():
    budget = kv_budget(shape("Qwen2-7B-Instruct"), H100_BYTES, 0.9)
    # weights 7,615,616,512 params x 2 bytes; activations 2,048 x (2 x 18,944 + 4 x 3,584) x 2
    # + 128 x 152,064 x 4 + 1 GiB; KV = int(85,520,809,984 x 0.9) - both = 60,371,987,865 bytes,
    # 65,800 whole blocks of 16 tokens x 57,344 bytes.
    assert budget.weights == 15_231_233_024
    assert budget.activations == 213_909_504 + 77_856_768 + 1_073_741_824
    assert budget.kv_bytes == 60_371_987_865
    assert budget.kv_tokens == 65_800 * 16 == 1_052_800
    assert budget.rows_at_once(1000, 64) == 1_052_800 // 1072 == 982  # 1,064 tokens -> 67 blocks


def test_no_room_left_is_zero_not_negative():
    budget = kv_budget(shape("Qwen2-7B-Instruct"), 16 * 1024**3, 0.9)
    assert budget.kv_tokens == 0 and budget.rows_at_once(1000, 64) == 0


def test_a_config_without_a_needed_field_is_named():
    config = json.loads((CONFIGS / "Qwen2.5-3B.json").read_text())
    del config["num_hidden_layers"]
    with pytest.raises(SizingError, match="num_hidden_layers"):
        ModelShape.from_hf_config(config)


def test_context_length_with_and_without_rope_scaling():
    assert context_length({"max_position_embeddings": 32768}) == 32768
    assert context_length({"max_position_embeddings": 32768, "rope_scaling": {"type": "yarn", "factor": 4.0}}) == 131072
    assert context_length({}) is None


@pytest.mark.parametrize("torch_cuda, driver, too_old", [
    ("13.0", "575.57.08", True), ("13.0", "580.65.06", False), ("13.0", "590.44.01", False),
    ("12.8", "525.60.13", False), ("12.8", "470.256.02", True), (None, "575.57.08", False)])
def test_driver_against_the_wheels_cuda(torch_cuda, driver, too_old):
    problem = driver_problem(torch_cuda, driver)
    assert (problem is not None) == too_old
    if too_old:
        assert driver in problem and "older than CUDA" in problem


def test_the_preflights_prompt_sample_reads_the_first_rows_not_the_shard(tmp_path):
    import io
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.label.preflight import PROMPT_SAMPLE_ROWS, first_rows

    rows = 20 * PROMPT_SAMPLE_ROWS
    table = pa.table({"id": [str(i) for i in range(rows)], "query": [f"q{i}" for i in range(rows)],
                      "tools": ["[]"] * rows, "blob": [os.urandom(2000) for _ in range(rows)]})  # wide, and not needed
    pq.write_table(table, tmp_path / "shard.parquet", row_group_size=PROMPT_SAMPLE_ROWS, compression="none")

    class Counting(io.FileIO):
        read_bytes = 0

        def read(self, size=-1):
            data = super().read(size)
            Counting.read_bytes += len(data)
            return data

        def readinto(self, buffer):
            n = super().readinto(buffer)
            Counting.read_bytes += n or 0
            return n

    with Counting(tmp_path / "shard.parquet", "rb") as f:
        sample = first_rows(pq.ParquetFile(f), PROMPT_SAMPLE_ROWS, ["query", "tools", "id"])
    assert sample.num_rows == PROMPT_SAMPLE_ROWS and sample.column("query").to_pylist()[-1] == f"q{PROMPT_SAMPLE_ROWS - 1}"
    assert sample.column_names == ["query", "tools", "id"]
    size = (tmp_path / "shard.parquet").stat().st_size
    assert Counting.read_bytes < size / 20, (Counting.read_bytes, size)


def test_rows_in_flight_weigh_stragglers_against_the_mean_label():
    from pipelines.core.sizing import rows_in_flight

    assert rows_in_flight(512, 1, 64, 512) == 4096  # one 512-token row holds a batch 8 labels long
    assert rows_in_flight(1024, 8, 64, 512) == 1024  # a row of 8 samples is 8 sequences
    assert rows_in_flight(512, 1, 64, 32) == 512  # no straggler longer than the mean: max_num_seqs rows


@pytest.mark.parametrize("batches, warned", [(8, True), (32, False)])
def test_the_preflight_warns_when_stragglers_would_starve_the_engine(batches, warned, capsys):
    from pipelines.label.config import load_config
    from pipelines.checklist import Checklist
    from pipelines.run.preflight import check_batching

    config = load_config(["conf=prod", "input.path=s3://b/in", "output.path=s3://b/out",
                          f"engine.max_concurrent_batches={batches}"])
    checks = Checklist()
    check_batching(config, checks, engine=True)
    marks = [mark for mark, what, _ in checks.lines if what == "batching"]
    assert (marks == ["WARN"]) is warned
    if warned:
        assert "1024 rows in flight, below 4096 = engine.max_num_seqs 512 / samples 1 x generation.max_tokens 512" \
            in capsys.readouterr().out


def test_an_old_driver_is_named_even_when_torch_sees_no_gpu():
    from pipelines.engines.vllm.preflight import gpu_node_verdict

    found = {"node": "gpu-1", "torch": "2.13.0", "torch_cuda": "13.0", "cuda_available": False, "driver": "550.54.15"}
    problem, line = gpu_node_verdict(found)
    assert problem and "CUDA is not usable on gpu-1" in line and "the driver 550.54.15 is older than CUDA 13's" in line
    problem, line = gpu_node_verdict({**found, "driver": "580.65.06"})  # a recent driver: something else hides the GPU
    assert problem and "CUDA is not visible on gpu-1" in line and "device plugin" in line
    problem, line = gpu_node_verdict({**found, "driver": "580.65.06", "cuda_available": True, "gpu_name": "NVIDIA H200",
                                      "vllm": "0.29.0"})
    assert not problem and "NVIDIA H200" in line
