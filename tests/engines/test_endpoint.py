"""The endpoint engine: its requests, how it reads answers, its config checks, and its client against
a local HTTP server (where qps and timeout_s land). Against a real vllm serve: tests/label/test_real_model.py."""

import json

import pytest

from pipelines.config import ConfigError
from pipelines.engines.columns import (CALL_SCHEMA_COL, ENGINE_ERROR_COL, ENGINE_FINISH_COL, ENGINE_LOGPROBS_COL,
                                       ENGINE_PROMPT_TOKENS_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL, MESSAGES_COL,
                                       sample_seed)
from pipelines.engines.endpoint.stage import _error_message, label_columns, message_text, request_bodies
from pipelines.label.config import load_config
from pipelines.run.config import GenerationConfig

MESSAGES = [{"role": "user", "content": "weather in Paris?"}]
SCHEMA = {"type": "array", "items": {"type": "object"}}


def generation(**over):
    values = {"max_tokens": 64, "temperature": 0.0, "max_model_len": 4096, **over}
    return GenerationConfig(**values)


def test_a_rows_requests_carry_its_messages_schema_and_seeded_samples():
    row = {"id": "r1", MESSAGES_COL: json.dumps(MESSAGES), CALL_SCHEMA_COL: json.dumps(SCHEMA)}
    label, samples = request_bodies(row, "m", generation(samples=4, sample_temperature=0.7, logprobs=True), seed=3)
    assert label == {"model": "m", "messages": MESSAGES, "max_tokens": 64, "temperature": 0.0, "logprobs": True,
                     "response_format": {"type": "json_schema",
                                         "json_schema": {"name": "calls", "schema": SCHEMA, "strict": True}}}
    assert samples["n"] == 3 and samples["temperature"] == 0.7 and samples["top_p"] == 1.0
    assert samples["response_format"] == label["response_format"] and "logprobs" not in samples
    assert samples["seed"] == sample_seed(3, "r1") != sample_seed(4, "r1")  # the in-process engine's draw
    plain, none = request_bodies({"id": "r1", MESSAGES_COL: json.dumps(MESSAGES)}, "m", generation(), seed=0)
    assert "response_format" not in plain and "logprobs" not in plain and none is None


def test_an_answer_becomes_the_engines_columns():
    answer = {"choices": [{"index": 0, "finish_reason": "length", "message": {"content": '[{"name": "f"'},
                           "logprobs": {"content": [{"token": "[", "logprob": -0.5}, {"token": '{"name"', "logprob": -1.5},
                                                    {"token": ': "f"', "logprob": -0.25}]}}],
              "usage": {"prompt_tokens": 120, "completion_tokens": 3}}
    out = label_columns(answer)
    assert out[ENGINE_TEXT_COL] == '[{"name": "f"' and out[ENGINE_TOKENS_COL] == 3
    assert out[ENGINE_FINISH_COL] == "length" and out[ENGINE_PROMPT_TOKENS_COL] == 120
    assert out[ENGINE_LOGPROBS_COL]["mean"] == pytest.approx(-0.75) and out[ENGINE_LOGPROBS_COL]["min"] == -1.5
    assert label_columns({"choices": [{"message": {"content": None}}]})[ENGINE_LOGPROBS_COL] is None


