"""The labeling plan: read -> prompt -> generate -> validate -> write. The only place that knows the order."""

from __future__ import annotations

import posixpath

import pyarrow as pa

from pipelines import engines, storage
from pipelines.core import bfcl
from pipelines.label import config as cfg
from pipelines.label import stages
from pipelines.label.preflight import preflight
from pipelines.label.summary import COLUMNS as SUMMARY_COLUMNS
from pipelines.label.summary import OPTIONAL_COLUMNS, SummaryCounter
from pipelines.execution.job import execute_plan
from pipelines.run import output
from pipelines.run.job import Job, RunFacts, run_job
from pipelines.run.plan import prompt_actors
from pipelines.checklist import Checklist


def run(config: cfg.LabelConfig, *, revalidate: bool = False) -> dict:
    """Runs the whole job on the run skeleton (pipelines/run/job.py) and returns its summary (also
    written to `_summary.json`). A rerun into the same output continues where the last one stopped.
    revalidate: judge the input's `raw_output` column instead of generating (jobs/validate.py); no
    model is loaded, and the input's `model` column, if any, is kept.
    Raises InputError/OutputError/ConfigError/PreflightFailed for problems the user must fix, ErrorRateExceeded
    past max_error_rate, LeaseLost when another run took the output over.
    """
    return run_job(config, label_job(config, cfg.Mode.of(config, revalidate)))


def check(config: cfg.LabelConfig, mode: cfg.Mode) -> Checklist:
    """The preflight alone (`preflight=true`): takes no lease, says who holds the output."""
    return label_job(config, mode).preflight(None)


def label_job(config: cfg.LabelConfig, mode: cfg.Mode) -> Job:
    """The labeling job as the run skeleton takes it: its preflight, settings, stages and summary."""
    model = None if mode == cfg.Mode.REVALIDATE else engines.model_name(config)

    def summarize(batches, facts: RunFacts) -> dict:
        counter = SummaryCounter()
        for batch in batches:
            counter.add(batch.to_pydict())
        return counter.to_dict(facts.wall_seconds, run_id=config.run.id, output=config.output.path, model=model,
                               mode=mode.value, input_shards=len(facts.shards.paths), input_rows=facts.shards.num_rows,
                               rows_before_this_run=facts.rows_before_this_run, stopped=facts.stopped,
                               mask_names=config.mask.names, timeline=facts.timeline)

    def bfcl_table(summary: dict, out_fs, out_root: str) -> None:
        if summary["bfcl"]:
            storage.write_text(out_fs, posixpath.join(out_root, output.BFCL_TABLE_FILE),
                               bfcl.markdown(summary["bfcl"], model or config.output.path))

    return Job(mode=mode.value, preflight=lambda lease: preflight(config, model, mode, lease=lease),
               settings=lambda: cfg.label_settings(config, model),
               stages=lambda ds, input_schema: label_plan(ds, config, model, mode, input_schema),
               summary_columns=(SUMMARY_COLUMNS, OPTIONAL_COLUMNS), summarize=summarize, add_id=True,
               metrics=config.engine.log_metrics, after_summary=bfcl_table)


def label_plan(ds, config: cfg.LabelConfig, model: str | None, mode: cfg.Mode, input_schema: pa.Schema):
    """The labeling stages over a dataset of input rows (with their shard and row columns):
    prompt -> generate (the engine kind) -> validate -> execute (with execution.*). Every labeling plan is this one: the job's over
    its shards, and pipelines.api.label_dataset's over a caller's dataset."""
    lineage = {"prompt_format": config.prompt.format, "run_id": config.run.id, "config_hash": cfg.config_hash(config, model)}
    if mode != cfg.Mode.REVALIDATE:  # re-validation keeps the input's model column
        lineage["model"] = model
    kind = engines.kind_of(config.engine)
    ds = prompt_actors(
        ds, stages.PromptStage, config.prompt, {
            "tokenizer_source": None if kind.takes_messages else model,
            "prompt_format": config.prompt.format,
            "max_prompt_tokens": config.generation.max_model_len - config.generation.max_tokens,
            "trust_remote_code": config.model.trust_remote_code,
            "constrained": config.generation.constrained and mode == cfg.Mode.GENERATE,
            "mask_names": config.mask.names and mode != cfg.Mode.REVALIDATE,
            "seed": config.seed,
            "messages": mode == cfg.Mode.GENERATE and kind.takes_messages,
            "row_time_budget_s": config.row_time_budget_s,
        })
    if mode == cfg.Mode.GENERATE:
        # The engine carries what the next stage reads.
        carried = [c for c in [*input_schema.names, *stages.annotate_reads(mode)] if c not in engines.WRITES]
        ds = kind.generate(ds, config, model, keep=list(dict.fromkeys(carried)), seed=config.seed)
    ds = ds.map_batches(
        stages.annotate_batch,
        batch_format="pyarrow",
        fn_kwargs={"input_schema": input_schema, "lineage": lineage, "mode": mode, "validation": config.validation,
                   "scoring": config.scoring, "samples": config.generation.samples - 1,
                   "row_time_budget_s": config.row_time_budget_s},
    )
    if config.execution.enabled and mode != cfg.Mode.DRY_RUN:
        ds = execute_plan(ds, config.execution)
    return ds
