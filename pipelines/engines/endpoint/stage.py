"""The endpoint engine: rows' chat messages to an OpenAI-compatible chat-completions server
(`vllm serve`, SGLang, a hosted API), the answers back as columns.WRITES.

Client actors (engine.replicas) each keep up to endpoint.max_concurrency requests in flight, at
most endpoint.qps a second, every request bounded by endpoint.timeout_s. A request that meets a
408, 429 or 5xx answer, a timeout or a refused connection is retried after a backoff that doubles
(with jitter; a server's Retry-After is honoured), endpoint.max_retries times. Then:
- a row the server kept answering with an error status, or rejected (any other 4xx: a prompt over
  its context, a schema it cannot take) becomes `engine_error` with the status and the server's
  message; the run goes on;
- a server that cannot be reached at all (connection refused, reset, timed out) ends the run with
  EndpointUnavailable, as a dead in-process engine would: the rows written so far are kept, and a
  rerun after the server is back labels the rest (exactly once, as any resume). Writing the rest as
  engine_error would turn an outage into thousands of lost labels.

Not ray.data.llm's HttpRequestProcessor: it raises for a row whose retries ran out (the whole job
fails on one bad row), retries no 500, has no concurrency bound or timeout of its own, and returns
the raw JSON; the row contract here is the in-process engine's.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict

from pipelines.core.confidence import logprob_stats
from pipelines.engines.columns import (CALL_SCHEMA_COL, EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_FINISH_COL,
                                       ENGINE_LOGPROBS_COL, ENGINE_PROMPT_TOKENS_COL, ENGINE_SAMPLE_ERROR_COL,
                                       ENGINE_SAMPLE_FINISH_COL, ENGINE_SAMPLES_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL,
                                       CONTRACT, MESSAGES_COL, READS, TOOLS_REQUEST_COL, WRITE_TYPES, WRITES,
                                       sample_seed)
from pipelines.config import redact
from pipelines.engines import EngineUnavailable, TemplateNotChecked
from pipelines.engines.config import api_key, rows_per_block

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class EndpointUnavailable(EngineUnavailable):
    """The server could not be reached within the retries: the run stops, keeping what it wrote."""


class RowFailed(Exception):
    """The server answered this request with an error (after retries where retrying could help)."""


def generate(ds, config, model: str, keep: list[str], seed: int = 0):
    """The engine stage on a dataset through the endpoint: rows with READS and MESSAGES_COL in, the
    same rows with `keep` and WRITES out."""
    import ray

    engine, endpoint = config.engine, config.engine.endpoint
    # EndpointUnavailable reaches the driver as itself (Ray Data would wrap it in a UserCodeException
    # whose cause is lost on the way), so that the job can say why it stopped in one line.
    # (a dataset runs with the context it was made with: set on it, not on the current one)
    ds.context.raise_original_map_exception = True
    ds = ds.repartition(target_num_rows_per_block=rows_per_block(engine))
    return ds.map_batches(
        EndpointStage, batch_format="pyarrow", batch_size=engine.batch_size,
        compute=ray.data.ActorPoolStrategy(size=engine.replicas,
                                           max_concurrent_calls_per_actor=engine.max_concurrent_batches),
        num_cpus=0.25,
        # the key travels to the client actors in their constructor, read here on the driver from its
        # variable: never in a runtime environment (the dashboard shows those), a config or a log
        fn_constructor_kwargs={"endpoint": endpoint, "key": api_key(endpoint), "generation": config.generation,
                               "keep": keep, "seed": seed})


def request_bodies(row: dict, model: str, generation, seed: int, tool_choice: str = "none",
                   structured_outputs: str = "json_schema") -> tuple[dict, dict | None]:
    """Pure: a row's label request and, with generation.samples > 1, its samples' request (OpenAI's
    chat-completions bodies). The label is greedy at generation.temperature; the samples are one
    request with n = samples - 1, seeded from `seed` and the row's id as the in-process engine's.
    A row with tools to send (prompt.format=chat_template) sends them with `tool_choice`; a row's
    call schema goes in the form engine.endpoint.structured_outputs names."""
    messages = json.loads(row[MESSAGES_COL])
    schema = row.get(CALL_SCHEMA_COL)
    both = {"response_format": response_format(json.loads(schema), structured_outputs)} if schema else {}
    if row.get(TOOLS_REQUEST_COL):
        both = {**both, "tools": json.loads(row[TOOLS_REQUEST_COL]), "tool_choice": tool_choice}
    label = {"model": model, "messages": messages, "max_tokens": generation.max_tokens,
             "temperature": generation.temperature, **both}
    if generation.logprobs:
        label["logprobs"] = True
    samples = None
    if generation.samples > 1:
        samples = {"model": model, "messages": messages, "max_tokens": generation.max_tokens,
                   "n": generation.samples - 1, "temperature": generation.sample_temperature,
                   "top_p": generation.sample_top_p,
                   "seed": sample_seed(seed, row["id"]), **both}
    return label, samples


def response_format(schema: dict, structured_outputs: str) -> dict:
    """A JSON schema as the server takes it: OpenAI's json_schema (vLLM, SGLang, Ollama's /v1), or
    llama-cpp-python's json_object with the schema beside the type."""
    if structured_outputs == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "calls", "schema": schema, "strict": True}}


