"""The ray.data.llm internals that pipelines/engines/vllm/udf.py builds on are where it expects them.

The subclass replaces one method of ray.data.llm 2.60's engine wrapper and swaps the UDF of its
engine stage. These checks fail, naming the piece, if an upgrade of Ray moves any of it; the
integration tests check the behaviour.
"""

import inspect

import pytest

import ray
from ray.llm._internal.batch.stages import vllm_engine_stage as stage


def test_ray_is_the_version_the_subclass_was_written_against():
    assert ray.__version__ == "2.60.0"


def test_the_stage_udf_builds_its_wrapper_as_self_llm_and_calls_generate_async_per_row():
    init = inspect.getsource(stage.vLLMEngineStageUDF.__init__)
    assert "self.llm = vLLMEngineWrapper(" in init
    handler = inspect.getsource(stage.vLLMEngineStageUDF._generate_with_error_handling)
    assert "await self.llm.generate_async(row)" in handler
    assert "except _VLLM_FATAL_ERRORS" in handler  # a dead engine ends the actor: Ray restarts it


def test_the_wrapper_has_the_pieces_generate_row_uses():
    wrapper = stage.vLLMEngineWrapper
    assert list(inspect.signature(wrapper._prepare_llm_request).parameters) == ["self", "row"]
    assert list(inspect.signature(wrapper._generate_async).parameters) == ["self", "request"]
    assert "self.semaphore = asyncio.Semaphore(" in inspect.getsource(wrapper.__init__)
    generate = inspect.getsource(wrapper.generate_async)
    assert "vLLMOutputData.from_vllm_engine_output(output)" in generate
    assert "return request, output_data.model_dump(), time_taken" in generate
    # generate_row returns the two fields the job reads under vLLMOutputData's names, from the same places.
    convert = inspect.getsource(stage.vLLMOutputData.from_vllm_engine_output)
    assert "data.generated_text = output.outputs[0].text" in convert
    assert "data.num_generated_tokens = len(output.outputs[0].token_ids)" in convert
    # The finished request output is returned whole: with FINAL_ONLY it holds all n samples.
    assert "if request_output.finished:" in inspect.getsource(wrapper._generate_async)


def test_every_name_the_engine_stage_reads_or_writes_in_a_row_is_sheltered():
    import re

    from pipelines.engines.vllm.stage import ENGINE_NAMES

    prepare = inspect.getsource(stage.vLLMEngineWrapper._prepare_llm_request)
    read = set(re.findall(r'row\.pop\("(\w+)"', prepare)) | set(re.findall(r'row\["(\w+)"\]', prepare))
    read |= set(re.findall(r'"(\w+)" in row', inspect.getsource(stage.vLLMEngineWrapper._maybe_get_lora_request)))
    optional = inspect.getsource(stage.vLLMEngineStage.get_optional_input_keys)
    documented = set(re.findall(r'ret\["(\w+)"\]', optional)) | set(re.findall(r'^\s*"(\w+)": "', optional, re.M))
    written = set(stage.vLLMOutputData.model_fields)
    assert {"prompt", "model", "tokenized_prompt", "sampling_params"} <= read  # the scans find what they should
    assert {"multimodal_uuids", "pooling_params"} <= documented
    assert read - ENGINE_NAMES - {"__data", "idx_in_batch_column"} == set()
    assert written - ENGINE_NAMES == set()
    assert documented - ENGINE_NAMES == set()


def test_the_processor_keeps_its_stages_by_class_name_with_the_udf_as_fn():
    from ray.llm._internal.batch.processor.base import Processor

    assert "stage_name = type(stage).__name__" in inspect.getsource(Processor._append_stage)
    assert "dataset.map_batches_internal(stage.fn," in inspect.getsource(Processor.__call__)
    assert stage.vLLMEngineStage.model_fields["fn"].default is stage.vLLMEngineStageUDF


@pytest.mark.integration
def test_the_job_swaps_in_its_udf_and_leaves_the_stages_resources_as_ray_data_llm_made_them(cluster):
    # build_processor connects to Ray; on its own it would start a local instance in this process,
    # which the later jobs of the session would then find instead of the test cluster.
    ray.init(address=cluster[0].address, ignore_reinit_error=True)
    from pipelines.label.config import load_config
    from pipelines.engines.vllm.stage import engine_processor
    from pipelines.engines.vllm.udf import SamplingEngineUDF

    config = load_config(["conf=local", "engine.resources={engine_node: 0.1}"])
    engine_stage = engine_processor(config, "/models/m").stages["vLLMEngineStage"]
    assert engine_stage.fn is SamplingEngineUDF
    kwargs = engine_stage.map_batches_kwargs
    # conf=local runs the engine on the CPU: the bundle the job gave it, and no GPU (assigning `fn`
    # instead of copying the stage re-ran its validator, which then asked for one).
    assert "num_gpus" not in kwargs and kwargs["num_cpus"] == 1 and kwargs["resources"] == {"engine_node": 0.1}
