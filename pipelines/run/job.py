"""The run skeleton every job over shards fills (labeling, judging, execution): one place owns the
lease, the preflight's order, the fingerprint, resume, Ray's start and stop, progress, the summary's
file and the report beside it, the error rate and the check that no row was lost. A job hands it a `Job`: its checks, the settings that
change its output, its stages between the reader and the writer, and its summary.
"""

from __future__ import annotations

import logging
import posixpath
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import pyarrow as pa

from pipelines import storage
from pipelines.cluster import start_ray, stop_ray
from pipelines.report.write import write_report
from pipelines.run import output
from pipelines.run.lease import Lease
from pipelines.run.plan import continue_output, read_todo, write_and_report
from pipelines.checklist import Checklist
from pipelines.run.progress import ErrorRateExceeded


@dataclass(frozen=True)
class RunFacts:
    """What the skeleton knows of a run when the job's summary is made."""

    shards: storage.Shards
    rows_before_this_run: int
    stopped: Optional[str]  # why max_error_rate stopped it, else None
    wall_seconds: float  # from the start to the end of Ray's use (teardown included)
    timeline: list  # [seconds, rows written this run] per committed piece (run/progress.py)


@dataclass(frozen=True)
class Job:
    mode: str  # in the output's fingerprint: an output is finished by the job (and mode) that started it
    preflight: Callable[[Optional[Lease]], Checklist]  # the job's checks; with a lease, takes it; .shards: the input
    settings: Callable[[], dict]  # the settings that change its output (after the preflight: the model is known)
    # (rows to do as a dataset, their schema: the shards', with `id` where the reader adds it) -> rows to write
    stages: Callable[[object, pa.Schema], object]
    summary_columns: tuple[list[str], tuple[str, ...]]  # (columns the summary reads, those read where present)
    summarize: Callable[[Iterable[pa.RecordBatch], RunFacts], dict]
    add_id: bool  # the reader adds `id` where the input has none (labeling); a judge's input has its ids
    status_column: str = "status"  # what progress and max_error_rate count
    metrics: bool = False  # Ray's metrics export (the pool's engine.log_metrics)
    after_summary: Optional[Callable[[dict, object, str], None]] = None  # side files: (summary, out_fs, out_root)


def live_progress_bars() -> None:
    """On a terminal, Ray Data's live bars are the run's progress display; elsewhere (a log, `ray job
    logs`, a pipe) they would be dumped as hundreds of log lines, so they are off and the job's own
    progress line (every progress_interval_s) says how far it is."""
    import sys

    import ray

    ray.data.DataContext.get_current().enable_progress_bars = sys.stdout.isatty()
    logging.getLogger("ray.data").setLevel(logging.WARNING if sys.stdout.isatty() else logging.ERROR)


def report(fs, root: str, path: str, mode: str, summary: dict, settings: dict) -> str | None:
    """The report's path, or None when it could not be written: the labels are written and counted, so
    a report that fails (a plotting library's error, say) is said in one line and the run still
    succeeds; `jobs/report.py input.path=...` writes it later. Otherwise a rerun would find nothing to
    do and fail at the same place, for good."""
    try:
        return write_report(fs, root, path, mode, summary, settings)
    except Exception as e:  # noqa: BLE001 - any failure of the report, named; never the run's
        print(f"warning: the report was not written ({type(e).__name__}: {e}); the output is complete: "
              f"write it with jobs/report.py input.path={path}", flush=True)
        return None


def run_job(config, job: Job) -> dict:
    """Runs a job over the shards of `config.input.path` into `config.output.path` and returns its
    summary (also `_summary.json`). A rerun into the same output continues where the last one
    stopped. Raises what the preflight raises (exit 2), ErrorRateExceeded past max_error_rate,
    LeaseLost when another run took the output over; the lease is released and Ray stopped either way."""
    started = time.time()
    out_fs, out_root = storage.filesystem(config.output.path, config.s3)
    lease = Lease(out_fs, out_root, config.run.id, heartbeat_s=config.lease.heartbeat_s,
                  stale_after_s=config.lease.stale_after_s)
    try:
        shards = job.preflight(lease).shards
        settings = job.settings()
        fingerprint = output.fingerprint(settings, list(zip(shards.names, shards.rows)), job.mode)
        in_fs, _ = storage.filesystem(config.input.path, config.s3)

        def execute(todo, progress) -> None:
            start_ray(config.ray, metrics=job.metrics)
            live_progress_bars()
            add_id = job.add_id and "id" not in shards.schema.names
            schema = shards.schema.append(pa.field("id", pa.string())) if add_id else shards.schema
            ds = job.stages(read_todo(todo, in_fs, add_id), schema)
            write_and_report(ds, config, out_fs, out_root, lease, progress, status_column=job.status_column)

        already, stopped, timeline = continue_output(config, shards, fingerprint, out_fs, out_root, execute)
        stop_ray()  # before the summary: nothing the engines print on their way out comes after it
        facts = RunFacts(shards, already, stopped, time.time() - started, timeline)
        summary = job.summarize(storage.read_columns(out_fs, out_root, *job.summary_columns), facts)
        if not stopped and summary["rows"] == shards.num_rows:  # a finished run's report, beside its summary
            summary["report"] = report(out_fs, out_root, config.output.path, job.mode, summary, settings)
        storage.write_json(out_fs, posixpath.join(out_root, storage.SUMMARY_FILE), summary)
        if job.after_summary is not None:
            job.after_summary(summary, out_fs, out_root)
        if stopped:
            raise ErrorRateExceeded(stopped)
        if summary["rows"] != shards.num_rows:  # the output protocol's promise: every row once
            raise RuntimeError(f"{shards.num_rows} input rows but {summary['rows']} output rows in {config.output.path}")
        return summary
    finally:
        lease.release()
        stop_ray()