def test_a_servers_error_message_is_read_from_its_body():
    assert _error_message(json.dumps({"error": {"message": "This model's maximum context length is 4096"}})) == \
        "This model's maximum context length is 4096"
    assert _error_message("<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert _error_message("") == "(empty body)"


ENDPOINT = ["engine.kind=endpoint", "engine.endpoint.base_url=http://127.0.0.1:9/v1", "engine.endpoint.model=m"]


def test_endpoint_settings_are_checked_before_any_work(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    cases = {
        ("engine.kind=endpoint",): "needs engine.endpoint.base_url",
        (*ENDPOINT[:2],): "needs engine.endpoint.model",
        (*ENDPOINT[:1], "engine.endpoint.base_url=127.0.0.1:8000", "engine.endpoint.model=m"): "http:// or https://",
        (*ENDPOINT, "engine.endpoint.api_key_env=NO_SUCH_KEY_VAR"): "NO_SUCH_KEY_VAR, which is unset",
        (*ENDPOINT, "generation.constrained=true", "engine.endpoint.structured_outputs=none"): "takes a JSON schema",
        (*ENDPOINT, "generation.constrained=true", "generation.json_whitespace=false"): "json_whitespace=false",
        ("engine.kind=sglang",): "engine.kind' must be one of vllm, endpoint",
    }
    for args, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config(["conf=local", *args])
    assert load_config(["conf=local", *ENDPOINT]).engine.endpoint.model == "m"


def test_a_key_is_read_from_its_variable_and_never_kept_in_the_config(monkeypatch):
    from pipelines.config import to_yaml

    monkeypatch.setenv("LABEL_KEY_FOR_TEST", "sk-secret-value-1")
    config = load_config(["conf=local", *ENDPOINT, "engine.endpoint.api_key_env=LABEL_KEY_FOR_TEST"])
    assert "sk-secret-value-1" not in to_yaml(config) and "LABEL_KEY_FOR_TEST" in to_yaml(config)


def test_the_judge_takes_the_same_endpoint_keys():
    from pipelines.judge.config import load_judge_config

    with pytest.raises(ConfigError, match="needs judge.engine.endpoint.model"):
        load_judge_config(["conf=local", "judge.engine.kind=endpoint", "judge.engine.endpoint.base_url=http://h/v1"])


def test_a_chat_template_rows_tools_go_with_its_request_and_the_tool_choice():
    from pipelines.engines.columns import MESSAGES_COL, TOOLS_REQUEST_COL

    tools = [{"type": "function", "function": {"name": "f", "description": "F.", "parameters": {"type": "object"}}}]
    row = {"id": "r1", MESSAGES_COL: json.dumps([{"role": "user", "content": "hi"}]), CALL_SCHEMA_COL: None,
           TOOLS_REQUEST_COL: json.dumps(tools)}
    generation = GenerationConfig(max_tokens=8, temperature=0.0, max_model_len=64, samples=2)
    label, samples = request_bodies(row, "m", generation, seed=0, tool_choice="auto")
    assert label["tools"] == tools and label["tool_choice"] == "auto"
    assert samples["tools"] == tools and samples["tool_choice"] == "auto"
    without, _ = request_bodies({**row, TOOLS_REQUEST_COL: None}, "m", generation, seed=0)
    assert "tools" not in without and "tool_choice" not in without


def test_calls_the_server_parsed_are_written_as_a_json_list_of_calls():
    message = {"content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "not json"}}]}
    assert json.loads(message_text(message)) == [{"name": "f", "arguments": {"x": 1}},
                                                 {"name": "g", "arguments": "not json"}]
    assert message_text({"content": "plain text"}) == "plain text"
    assert message_text({"content": None}) == ""


def test_tool_choice_auto_needs_the_json_parser(monkeypatch):
    base = ["conf=local", "engine.kind=endpoint", "engine.endpoint.base_url=http://127.0.0.1:1/v1",
            "engine.endpoint.model=m", "prompt.format=chat_template", "generation.constrained=false"]
    with pytest.raises(ConfigError, match="validation.parser=json"):
        load_config([*base, "engine.endpoint.tool_choice=auto", "validation.parser=hermes"])
    with pytest.raises(ConfigError, match="tool_choice"):
        load_config([*base, "engine.endpoint.tool_choice=required"])
    assert load_config([*base, "engine.endpoint.tool_choice=auto", "validation.parser=json"]).engine.endpoint.tool_choice == "auto"


class RecordingServer:
    """A real HTTP server on 127.0.0.1 (aiohttp, in a thread of its own) that answers chat completions
    after `delay_s` and records when each request arrived: where engine.endpoint.qps and timeout_s land."""

    def __init__(self, delay_s: float = 0.0, answer: dict | None = None, redirect_to: str | None = None,
                 refuse=None):
        import asyncio
        import threading

        from aiohttp import web

        self.delay_s, self.arrivals, self.keys, self.bodies = delay_s, [], [], []
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def completions(request):
            import time

            self.arrivals.append(time.monotonic())
            self.keys.append(request.headers.get("Authorization"))
            body = await request.json()
            self.bodies.append(body)
            refused = refuse(body) if refuse else None
            if refused:  # as a server that does not take a setting answers: (HTTP status, its message)
                return web.json_response({"error": {"message": refused[1]}}, status=refused[0])
            if redirect_to:
                raise web.HTTPTemporaryRedirect(redirect_to)
            await asyncio.sleep(self.delay_s)
            return web.json_response(answer if answer is not None else {
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "[]"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1}})

        async def serve():
            app = web.Application()
            app.router.add_post("/v1/chat/completions", completions)
            app.router.add_get("/v1/models", lambda request: web.json_response({"data": [{"id": "m"}]}))
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            self.port = self.runner.addresses[0][1]
            started.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(serve()), self.loop.run_forever()),
                                       daemon=True)
        self.thread.start()
        assert started.wait(10)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        import asyncio

        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def run_stage(server, rows: int, key: str | None = None, **endpoint_settings):
    """EndpointStage, the client actor's class, on one batch of `rows` rows against `server`."""
    import asyncio

    import pyarrow as pa

    from pipelines.engines.columns import EARLY_STATUS_COL
    from pipelines.engines.config import EndpointConfig
    from pipelines.engines.endpoint.stage import EndpointStage

    endpoint = EndpointConfig(base_url=server.base_url, model="m", **endpoint_settings)
    batch = pa.table({"id": [f"r{i}" for i in range(rows)], EARLY_STATUS_COL: pa.array([None] * rows, pa.string()),
                      CALL_SCHEMA_COL: pa.array([None] * rows, pa.string()),
                      MESSAGES_COL: [json.dumps(MESSAGES)] * rows})
    stage = EndpointStage(endpoint, key, generation(), keep=["id"], seed=0)
    return asyncio.run(stage(batch))