def message_text(message: dict) -> str:
    """Pure: an answer's text; calls the server parsed itself (tool_choice=auto) as a JSON list of
    calls, the form validation.parser=json reads (arguments that are not JSON stay a string: not_a_call)."""
    if message.get("tool_calls"):
        calls = []
        for call in message["tool_calls"]:
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except (TypeError, ValueError):
                arguments = function.get("arguments")
            calls.append({"name": function.get("name"), "arguments": arguments})
        return json.dumps(calls, ensure_ascii=False)
    return message.get("content") or ""


def label_columns(response: dict) -> dict:
    """Pure: the label's response -> its WRITES values (the first choice)."""
    choice = response["choices"][0]
    usage = response.get("usage") or {}
    content = (choice.get("logprobs") or {}).get("content")
    stats = None
    if content is not None:
        stats = asdict(logprob_stats(choice["message"].get("content") or "", [t["token"] for t in content],
                                     [t["logprob"] for t in content]))
    return {ENGINE_TEXT_COL: message_text(choice["message"]), ENGINE_TOKENS_COL: usage.get("completion_tokens"),
            ENGINE_FINISH_COL: choice.get("finish_reason"), ENGINE_LOGPROBS_COL: stats,
            ENGINE_PROMPT_TOKENS_COL: usage.get("prompt_tokens")}


