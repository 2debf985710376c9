"""The labeling plan: read -> prompt -> generate -> validate -> write. The only place that knows the order."""

from __future__ import annotations

import json
import posixpath
import time
from typing import Callable

import pyarrow as pa

from pipelines import engines, storage
from pipelines.cluster import start_ray, stop_ray
from pipelines.config import to_yaml
from pipelines.core import bfcl
from pipelines.label import config as cfg
from pipelines.label import output, stages
from pipelines.label.lease import Lease
from pipelines.label.models import resolve_engine_model
from pipelines.label.preflight import preflight
from pipelines.label.progress import ErrorRateExceeded, Progress
from pipelines.label.summary import COLUMNS as SUMMARY_COLUMNS
from pipelines.label.summary import OPTIONAL_COLUMNS, SummaryCounter


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
        if mode == cfg.Mode.GENERATE:
            engines.preload(config.engine)
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
        label_rows(config, todo, shards.schema, model, mode, out_fs, out_root, progress, lease.token)

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


Todo = list[tuple[str, str, list]]  # (shard path, shard name, its rows already done as ranges)


def continue_output(config, shards: storage.Shards, fingerprint: dict, out_fs, out_root: str,
                    execute: Callable[[Todo, Progress], None]) -> tuple[int, str | None]:
    """The part of a run every job over shards shares (labeling, judging): opens the output for this
    fingerprint (output.open_output), saves the config beside it, and runs `execute` over the rows
    not yet written. Returns the rows written before this run and, if max_error_rate stopped it, why."""
    done = output.open_output(out_fs, out_root, fingerprint, config.resume)
    storage.write_text(out_fs, posixpath.join(out_root, output.CONFIG_FILE), to_yaml(config))
    todo = [(path, name, done.get(name, [])) for path, name, rows in zip(shards.paths, shards.names, shards.rows)
            if output.count(done.get(name, [])) < rows]
    already = sum(output.count(ranges) for ranges in done.values())
    stopped = None
    if todo:
        if already:
            print(f"resuming: {already} of {shards.num_rows} rows are already written; {len(todo)} shard(s) to go")
        try:
            execute(todo, Progress(shards.num_rows, already, config.progress_interval_s))
        except ErrorRateExceeded as e:
            stopped = str(e)
        output.remove_tmp(out_fs, out_root)
    elif shards.num_rows == 0:
        print(f"nothing to do: the input under {config.input.path} has no rows")
    else:
        print(f"nothing to do: all {shards.num_rows} input rows are already in {config.output.path}")
    return already, stopped


def read_todo(todo: Todo, in_fs, add_id: bool):
    """The rows still to do as a dataset: one read task per shard, done rows skipped."""
    import ray

    ds = ray.data.from_items([{"path": p, "shard": n, "done": json.dumps(d)} for p, n, d in todo])
    return ds.map_batches(stages.read_shard, batch_size=1, fn_kwargs={"filesystem": in_fs, "add_id": add_id})


def prompt_actors(ds, stage: type, actors, constructor_kwargs: dict):
    """A prompt stage on its CPU actor pool; actors: the config part with `concurrency`, `num_cpus`,
    `batch_size` and `resources` (`prompt`, or the judge's `judge.prompt`)."""
    import ray

    return ds.map_batches(stage, batch_format="pyarrow", batch_size=actors.batch_size,
                          compute=ray.data.ActorPoolStrategy(size=actors.concurrency), num_cpus=actors.num_cpus,
                          resources=actors.resources or None, fn_constructor_kwargs=constructor_kwargs)


def write_and_report(ds, config, out_fs, out_root: str, lease_token: str, progress: Progress,
                     status_column: str = "status") -> None:
    """The plan's last stage and its driver loop: commit pieces, print progress, stop past max_error_rate."""
    ds = ds.map_batches(stages.write_pieces, batch_format="pyarrow", batch_size=config.output.rows_per_file,
                        fn_kwargs={"filesystem": out_fs, "root": out_root, "lease_token": lease_token,
                                   "status_column": status_column})
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        progress.add_batch(batch.to_pydict())
        if progress.due():
            print(progress.line(), flush=True)
        progress.check_error_rate(config.max_error_rate)
    print(progress.line(), flush=True)
    stop_ray()


def label_rows(config: cfg.LabelConfig, todo: Todo, shard_schema: pa.Schema,
               model: str | None, mode: cfg.Mode, out_fs, out_root: str, progress: Progress,
               lease_token: str) -> None:
    """Builds the Ray Data plan over the rows still to do and runs it, reporting progress as pieces commit."""
    in_fs, _ = storage.filesystem(config.input.path, config.s3)
    add_id = "id" not in shard_schema.names
    input_schema = shard_schema.append(pa.field("id", pa.string())) if add_id else shard_schema
    lineage = {"prompt_format": config.prompt.format, "run_id": config.run.id, "config_hash": cfg.config_hash(config, model)}
    if mode != cfg.Mode.REVALIDATE:  # re-validation keeps the input's model column
        lineage["model"] = model

    start_ray(config.ray, metrics=config.engine.log_metrics)
    ds = read_todo(todo, in_fs, add_id)
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
        })
    if mode == cfg.Mode.GENERATE:
        # The engine carries what the next stage reads.
        carried = [c for c in [*input_schema.names, *stages.annotate_reads(mode)] if c not in engines.WRITES]
        ds = engines.generate(ds, config, model, keep=list(dict.fromkeys(carried)), seed=config.seed)
    ds = ds.map_batches(
        stages.annotate_batch,
        batch_format="pyarrow",
        fn_kwargs={"input_schema": input_schema, "lineage": lineage, "mode": mode, "validation": config.validation,
                   "scoring": config.scoring, "samples": config.generation.samples - 1},
    )
    write_and_report(ds, config, out_fs, out_root, lease_token, progress)
