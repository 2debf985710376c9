"""The endpoint kind: an OpenAI-compatible chat-completions server (stage.py: the client actors and
their retries; preflight.py: the server checked at start). This module stays light: the driver
imports it to find the kind."""

from __future__ import annotations


class EndpointKind:
    """engine.kind=endpoint: a server holds the model; the job sends chat messages and loads nothing."""

    name = "endpoint"
    takes_messages = True

    def parses_calls(self, engine) -> bool:
        # tool_choice=auto: the server parses the calls (a hosted API's way), written as a JSON list
        return engine.endpoint.tool_choice == "auto"

    def check_settings(self, engine, generation, prefix: str = "") -> None:
        from pipelines.engines.config import check_endpoint_settings

        check_endpoint_settings(engine.endpoint, generation, prefix)

    def model_name(self, section, key: str) -> str:
        return section.engine.endpoint.model  # the served name: model.source is not loaded

    def check_pool(self, section, ray_config, model: str, checks, prefix: str = "", sends_tools: bool = False):
        from pipelines.engines.endpoint.preflight import check_endpoint

        check_endpoint(section, ray_config, checks, prefix, sends_tools)
        return None, None

    def check_model(self, section, model: str, checks, prefix: str = "") -> None:
        return  # nothing loads here: the server tokenizes

    def check_batching(self, section, checks, prefix: str = "") -> None:
        return  # the server schedules its own batches

    def tools_template_problem(self, section, model: str) -> tuple[str, str | None]:
        from pipelines.config import redact
        from pipelines.engines.endpoint.stage import served_template_problem

        endpoint = section.engine.endpoint
        return (f"the server at {redact(endpoint.base_url)} ({endpoint.model})", served_template_problem(endpoint))

    def generate(self, ds, section, model: str, keep: list[str], seed: int = 0):
        from pipelines.engines.endpoint.stage import generate

        return generate(ds, section, model, keep, seed)


KIND = EndpointKind()