class EndpointStage:
    """A client actor: each batch's rows as concurrent requests, their answers as columns."""

    def __init__(self, endpoint, key: str | None, generation, keep: list[str], seed: int):
        self.endpoint, self.generation, self.keep, self.seed = endpoint, generation, keep, seed
        self.url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", **_auth(key)}
        self.in_flight = None
        self.next_send = 0.0  # qps: the earliest time the next request may go

    async def __call__(self, batch):
        import aiohttp
        import pyarrow as pa

        CONTRACT.with_reads(MESSAGES_COL, *self.keep).check_in(batch)
        if self.in_flight is None:  # made on the actor's event loop: one bound across its concurrent batches
            self.in_flight = asyncio.Semaphore(self.endpoint.max_concurrency)
        tools = [TOOLS_REQUEST_COL] if TOOLS_REQUEST_COL in batch.column_names else []  # the judge sends none
        rows = batch.select([*READS, MESSAGES_COL, *tools]).to_pylist()
        # a session per batch, closed with it: the actor has no end of its own to close one at
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.endpoint.timeout_s)) as session:
            results = await asyncio.gather(*(self._row(session, row) for row in rows))
        out = batch.select(self.keep)
        for name in WRITES:
            out = out.append_column(name, pa.array([r.get(name) for r in results], WRITE_TYPES[name]))
        return CONTRACT.check_out(out)

    async def _row(self, session, row: dict) -> dict:
        if row.get(EARLY_STATUS_COL):  # stopped before generation: passes through
            return {}
        label, samples = request_bodies(row, self.endpoint.model, self.generation, self.seed, self.endpoint.tool_choice,
                                        self.endpoint.structured_outputs)
        jobs = [self._request(session, label)] + ([self._request(session, samples)] if samples else [])
        answers = await asyncio.gather(*jobs, return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, RowFailed):
                raise answer  # EndpointUnavailable, or a bug: the run stops
        if isinstance(answers[0], RowFailed):
            return {ENGINE_ERROR_COL: str(answers[0])}
        try:  # a server's answer is untrusted too: one it did not shape as the API says fails its row only
            out = label_columns(answers[0])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            return {ENGINE_ERROR_COL: _unreadable(e)}
        if samples:
            if isinstance(answers[1], RowFailed):
                out[ENGINE_SAMPLE_ERROR_COL] = str(answers[1])
            else:
                try:
                    choices = sorted(answers[1]["choices"], key=lambda c: c.get("index", 0))
                    out[ENGINE_SAMPLES_COL] = [message_text(c["message"]) for c in choices]
                    out[ENGINE_SAMPLE_FINISH_COL] = [c.get("finish_reason") for c in choices]
                except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
                    out[ENGINE_SAMPLE_ERROR_COL] = _unreadable(e)
        return out

    async def _request(self, session, body: dict) -> dict:
        """One request with its retries: the response's JSON, or RowFailed / EndpointUnavailable."""
        import aiohttp

        endpoint = self.endpoint
        last, unreachable = "", False
        for attempt in range(endpoint.max_retries + 1):
            wait = None
            async with self.in_flight:
                await self._pace()
                try:
                    async with session.post(self.url, json=body, headers=self.headers) as response:
                        if response.status == 200:
                            return await response.json()
                        message = _error_message(await response.text())
                        last = f"HTTP {response.status} from {redact(endpoint.base_url)}: {message}"
                        if response.status not in RETRY_STATUSES:
                            raise RowFailed(last)
                        wait = _retry_after(response.headers.get("Retry-After"))
                        unreachable = False
                except aiohttp.ClientConnectionError as e:
                    last = f"{type(e).__name__} from {redact(endpoint.base_url)}: {e}"
                    unreachable = True
                except asyncio.TimeoutError:  # the server is there but slow for this row: the row fails, not the run
                    last = f"no answer from {redact(endpoint.base_url)} within engine.endpoint.timeout_s={endpoint.timeout_s:g} s"
                    unreachable = False
            if attempt < endpoint.max_retries:
                backoff = min(endpoint.backoff_s * 2 ** attempt, endpoint.backoff_max_s)
                await asyncio.sleep(wait if wait is not None else backoff * random.uniform(0.5, 1.0))
        tries = f"after {endpoint.max_retries + 1} attempts"
        if unreachable:
            raise EndpointUnavailable(f"the endpoint {redact(endpoint.base_url)} did not answer {tries} ({last}); the rows "
                                      "written so far are kept: rerun when it is back to label the rest")
        raise RowFailed(f"{last} ({tries})")

    async def _pace(self) -> None:
        if self.endpoint.qps:
            now = time.monotonic()
            slot = max(self.next_send, now)
            self.next_send = slot + 1 / self.endpoint.qps
            if slot > now:
                await asyncio.sleep(slot - now)


def _unreadable(e: Exception) -> str:
    return f"the server's answer is not a chat completion this job can read ({type(e).__name__}: {str(e)[:200]})"


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 300.0) if value else None
    except ValueError:
        return None


def _error_message(text: str) -> str:
    """The server's message from an OpenAI-style error body, else the body's start."""
    try:
        error = json.loads(text).get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        message = None
    return (message or text or "(empty body)").strip()[:500]


