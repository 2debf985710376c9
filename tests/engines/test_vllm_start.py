"""engine.start_timeout_s lands in the Ray Data context the engine stage's dataset runs with."""

import pytest

pytestmark = pytest.mark.integration


def test_the_engines_start_is_waited_for_as_long_as_engine_start_timeout_s(cluster, tiny_model):
    import ray

    from pipelines.engines import kind_of
    from pipelines.label.config import load_config

    ours = not ray.is_initialized()
    if ours:
        ray.init(address=cluster[0].address)
    try:
        config = load_config(["conf=local", "input.path=x", "output.path=y", f"model.source={tiny_model}",
                              "engine.start_timeout_s=5400"])
        ds = kind_of(config.engine).generate(ray.data.range(1), config, tiny_model, keep=["id"])  # a plan: nothing runs
        assert ds.context.wait_for_min_actors_s == 5400
        assert ds.context.execution_no_progress_timeout_s == 5400
    finally:
        if ours:  # the in-process jobs of the tests after start or join Ray themselves
            ray.shutdown()
