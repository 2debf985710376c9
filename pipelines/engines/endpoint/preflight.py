"""The endpoint kind's preflight: the server answers, takes the key, serves the model and takes one
request with this run's generation settings; a refusal stops the run at start, naming the keys."""

from __future__ import annotations

from pipelines.cluster import start_ray
from pipelines.config import redact
from pipelines.engines.config import api_key
from pipelines.engines.endpoint.stage import EndpointUnavailable, probe, refused_settings
from pipelines.checklist import Checklist


def check_endpoint(section, ray_config, checks: Checklist, prefix: str = "", sends_tools: bool = False) -> None:
    """engine.kind=endpoint: the server answers, takes the key, and serves the model; then Ray
    (the client actors' cluster). section: the config part with `engine` (`judge` with prefix `judge.`)."""
    endpoint = section.engine.endpoint
    key = f"{prefix}engine.endpoint"
    try:
        served = probe(endpoint, api_key(endpoint))
    except PermissionError as e:
        held = (f"the key in ${endpoint.api_key_env} ({key}.api_key_env)" if endpoint.api_key_env
                else f"no key ({key}.api_key_env is unset)")
        checks.fail("endpoint", f"{redact(endpoint.base_url)} refused {held}: {e}; set the right key there")
        return
    except EndpointUnavailable as e:
        checks.fail("endpoint", f"{key}.base_url {redact(endpoint.base_url)} does not answer ({e}); start the server or fix the URL")
        return
    if endpoint.model not in served:
        checks.fail("endpoint", f"{key}.model={endpoint.model!r} is not served at {redact(endpoint.base_url)} (it serves: "
                                f"{', '.join(map(str, served)) or 'nothing'}); set {key}.model to one of those")
        return
    refused = refused_settings(endpoint, api_key(endpoint), section.generation, tools=sends_tools)
    if refused:
        generation = f"{prefix}generation"
        checks.fail("endpoint", f"{redact(endpoint.base_url)} refused a request with this run's settings ({refused}); "
                                f"what shapes it: {generation}.constrained={section.generation.constrained} with "
                                f"{key}.structured_outputs={endpoint.structured_outputs} (json_schema, json_object or "
                                f"none), {generation}.logprobs={section.generation.logprobs}, "
                                f"{generation}.samples={section.generation.samples}"
                                f"{f', {key}.tool_choice={endpoint.tool_choice}' if sends_tools else ''}; set what this "
                                "server takes")
        return
    checks.ok("endpoint", f"{redact(endpoint.base_url)} answers{' and takes the key' if endpoint.api_key_env else ''}; "
                          f"serves {endpoint.model}; takes this run's generation settings")
    checks.ok("ray", start_ray(ray_config, metrics=section.engine.log_metrics))