def probe(endpoint, key: str | None, timeout_s: float = 10.0) -> list[str]:
    """The preflight's look at the server: the models it serves (GET /models). Raises
    EndpointUnavailable when it does not answer, PermissionError when it refuses the key."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(endpoint.base_url.rstrip("/") + "/models",
                                     headers=_auth(key))
    try:
        with _open(request, timeout_s) as response:
            listing = json.loads(response.read())
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise PermissionError(f"HTTP {e.code}: {_error_message(e.read().decode(errors='replace'))}") from None
        raise EndpointUnavailable(f"GET {redact(request.full_url)}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise EndpointUnavailable(f"GET {redact(request.full_url)}: {getattr(e, 'reason', e)}") from None
    return [m.get("id") for m in listing.get("data", [])]


def refused_settings(endpoint, key: str | None, generation, tools: bool = False, timeout_s: float = 60.0) -> str | None:
    """The preflight's one real request with the run's generation settings (the label's body and, with
    samples, the samples' body, as the stage builds them; a call schema in the configured form when
    constrained; a probe tool with tool_choice when the rows send tools; max_tokens cut to 8): the server's message if it refuses them, else None. A server
    that refuses a setting refuses every row's request alike: better said once at start than as
    thousands of engine_error rows."""
    import dataclasses
    import urllib.error
    import urllib.request

    from pipelines.core.prompts import TOOLS_PROBE, TOOLS_PROBE_MESSAGES
    from pipelines.core.tools import calls_schema, load_tools

    schema = calls_schema(load_tools([TOOLS_PROBE])) if generation.constrained else None
    row = {"id": "preflight", MESSAGES_COL: json.dumps(TOOLS_PROBE_MESSAGES),
           CALL_SCHEMA_COL: json.dumps(schema) if schema else None,
           TOOLS_REQUEST_COL: json.dumps([TOOLS_PROBE]) if tools else None}  # with engine.endpoint.tool_choice
    short = dataclasses.replace(generation, max_tokens=min(generation.max_tokens, 8))
    label, samples = request_bodies(row, endpoint.model, short, 0, endpoint.tool_choice, endpoint.structured_outputs)
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    for body in [label] + ([samples] if samples else []):
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", **_auth(key)})
        try:
            with _open(request, timeout_s) as response:
                json.loads(response.read())["choices"][0]["message"]
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code}: {_error_message(e.read().decode(errors='replace'))}"
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
            return f"no chat completion in its answer ({type(e).__name__}: {getattr(e, 'reason', e)})"
    return None


def served_template_problem(endpoint, timeout_s: float = 10.0) -> str | None:
    """prompt.format=chat_template's check of the server's template: a vLLM server renders a chat with
    tools on POST /tokenize; a template that ignores them gives as many tokens with the probe tool as
    without. None: it shows the tools. Raises TemplateNotChecked for a server without /tokenize."""
    import urllib.error
    import urllib.request

    from pipelines.core.prompts import TOOLS_PROBE, TOOLS_PROBE_MESSAGES

    url = endpoint.base_url.rstrip("/").removesuffix("/v1") + "/tokenize"
    headers = {"Content-Type": "application/json", **_auth(api_key(endpoint))}
    counts = []
    for tools in ([TOOLS_PROBE], None):
        body = {"model": endpoint.model, "messages": TOOLS_PROBE_MESSAGES, "add_generation_prompt": True,
                **({"tools": tools} if tools else {})}
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
        try:
            with _open(request, timeout_s) as response:
                counts.append(json.loads(response.read())["count"])
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            raise TemplateNotChecked(f"the server renders no chat on POST {redact(url)} ({getattr(e, 'reason', e)}); its "
                                     "template's handling of tools is its own") from None
    return None if counts[0] > counts[1] else "its chat template ignores tools (a probe tool adds no token to the prompt)"


def _auth(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _origin(url: str) -> tuple:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _open(request, timeout_s: float):
    """urllib's urlopen, but a redirect to another origin loses the key. (urllib copies every header
    onto the redirected request; aiohttp, the stage's client, already drops Authorization there.)"""
    import urllib.request

    class SameOriginKey(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and _origin(newurl) != _origin(req.full_url):
                new.remove_header("Authorization")
            return new

    return urllib.request.build_opener(SameOriginKey).open(request, timeout=timeout_s)
