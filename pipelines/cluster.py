"""Joining a Ray cluster or starting a local one: shared by every job that runs on Ray."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional


@dataclass
class RayConfig:
    address: Optional[str] = None  # "auto": a running local cluster; None: RAY_ADDRESS if set, else a new local one
    num_cpus: Optional[int] = None  # a new local instance only


def start_ray(ray_config: RayConfig) -> None:
    """Joins the cluster named by ray.address or RAY_ADDRESS (set by `ray job submit`), else starts a local one."""
    import ray

    address = ray_config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, ignore_reinit_error=True)
    else:
        ray.init(address="local", num_cpus=ray_config.num_cpus, ignore_reinit_error=True)
