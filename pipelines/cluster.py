"""Joining a Ray cluster or starting a local one: shared by every job that runs on Ray."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Optional


@dataclass
class RayConfig:
    address: Optional[str] = None  # "auto": a running local cluster; None: RAY_ADDRESS if set, else a new local one
    num_cpus: Optional[int] = None  # a new local instance only


def joins_cluster(ray_config: RayConfig) -> bool:
    """Whether the job joins a running cluster (ray.address or RAY_ADDRESS) rather than starting Ray here."""
    return bool(ray_config.address or os.environ.get("RAY_ADDRESS"))


def start_ray(ray_config: RayConfig, metrics: bool = False) -> str:
    """Joins the cluster named by ray.address or RAY_ADDRESS (set by `ray job submit`), else starts a
    local one; says which. A local instance the job starts for itself runs without what the job does
    not use: no dashboard and no metrics export, unless `metrics` (engine.log_metrics) asks for them."""
    import ray

    global _connected_here
    if ray.is_initialized():
        return "connected"
    _connected_here = True
    if joins_cluster(ray_config):
        address = ray_config.address or os.environ["RAY_ADDRESS"]
        ray.init(address=address)
        return f"joined the cluster at {address}"
    lean = {} if metrics else {"include_dashboard": False, "_system_config": {"enable_metrics_collection": False}}
    # The workers' output (Ray's, Ray Data's and vLLM's lines: hundreds a run) stays in the session's log
    # files, named here, instead of the terminal; a job that joins a cluster keeps Ray's default, so that
    # `ray job logs` shows them.
    ray.init(address="local", num_cpus=ray_config.num_cpus, log_to_driver=False, logging_level=logging.WARNING, **lean)
    return (f"started a local instance ({ray_config.num_cpus or os.cpu_count()} CPUs{'' if metrics else ', no dashboard'}); "
            f"Ray's and vLLM's logs: {logs_dir()}")


def logs_dir() -> str:
    """This Ray session's log folder (workers' stdout and stderr, Ray Data's log)."""
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    return node.get_logs_dir_path() if node is not None else "/tmp/ray/session_latest/logs"


_connected_here = False  # whether this process's Ray session is the job's (start_ray made it) or its caller's


def stop_ray(timeout_s: float = 60.0) -> None:
    """Ends the run's use of Ray in order, before its summary: waits until the run's stage actors have
    exited (an engine actor stops vLLM on its way out, and prints as it does), then disconnects,
    stopping the local instance the job started. A Ray session the caller started before the job
    (pipelines.api from a notebook) is left as it was. Nothing the run's processes print comes after the
    summary, and the teardown counts in the run's wall time."""
    import ray
    from ray._private import state

    global _connected_here
    if not ray.is_initialized() or not _connected_here:  # a session the caller owns (a notebook's) stays
        return
    _connected_here = False
    job_id = ray.get_runtime_context().get_job_id()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        actors = state.actors(job_id=ray.JobID.from_hex(job_id)).values()
        # Ray Data's map workers (the prompt and engine actors); its own bookkeeping actors live on.
        if all(a["State"] == "DEAD" for a in actors if "MapWorker" in a["ActorClassName"]):
            break
        time.sleep(0.1)
    # Ray Data's threads of a finished execution (its scheduling loop, its metadata fetcher) can still be
    # winding down; one that calls into Ray after the shutdown ends the process on the spot ("the core
    # worker has already been shutdown"), before the summary: seen once in the suite, exit 1 after a
    # complete run. Wait for them first.
    for thread in threading.enumerate():
        if thread.name.startswith(RAY_DATA_THREADS):
            thread.join(max(0.0, deadline - time.monotonic()))
    ray.shutdown()


RAY_DATA_THREADS = ("StreamingExecutor-", "ray-data-metadata-prefetch")  # Ray Data 2.60's names
