"""The labeling plan: read -> prompt -> generate -> validate -> write. The only place that knows the order."""

from __future__ import annotations

import posixpath
import time

import pyarrow as pa

from pipelines import engines, storage
from pipelines.cluster import start_ray
from pipelines.core import bfcl
from pipelines.label import config as cfg
from pipelines.label import stages
from pipelines.label.preflight import preflight
from pipelines.label.summary import COLUMNS as SUMMARY_COLUMNS
from pipelines.label.summary import OPTIONAL_COLUMNS, SummaryCounter
from pipelines.models import resolve_engine_model
from pipelines.run import output
from pipelines.run.lease import Lease
from pipelines.run.plan import Todo, continue_output, prompt_actors, read_todo, write_and_report
from pipelines.run.progress import ErrorRateExceeded, Progress


def run(config: cfg.LabelConfig, *, revalidate: bool = False) -> dict:
    """Runs the whole job and returns its summary (also written to `_summary.json`).

    A rerun into the same output continues where the last one stopped (see output.py).
    revalidate: judge the input's `raw_output` column instead of generating (jobs/validate.py); no
    model is loaded, and the input's `model` column, if any, is kept.
    The preflight runs first and takes the output's lease, which the run holds until it ends.
    Raises InputError/OutputError/ConfigError/PreflightFailed for problems the user must fix, ErrorRateExceeded
    past max_error_rate, LeaseLost when another run took the output over.
    """
    started = time.time()
    out_fs, out_root = storage.filesystem(config.output.path, config.s3)
    lease = Lease(out_fs, out_root, config.run.id, heartbeat_s=config.lease.heartbeat_s,
                  stale_after_s=config.lease.stale_after_s)
    try:
        mode = cfg.Mode.of(config, revalidate)
        checks, model = check(config, mode, lease=lease)
        return _run(config, mode, started, checks.shards, model, lease, out_fs, out_root)
    finally:
        lease.release()


def check(config: cfg.LabelConfig, mode: cfg.Mode, lease: Lease | None = None):
    """The preflight for this run's mode (`preflight=true` alone, or the start of a run, which takes
    the lease): returns the checklist and the resolved model (None when re-validating)."""
    model = None if mode == cfg.Mode.REVALIDATE else resolve_engine_model(config)
    checks = preflight(config, model, mode, lease=lease)
    return checks, model


def _run(config: cfg.LabelConfig, mode: cfg.Mode, started: float, shards: storage.Shards, model: str | None,
         lease: Lease, out_fs, out_root: str) -> dict:
    fingerprint = output.fingerprint(cfg.label_settings(config, model), list(zip(shards.names, shards.rows)), mode.value)

    def label(todo, progress):
        label_rows(config, todo, shards.schema, model, mode, out_fs, out_root, progress, lease)

    already, stopped = continue_output(config, shards, fingerprint, out_fs, out_root, label)
    counter = SummaryCounter()
    for batch in storage.read_columns(out_fs, out_root, SUMMARY_COLUMNS, OPTIONAL_COLUMNS):
        counter.add(batch.to_pydict())
    summary = counter.to_dict(time.time() - started, run_id=config.run.id, output=config.output.path, model=model,
                              mode=mode.value, input_shards=len(shards.paths), input_rows=shards.num_rows,
                              rows_before_this_run=already, stopped=stopped, mask_names=config.mask.names)
    storage.write_json(out_fs, posixpath.join(out_root, storage.SUMMARY_FILE), summary)
    if summary["bfcl"]:
        storage.write_text(out_fs, posixpath.join(out_root, output.BFCL_TABLE_FILE),
                           bfcl.markdown(summary["bfcl"], model or config.output.path))
    if stopped:
        raise ErrorRateExceeded(stopped)
    return summary


def label_rows(config: cfg.LabelConfig, todo: Todo, shard_schema: pa.Schema,
               model: str | None, mode: cfg.Mode, out_fs, out_root: str, progress: Progress,
               lease: Lease) -> None:
    """Builds the Ray Data plan over the rows still to do and runs it, reporting progress as pieces commit."""
    in_fs, _ = storage.filesystem(config.input.path, config.s3)
    add_id = "id" not in shard_schema.names
    input_schema = shard_schema.append(pa.field("id", pa.string())) if add_id else shard_schema
    start_ray(config.ray, metrics=config.engine.log_metrics)
    ds = label_plan(read_todo(todo, in_fs, add_id), config, model, mode, input_schema)
    write_and_report(ds, config, out_fs, out_root, lease, progress)


def label_plan(ds, config: cfg.LabelConfig, model: str | None, mode: cfg.Mode, input_schema: pa.Schema):
    """The labeling stages over a dataset of input rows (with their shard and row columns):
    prompt -> generate (the engine kind) -> validate. Every labeling plan is this one: the job's over
    its shards, and pipelines.api.label_dataset's over a caller's dataset."""
    lineage = {"prompt_format": config.prompt.format, "run_id": config.run.id, "config_hash": cfg.config_hash(config, model)}
    if mode != cfg.Mode.REVALIDATE:  # re-validation keeps the input's model column
        lineage["model"] = model
    ds = prompt_actors(
        ds, stages.PromptStage, config.prompt, {
            "tokenizer_source": None if engines.takes_messages(config.engine) else model,
            "prompt_format": config.prompt.format,
            "max_prompt_tokens": config.generation.max_model_len - config.generation.max_tokens,
            "trust_remote_code": config.model.trust_remote_code,
            "constrained": config.generation.constrained and mode == cfg.Mode.GENERATE,
            "mask_names": config.mask.names and mode != cfg.Mode.REVALIDATE,
            "seed": config.seed,
            "messages": mode == cfg.Mode.GENERATE and engines.takes_messages(config.engine),
            "row_time_budget_s": config.row_time_budget_s,
        })
    if mode == cfg.Mode.GENERATE:
        # The engine carries what the next stage reads.
        carried = [c for c in [*input_schema.names, *stages.annotate_reads(mode)] if c not in engines.WRITES]
        ds = engines.generate(ds, config, model, keep=list(dict.fromkeys(carried)), seed=config.seed)
    return ds.map_batches(
        stages.annotate_batch,
        batch_format="pyarrow",
        fn_kwargs={"input_schema": input_schema, "lineage": lineage, "mode": mode, "validation": config.validation,
                   "scoring": config.scoring, "samples": config.generation.samples - 1,
                   "row_time_budget_s": config.row_time_budget_s},
    )
