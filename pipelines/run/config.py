"""The settings every job over shards shares (labeling, judging): where its output goes, the model a
pool loads, how it generates, the run's id and date, the output's lease; and the short hash of a
job's settings that change its rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING


@dataclass
class OutputConfig:
    path: str = MISSING  # a local directory or an s3:// prefix
    rows_per_file: int = 20_000  # rows per output file (fewer in the last ones); also the unit of resume


@dataclass
class ModelConfig:
    source: str = MISSING  # built:NAME (a model the job builds), a model id, a local directory, or an s3:// prefix
    trust_remote_code: bool = False


@dataclass
class GenerationConfig:
    # Values live in conf/base.yaml: they are the labeling contract, changed there or per run.
    max_tokens: int = MISSING  # new tokens per row; an output cut there says `truncated`
    temperature: float = MISSING  # 0: greedy
    max_model_len: int = MISSING  # prompt + output; longer prompts are marked prompt_too_long
    constrained: bool = False  # structured outputs: only a JSON list of this row's tools' calls can be generated
    # constrained only: the grammar allows free whitespace between JSON tokens, as vLLM's does by default;
    # false forbids it (compact JSON): half the tokens, but other labels (docs/quality.md, "Compact JSON")
    json_whitespace: bool = True
    samples: int = 1  # outputs per row: the greedy label and samples - 1 sampled ones, for agreement
    sample_temperature: float = 0.7  # of the sampled outputs
    sample_top_p: float = 1.0  # of the sampled outputs
    logprobs: bool = False  # the label's token log-probabilities, reduced to mean and min


@dataclass
class RunConfig:
    id: Optional[str] = None  # recorded in every row; None: a new one, from the start time
    # The partition a scheduled run labels, e.g. 2026-11-24; paths take it as ${run.date}.
    date: Optional[str] = None


@dataclass
class LeaseConfig:
    # One run per output at a time (pipelines/run/lease.py): the holder renews every heartbeat_s; a lease
    # without a heartbeat for stale_after_s is taken over by the next run.
    heartbeat_s: float = 10.0
    stale_after_s: float = 60.0


def new_run_id() -> str:
    """A run id from the start time, for runs that name none."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def settings_hash(settings: dict) -> str:
    """A short hash of a job's settings that change its rows (the `*config_hash` columns)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