def test_qps_spaces_the_requests_as_they_reach_the_server():
    server = RecordingServer()
    try:
        out = run_stage(server, rows=6, qps=4.0, max_concurrency=16)
    finally:
        server.stop()
    assert out.column(ENGINE_TEXT_COL).to_pylist() == ["[]"] * 6
    arrivals = sorted(server.arrivals)
    # sends are paced 1/qps apart from the first: 5 gaps of 0.25 s at least (less a localhost connect)
    assert len(arrivals) == 6 and arrivals[-1] - arrivals[0] >= 5 / 4.0 - 0.1, arrivals


def test_a_request_past_timeout_s_is_retried_then_its_row_is_an_engine_error_naming_the_timeout():
    server = RecordingServer(delay_s=5.0)
    try:
        out = run_stage(server, rows=1, timeout_s=0.5, max_retries=1, backoff_s=0.01)
    finally:
        server.stop()
    assert out.column(ENGINE_ERROR_COL).to_pylist() == [
        f"no answer from {server.base_url} within engine.endpoint.timeout_s=0.5 s (after 2 attempts)"]
    assert len(server.arrivals) == 2  # the first try and its one retry, each cut at timeout_s


@pytest.mark.parametrize("answer", [{"choices": []}, {"choices": [{"message": None}]}, {"no": "choices"}, [1, 2]])
def test_an_answer_of_the_wrong_shape_fails_its_row_only(answer):
    """A server's answer is untrusted too: one that is not a chat completion makes its row an
    engine_error naming what was wrong, and the batch comes out whole."""
    server = RecordingServer(answer=answer)
    try:
        out = run_stage(server, rows=3)
    finally:
        server.stop()
    errors = out.column(ENGINE_ERROR_COL).to_pylist()
    assert len(errors) == 3 and all(e.startswith("the server's answer is not a chat completion this job can read (")
                                    for e in errors), errors


