"""The checks every job needs before any model loads, each failure naming the number or the path
and what to change: the checklist, the output (it takes a probe object; no live run holds it: the
lease), and the engine pool through its kind (pipelines/engines/: the model and the engine nodes,
or the server). A job's own checks, its input and sizing, are in its package."""

from __future__ import annotations

import posixpath
import uuid

from pipelines import engines, storage
from pipelines.checklist import Checklist
from pipelines.run import output
from pipelines.run.lease import Lease, LeaseHeld


def check_output(config, checks: Checklist, lease: Lease | None) -> None:
    """output.path takes a probe object; with a lease, takes it (else says who holds it). Any job's config
    with `output`, `s3`, `run` and `lease`."""
    path = config.output.path
    source = getattr(config, "input", None)
    if source is not None and storage.covers(path, source.path):
        checks.fail("output", f"output.path {path!r} is input.path {source.path!r} or a folder holding it: the job "
                              "would write among its input, and resume=overwrite would delete it; choose another "
                              "output.path")
        return
    try:
        fs, root = storage.filesystem(path, config.s3)
        if not path.startswith("s3://"):  # on S3 there are no folders (and makedirs would create a missing bucket)
            fs.makedirs(root, exist_ok=True)
        probe = posixpath.join(root, f"_preflight-{uuid.uuid4().hex}")
        storage.write_text(fs, probe, "probe\n")
        fs.rm(probe)
    except (OSError, ValueError) as e:  # s3fs: FileNotFoundError for a missing bucket, PermissionError when denied
        checks.fail("output", f"cannot write under output.path {path!r} ({type(e).__name__}: {e}); create the "
                              "bucket or folder, or grant this job's role write access")
        return
    if lease is None:  # preflight=true alone: say who holds it, take nothing
        holder = Lease(fs, root, config.run.id, stale_after_s=config.lease.stale_after_s).holder()
        # The holder's own timestamp, shown only: a run started now decides by watching the record.
        if holder is not None and not (holder.age_s > config.lease.stale_after_s or holder.dead_here):
            checks.fail("output", f"run {holder.run_id!r} on {holder.host} holds output.path {path!r} (heartbeat "
                                  f"{holder.age_s:.0f} s ago); wait for it to end, or choose another output.path")
        else:
            checks.ok("output", f"writable, no live run holds it ({path})")
        return
    try:
        took_over = lease.acquire()
    except LeaseHeld as e:
        checks.fail("output", str(e))
        return
    lease.start_heartbeat()  # now: the checks below take seconds, longer than a short stale_after_s
    checks.ok("output", f"writable; this run holds its lease ({path}){'; ' + took_over if took_over else ''}")


def check_pool(section, ray_config, model: str, checks: Checklist, prefix: str = "",
               sends_tools: bool = False) -> tuple[dict | None, dict | None]:
    """The engine pool's checks, by its kind (engines.EngineKind.check_pool). section: the config
    part with `model`, `engine`, `generation` and `prompt` (`judge` with prefix `judge.`). Returns the
    model's config.json and the engine node's probe where the kind has them."""
    return engines.kind_of(section.engine).check_pool(section, ray_config, model, checks, prefix, sends_tools)


def check_batching(section, checks: Checklist, engine: bool, prefix: str = "") -> None:
    """Rows in flight against what the pool runs at once, for a run that generates (engine)."""
    if engine:
        engines.kind_of(section.engine).check_batching(section, checks, prefix)


def check_finished_input(config, checks: Checklist, required: tuple[str, ...]) -> None:
    """input.path is a finished labeling output holding the `required` columns; its listing becomes
    checks.shards (the jobs that read one: the judge, execution)."""
    try:
        fs, root = storage.filesystem(config.input.path, config.s3)
        output.finished_output(fs, root, "input.path", config.input.path)
        checks.shards = storage.list_shards(fs, root, required)
        checks.ok("input", f"a finished labeling output: {len(checks.shards.paths)} file(s), "
                           f"{checks.shards.num_rows} rows ({config.input.path})")
    except (storage.InputError, OSError) as e:
        checks.fail("input", str(e))
