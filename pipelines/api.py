"""The labeling job from Python, and its row-level pieces for pandas and HF `datasets` users.

    from pipelines import api

    summary = api.label({"input.path": "data/sample", "output.path": "out/py"})       # the whole job
    labeled = api.label_dataset(ray.data.read_parquet(...), {"dry_run": True})          # Dataset -> Dataset
    api.prompt("What's the weather in Paris?", tools)                                 # one row's messages
    api.judge_output('[{"name": "get_weather", "arguments": {"city": "Paris"}}]', tools)   # status, calls, errors
    api.score(calls, answers, tools)                                                  # correct, mismatch

Settings are the command line's keys (`docs/configuration.md`), as a dict of dotted keys over a
profile (`conf`, default `local`). None of these starts or stops a Ray session the caller owns: with
Ray initialized before the call, the job runs on that session and leaves it as it was.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.core.prompts import build_prompt
from pipelines.core.scoring import ScoringConfig, score_row
from pipelines.core.tools import load_tools
from pipelines.core.validation import ValidationConfig, label_output
from pipelines.label.config import LabelConfig, Mode, load_config

Settings = dict[str, Any] | None


def config(settings: Settings = None, *, conf: str = "local") -> LabelConfig:
    """The checked labeling config of a profile and dotted keys ({"generation.max_tokens": 64}); raises
    pipelines.config.ConfigError naming a wrong key, type or value."""
    return load_config([f"conf={conf}", *(f"{key}={_value(value)}" for key, value in (settings or {}).items())])


def _value(value: Any) -> str:
    """A Python value as the command line's `key=value` takes it (YAML)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # true/false, numbers, null, and lists and dicts as YAML's flow style


def label(settings: Settings = None, *, conf: str = "local", revalidate: bool = False) -> dict:
    """The labeling job exactly as `jobs/label.py` runs it (preflight, lease, resume, pieces, summary),
    from a profile and dotted keys; returns the summary (also in `_summary.json`). revalidate: as
    `jobs/validate.py`. Raises what the command line turns into its exit codes: ConfigError,
    InputError, OutputError, PreflightFailed (2); ErrorRateExceeded, LeaseLost (1)."""
    from pipelines.label.plan import run

    return run(config(settings, conf=conf), revalidate=revalidate)


def label_dataset(ds, settings: Settings = None, *, conf: str = "local"):
    """A Ray Dataset of input rows (`query`, `tools`, optional `id` and `answers`, anything else passed
    through) -> a lazy Dataset of the labeled rows, with the output columns of docs/output.md, like
    ray.data.llm's build_llm_processor(config)(ds). The caller owns reads and writes: there is no
    resume, no lease, no summary and no preflight (a wrong key still raises ConfigError at once). Every
    row comes out once, with its reason, as in the job. `input.path` and `output.path` need not be set."""
    import pyarrow as pa

    from pipelines.cluster import start_ray
    from pipelines.label.plan import label_plan
    from pipelines.engines import model_name
    from pipelines.run.stages import ROW_COL, SHARD_COL

    labeling = config({"input.path": "(a dataset)", "output.path": "(a dataset)", **(settings or {})}, conf=conf)
    mode = Mode.of(labeling, revalidate=False)
    model = model_name(labeling)
    start_ray(labeling.ray, metrics=labeling.engine.log_metrics)
    input_schema = _arrow_schema(ds)
    if "id" not in input_schema.names:
        raise ValueError("label_dataset needs an `id` column (unique per row): the output is matched to the input by it")

    def lineage_columns(batch: pa.Table) -> pa.Table:  # what the job's reader adds: where a row came from
        return batch.append_column(SHARD_COL, pa.array(["dataset"] * batch.num_rows)).append_column(
            ROW_COL, pa.array([-1] * batch.num_rows, pa.int64()))

    ds = ds.map_batches(lineage_columns, batch_format="pyarrow", batch_size=None)
    labeled = label_plan(ds, labeling, model, mode, input_schema)
    return labeled.map_batches(lambda batch: batch.drop_columns([SHARD_COL, ROW_COL]), batch_format="pyarrow",
                               batch_size=None)


def _arrow_schema(ds):
    import pyarrow as pa

    schema = ds.schema()
    base = getattr(schema, "base_schema", schema)
    return base if isinstance(base, pa.Schema) else pa.schema(list(zip(schema.names, schema.types)))


# ---------------------------------------------------------------------------------- one row

def prompt(query: str, tools: Any, prompt_format: str = "hammer1") -> list[dict]:
    """One row's chat messages, as the job sends them (the Hammer prompt of docs/hammer-prompt.md for
    the hammer formats). tools: a JSON string or a list, in any accepted form. Raises BadInput (a
    ValueError with `.reason`) for a row the job would mark bad_input."""
    return build_prompt(prompt_format, query, load_tools(tools)).messages


def judge_output(text: str, tools: Any, query: str = "", parser: str = "json") -> dict:
    """A model's text judged against the row's tools as the job judges it: `status`, `calls`, `errors`
    and `flags` (as `code: detail` strings), `call_type`."""
    label = label_output(text, load_tools(tools), query, ValidationConfig(parser=parser))
    return {"status": label.status, "calls": label.calls, "errors": [str(e) for e in label.errors],
            "flags": [str(f) for f in label.flags], "call_type": label.call_type}


def score(calls: list[dict] | None, answers: Any, tools: Any, rules: str = "auto", category: str | None = None,
          status: str = "ok") -> dict:
    """Calls against gold `answers` (either form) by `rules` (schema, bfcl, auto): `correct` (None
    without a verdict), `mismatch`, `gold_call_type`, `gold_errors`, `rules`."""
    result = score_row(status, calls, [], answers, load_tools(tools), rules=ScoringConfig(rules).rules,
                       category=category)
    return {"correct": result.correct, "mismatch": str(result.mismatch) if result.mismatch else None,
            "gold_call_type": result.gold_call_type, "gold_errors": [str(e) for e in result.gold_errors],
            "rules": result.rules}