def test_the_key_goes_only_to_the_configured_origin_across_a_redirect():
    """aiohttp, the stage's client, drops Authorization on a redirect to another origin (urllib, the
    preflight's, needs the job's own handler: tests/test_hostile.py)."""
    elsewhere = RecordingServer()
    server = RecordingServer(redirect_to=f"{elsewhere.base_url}/chat/completions")
    try:
        out = run_stage(server, rows=1, key="sekrit")
    finally:
        server.stop()
        elsewhere.stop()
    assert out.column(ENGINE_TEXT_COL).to_pylist() == ["[]"]  # followed to the other server, which answered
    assert server.keys == ["Bearer sekrit"] and elsewhere.keys == [None]


def test_a_call_schema_goes_in_the_form_the_server_takes():
    row = {"id": "r1", MESSAGES_COL: json.dumps(MESSAGES), CALL_SCHEMA_COL: json.dumps(SCHEMA)}
    label, _ = request_bodies(row, "m", generation(), seed=0, structured_outputs="json_object")
    assert label["response_format"] == {"type": "json_object", "schema": SCHEMA}  # llama-cpp-python's server
    with pytest.raises(ConfigError, match="structured_outputs' must be one of json_schema, json_object, none"):
        load_config(["conf=local", "input.path=x", "output.path=y", "engine.kind=endpoint",
                     "engine.endpoint.base_url=http://h/v1", "engine.endpoint.model=m",
                     "engine.endpoint.structured_outputs=grammar"])


def _llama_cpp_like(body):
    """llama-cpp-python's server on OpenAI's json_schema response_format: HTTP 500 (what the issue saw)."""
    if body.get("response_format", {}).get("type") == "json_schema":
        return 500, "1 validation error: response_format.type must be 'text' or 'json_object'"
    if body.get("n", 1) > 1:
        return 400, "n > 1 is not supported"
    return None


def test_the_preflight_refuses_settings_the_server_refuses_naming_the_keys():
    from pipelines.engines.config import EndpointConfig
    from pipelines.engines.endpoint.preflight import check_endpoint
    from pipelines.checklist import Checklist

    server = RecordingServer(refuse=_llama_cpp_like)
    try:
        section = load_config(["conf=local", "input.path=x", "output.path=y", "engine.kind=endpoint",
                               f"engine.endpoint.base_url={server.base_url}", "engine.endpoint.model=m"])
        checks = Checklist()
        check_endpoint(section, section.ray, checks)
        refused = checks.failed
        from pipelines.engines.endpoint.stage import refused_settings
        json_object = EndpointConfig(base_url=server.base_url, model="m", structured_outputs="json_object")
        taken = refused_settings(json_object, None, section.generation)
        samples = refused_settings(json_object, None, generation(samples=3, constrained=True))
    finally:
        server.stop()
    assert len(refused) == 1 and "refused a request with this run's settings (HTTP 500: 1 validation error" in refused[0]
    assert "generation.constrained=True with engine.endpoint.structured_outputs=json_schema" in refused[0]
    assert server.bodies[0]["max_tokens"] == 8 and server.bodies[0]["response_format"]["type"] == "json_schema"
    assert taken is None  # the form it takes: the run goes on
    assert samples == "HTTP 400: n > 1 is not supported"


def test_a_run_whose_engine_answered_no_row_is_not_a_success():
    from pipelines.cli import no_answer

    summary = {"mode": "generate", "status": {"ok": 0, "no_call": 0, "parse_error": 0, "invalid_call": 0,
                                              "engine_error": 58, "bad_input": 7}}
    assert no_answer(summary).startswith("the engine answered none of the 58 rows sent to it")
    assert no_answer({**summary, "status": {**summary["status"], "parse_error": 1}}) is None  # one answer: a run
    assert no_answer({**summary, "mode": "dry_run"}) is None
    assert no_answer({"mode": "generate", "status": {"bad_input": 7, "engine_error": 0}}) is None
