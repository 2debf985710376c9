"""The in-process kind: vLLM engine actors through ray.data.llm (stage.py), their UDF (udf.py, in the
engine actors only), the vLLM plugin of every engine process (plugin.py, stats.py), and the kind's
preflight (preflight.py). This module stays light: the driver imports it to find the kind."""

from __future__ import annotations


class VllmKind:
    """engine.kind=vllm: the model loads in the job's own engine actors, from token ids."""

    name = "vllm"
    takes_messages = False

    def parses_calls(self, engine) -> bool:
        return False

    def check_settings(self, engine, generation, prefix: str = "") -> None:
        from pipelines.engines.config import check_vllm_settings

        check_vllm_settings(engine, generation, prefix)

    def model_name(self, section, key: str) -> str:
        from pipelines.models import resolve_model

        return resolve_model(section.model, key)

    def check_pool(self, section, ray_config, model: str, checks, prefix: str = "", sends_tools: bool = False):
        from pipelines.engines.vllm.preflight import check_engines, check_model

        model_config = check_model(section, model, checks, prefix)
        return model_config, check_engines(section, ray_config, model_config, checks, prefix)

    def check_model(self, section, model: str, checks, prefix: str = "") -> None:
        from pipelines.engines.vllm.preflight import check_model

        check_model(section, model, checks, prefix)

    def check_batching(self, section, checks, prefix: str = "") -> None:
        from pipelines.engines.vllm.preflight import check_batching

        check_batching(section, checks, prefix)

    def tools_template_problem(self, section, model: str) -> tuple[str, str | None]:
        from pipelines.models import load_tokenizer, tools_template_problem

        problem = tools_template_problem(load_tokenizer(model, section.model.trust_remote_code))
        return f"model.source {section.model.source!r}", problem

    def generate(self, ds, section, model: str, keep: list[str], seed: int = 0):
        from pipelines.engines.vllm.stage import generate

        return generate(ds, section, model, keep, seed)


KIND = VllmKind()
