"""ray.data.llm 2.60's vLLM stage, extended in one place: how a row's requests reach the engine.

ray.data.llm turns one row into one request and keeps `outputs[0]` of its result. A labeled row
needs more: its greedy label, and, with `generation.samples` > 1, `samples - 1` sampled outputs
that share the label's prefill. Both requests of a row are issued together to the same engine (the
sampled one with vLLM's `n` and FINAL_ONLY output, so that its final result holds all `n`
outputs), and vLLM's prefix cache computes the prompt once for the two. With
`generation.logprobs`, the label's per-token log-probabilities are reduced to four floats here,
before the row leaves the engine stage (ray.data.llm's integer-keyed dicts would make Ray Data
pickle the whole column).

Everything else is ray.data.llm's, unchanged: the actor and its engine, placement (tensor
parallelism), per-row engine errors, the restart of a dead engine with its batch rerun. The
subclass reaches into ray.data.llm's internals (the wrapper's `_prepare_llm_request`,
`_generate_async`, `semaphore`, and `vLLMOutputData`'s names for the text and its token count); `tests/engines/test_engine_udf.py` fails if they
move, and the Ray pin in pyproject.toml keeps them where they are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from typing import Any

from ray.llm._internal.batch.stages.vllm_engine_stage import _VLLM_FATAL_ERRORS, vLLMEngineStageUDF

from pipelines.core.confidence import logprob_stats
from pipelines.engines.vllm.keys import (FINISH_REASON, LOGPROB_STATS, SAMPLE_ERROR, SAMPLE_FINISH_REASONS, SAMPLE_TEXTS,
                                         SAMPLES_KEY)


class SamplingEngineUDF(vLLMEngineStageUDF):
    """vLLMEngineStageUDF whose engine wrapper issues a row's label and samples together."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.llm.generate_async = functools.partial(generate_row, self.llm)

    def __del__(self):
        """Shuts the engine down in order when Ray Data releases the actor at the end of a run.
        vLLM's AsyncLLM.shutdown stops the engine core first and cancels its output handler after, so
        the handler, still awaiting the core, would log the stop as an EngineDeadError traceback,
        printed after the job's summary. Cancel the handler first, and let it finish."""
        engine = getattr(getattr(self, "llm", None), "engine", None)
        handler = getattr(engine, "output_handler", None)
        if handler is not None and not handler.done():
            loop = handler.get_loop()
            try:
                here = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            if here is loop:  # the handler cannot run before we return; cancelled, it ends at its next await
                handler.cancel()
            else:
                loop.call_soon_threadsafe(handler.cancel)
                deadline = time.monotonic() + SHUTDOWN_WAIT_S
                while not handler.done() and time.monotonic() < deadline:
                    time.sleep(0.01)
        super().__del__()


SHUTDOWN_WAIT_S = 2.0  # for the output handler to take its cancellation before the core stops


async def generate_row(llm, row: dict[str, Any]):
    """What vLLMEngineWrapper.generate_async returns (request, output row, seconds), for the label
    and, when the row asks for them, its samples."""
    from vllm.sampling_params import RequestOutputKind

    sampled = row.pop(SAMPLES_KEY, None)
    sample_row = {**row, "sampling_params": dict(sampled)} if sampled else None
    request = await llm._prepare_llm_request(row)
    started = time.perf_counter()
    sample_texts = sample_finish = sample_error = None
    async with llm.semaphore:
        if sample_row is None:
            label = await llm._generate_async(request)
        else:
            sample_request = await llm._prepare_llm_request(sample_row)
            sample_request.params.output_kind = RequestOutputKind.FINAL_ONLY  # all n outputs in the last one
            label, samples = await asyncio.gather(llm._generate_async(request), _sampled(llm, sample_request))
            if isinstance(samples, str):
                sample_error = samples
            else:
                sample_texts = [o.text for o in samples.outputs]
                sample_finish = [o.finish_reason for o in samples.outputs]
    seconds = time.perf_counter() - started
    completion = label.outputs[0]
    # Only what the job reads (engine.engine_response), as vLLMOutputData names it: its other fields
    # (the prompt's 1,000+ token ids again, the generated ids, metrics) would be converted to Arrow
    # here and carried through the object store for nothing (docs/performance.md, "CPU outside vLLM").
    data = {"generated_text": completion.text, "num_generated_tokens": len(completion.token_ids),
            FINISH_REASON: completion.finish_reason, SAMPLE_TEXTS: sample_texts, SAMPLE_FINISH_REASONS: sample_finish,
            SAMPLE_ERROR: sample_error, LOGPROB_STATS: _logprob_stats(label)}
    return request, data, seconds


async def _sampled(llm, request):
    """The sampled request's result, or the engine's message: a failed sample does not fail its row.
    A dead engine still ends the actor, as ray.data.llm does, so that Ray restarts it."""
    try:
        return await llm._generate_async(request)
    except _VLLM_FATAL_ERRORS:
        raise
    except Exception as e:  # noqa: BLE001 - any engine error of this request becomes the samples' reason
        return f"{type(e).__name__}: {e}"


def _logprob_stats(output) -> dict | None:
    """The label's per-token log-probabilities -> four floats; the per-token dicts are dropped."""
    completion = output.outputs[0]
    if completion.logprobs is None:
        return None
    chosen = [step[token] for token, step in zip(completion.token_ids, completion.logprobs)]
    completion.logprobs = None
    return dataclasses.asdict(logprob_stats(completion.text, [c.decoded_token or "" for c in chosen],
                                            [c.logprob for c in chosen]))
