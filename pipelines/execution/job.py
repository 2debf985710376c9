"""The re-execution job (`jobs/execute.py`, `hammer-execute`): a finished labeling output -> the same
rows with the exec_* columns, without a model, on the run skeleton (exactly once and resumable, as
every job over shards). Its config: conf/execute/base.yaml <- conf/execute/NAME.yaml <- key=value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipelines.checklist import Checklist
from pipelines.cluster import RayConfig
from pipelines.config import CONF_DIR, ConfigError, InputConfig, load_profile
from pipelines.execution.config import ExecutionConfig, check_execution, execution_settings
from pipelines.execution.stage import ExecuteStage
from pipelines.execution.summary import SUMMARY_COLUMNS, ExecCounter
from pipelines.run.config import LeaseConfig, OutputConfig, RunConfig, new_run_id
from pipelines.run.job import Job, RunFacts, run_job
from pipelines.run.lease import Lease
from pipelines.run.preflight import check_finished_input, check_output
from pipelines.storage import S3Config

EXECUTE_CONF_DIR = CONF_DIR / "execute"
MODE = "execute"  # in the manifest's fingerprint
REQUIRED_COLUMNS = ("id", "status", "calls")


@dataclass
class ExecuteConfig:
    input: InputConfig = field(default_factory=InputConfig)  # a finished output of jobs/label.py (or validate.py)
    output: OutputConfig = field(default_factory=OutputConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    s3: S3Config = field(default_factory=S3Config)
    ray: RayConfig = field(default_factory=RayConfig)
    resume: str = "auto"  # auto: continue an earlier run of the same settings; overwrite: start over
    max_error_rate: Optional[float] = None  # stop when rows the job could not handle (exec_status row_error) pass this share
    progress_interval_s: float = 30.0
    run: RunConfig = field(default_factory=RunConfig)
    lease: LeaseConfig = field(default_factory=LeaseConfig)


def load_execute_config(args: list[str], conf_dir: Path = EXECUTE_CONF_DIR) -> ExecuteConfig:
    config = load_profile(ExecuteConfig, args, conf_dir, base=(conf_dir / "base.yaml",))
    if not config.execution.enabled:
        raise ConfigError("execution.implementations is empty: name the tools' implementations (a module, "
                          "module:Class, or bfcl for the leaderboard's environments)")
    check_execution(config.execution)
    if config.run.id is None:
        config.run.id = new_run_id()
    return config


def run(config: ExecuteConfig) -> dict:
    return run_job(config, execute_job(config))


def execute_job(config: ExecuteConfig) -> Job:
    def summarize(batches, facts: RunFacts) -> dict:
        counter = ExecCounter()
        for batch in batches:
            counter.add(batch.to_pydict())
        return {"run_id": config.run.id, "input": config.input.path, "output": config.output.path,
                "input_rows": facts.shards.num_rows, "rows_before_this_run": facts.rows_before_this_run,
                "stopped": facts.stopped, **counter.to_dict(), "wall_seconds": round(facts.wall_seconds, 3),
                "timeline": facts.timeline}

    return Job(mode=MODE, preflight=lambda lease: preflight(config, lease),
               settings=lambda: {"execution": execution_settings(config.execution)},
               stages=lambda ds, schema: execute_plan(ds, config.execution),
               summary_columns=(SUMMARY_COLUMNS, ()), summarize=summarize, add_id=False,
               status_column="exec_status")


def execute_plan(ds, execution: ExecutionConfig):
    """The execution stage on its actor pool (each actor one forkserver, one row's worker at a time)."""
    import ray

    return ds.map_batches(ExecuteStage, batch_format="pyarrow", batch_size=64,
                          compute=ray.data.ActorPoolStrategy(size=execution.concurrency),
                          fn_constructor_kwargs={"execution": execution})


def preflight(config: ExecuteConfig, lease: Lease | None) -> Checklist:
    print("preflight:", flush=True)
    checks = Checklist()
    check_finished_input(config, checks, REQUIRED_COLUMNS)
    check_output(config, checks, lease)
    checks.ok("execution", f"implementations import: {', '.join(config.execution.implementations)}")
    checks.raise_if_failed()
    return checks
