"""An engine's step figures (pipelines/engines/vllm/stats.py) and what bench/gpu.py reads in them."""

from bench.gpu import settings_check
from pipelines.engines.vllm.stats import EngineSteps


def test_step_figures_by_hand():
    steps = EngineSteps(max_num_seqs=4)
    # (time, kv usage, running, waiting, preempted): steps 0.1 s apart, then a 3 s gap (idle), then two more
    for at, kv, running, waiting, preempted in [(0.0, 0.2, 4, 3, 0), (0.1, 0.5, 4, 1, 1), (0.2, 0.9, 4, 0, 2),
                                                (0.3, 0.4, 2, 0, 0), (3.3, 0.1, 1, 0, 0), (3.4, 0.0, 1, 0, 0)]:
        steps.add(at, kv_usage=kv, running=running, waiting=waiting, preempted=preempted)
    figures = steps.to_dict()
    assert figures["steps"] == 6 and figures["preemptions"] == 3
    assert figures["kv_cache_usage_max"] == 0.9 and figures["kv_cache_usage_mean"] == round(2.1 / 6, 4)
    assert figures["running_max"] == 4 and figures["running_mean"] == round(16 / 6, 2)
    assert figures["starved_step_share"] == round(3 / 6, 4)  # the last three: fewer than 4 running, none waiting
    # median gap 0.1 s: the idle threshold is max(0.5, 10 x 0.1) = 1 s, and only the 3 s gap passes it
    assert figures["idle_gap_s"] == 1.0 and figures["idle_s"] == 3.0 and figures["active_s"] == 3.4


def engine(**changes):
    figures = {"steps": 1000, "max_num_seqs": 512, "kv_cache_usage_max": 0.8, "kv_cache_usage_mean": 0.6,
               "preemptions": 0, "running_max": 512, "running_mean": 480.0, "starved_step_share": 0.05,
               "active_s": 100.0, "idle_s": 1.0, "idle_gap_s": 0.5}
    return {**figures, **changes}


def test_settings_that_fit_say_so():
    (line,) = settings_check(engine())
    assert line.startswith("settings fit:")


def test_preemptions_name_the_kv_cache():
    (line,) = settings_check(engine(preemptions=7, kv_cache_usage_max=1.0))
    assert line.startswith("KV cache too small for the batch: 7 preemptions") and "lower engine.max_num_seqs" in line


def test_a_batch_at_max_num_seqs_with_kv_to_spare_asks_for_more_seqs():
    (line,) = settings_check(engine(kv_cache_usage_max=0.25))
    assert "raise engine.max_num_seqs (toward 2048)" in line
    assert settings_check(engine(kv_cache_usage_max=0.25, running_max=300))[0].startswith("settings fit:")


def test_a_starved_or_idle_engine_asks_for_more_rows_in_flight():
    starved, idle = settings_check(engine(starved_step_share=0.6, running_mean=90.0, idle_s=30.0))
    assert starved.startswith("short of rows: 60% of steps") and "raise engine.max_concurrent_batches" in starved
    assert idle == "idle 30 s of 100 s between its first and last step"
