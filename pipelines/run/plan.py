"""The parts of a plan every job over shards shares (labeling, judging), in the order the run
skeleton (job.py) uses them: continue the output (what is left to do), read it, build prompts on a
CPU actor pool, and, after the job's engine and annotate stages, write the pieces and report progress.

A job plugs in its own prompt stage, its annotator and its columns (as ray.data.llm's processor
takes stages); the engine stage between is pipelines/engines/.
"""

from __future__ import annotations

import json
import posixpath
import sys
from typing import Callable

from pipelines import storage
from pipelines.config import to_yaml
from pipelines.run import output, stages
from pipelines.run.lease import Lease
from pipelines.run.progress import ErrorRateExceeded, Progress


Todo = list[tuple[str, str, list]]  # (shard path, shard name, its rows already done as ranges)


def continue_output(config, shards: storage.Shards, fingerprint: dict, out_fs, out_root: str,
                    execute: Callable[[Todo, Progress], None]) -> tuple[int, str | None, list]:
    """The part of a run every job over shards shares (labeling, judging): opens the output for this
    fingerprint (output.open_output), saves the config beside it, and runs `execute` over the rows
    not yet written. Returns the rows written before this run, why max_error_rate stopped it (or None),
    and the progress timeline ([seconds, rows written] per committed piece)."""
    done = output.open_output(out_fs, out_root, fingerprint, config.resume)
    storage.write_text(out_fs, posixpath.join(out_root, output.CONFIG_FILE), to_yaml(config))
    todo = [(path, name, done.get(name, [])) for path, name, rows in zip(shards.paths, shards.names, shards.rows)
            if output.count(done.get(name, [])) < rows]
    already = sum(output.count(ranges) for ranges in done.values())
    stopped, progress = None, Progress(shards.num_rows, already, config.progress_interval_s)
    if todo:
        if already:
            print(f"resuming: {already} of {shards.num_rows} rows are already written; {len(todo)} shard(s) to go")
        try:
            execute(todo, progress)
        except ErrorRateExceeded as e:
            stopped = str(e)
        output.remove_tmp(out_fs, out_root)
    elif shards.num_rows == 0:
        print(f"nothing to do: the input under {config.input.path} has no rows")
    else:
        print(f"nothing to do: all {shards.num_rows} input rows are already in {config.output.path}")
    return already, stopped, progress.timeline


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


def write_and_report(ds, config, out_fs, out_root: str, lease: Lease, progress: Progress,
                     status_column: str = "status") -> None:
    """The plan's last stage and its driver loop: commit pieces, print progress, stop past max_error_rate
    or when the lease is lost (lease.raise_if_lost)."""
    ds = ds.map_batches(stages.write_pieces, batch_format="pyarrow", batch_size=config.output.rows_per_file,
                        fn_kwargs={"filesystem": out_fs, "root": out_root, "lease_token": lease.token,
                                   "status_column": status_column})
    live = sys.stdout.isatty()  # Ray Data's bars show the progress (run/job.py); the line comes at the end
    printed_at = None  # the rows the last line counted: the closing line only says something new
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        progress.add_batch(batch.to_pydict())
        if progress.due() and not live:
            printed_at = progress.rows
            print(progress.line(), flush=True)
        progress.check_error_rate(config.max_error_rate)
        lease.raise_if_lost()
    if progress.rows != printed_at:
        print(progress.line(), flush=True)
