"""The labeling job's configuration: its schema, its profiles (`conf/base.yaml` <- `conf/NAME.yaml`
<- `key=value` overrides, loaded and checked by pipelines/config.py), and the one definition of the
settings that change labels (`label_settings`).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import MISSING

from pipelines.cluster import RayConfig
from pipelines.config import CONF_DIR, ConfigError, InputConfig, redact, check_keys, load_profile, profile_name, to_plain
from pipelines.core.prompts import CHAT_TEMPLATE
from pipelines.core.scoring import ScoringConfig
from pipelines.core.validation import VALIDATION_VERSION, ValidationConfig
from pipelines import engines
from pipelines.engines.config import EngineConfig, check_engine
from pipelines.execution.config import ExecutionConfig, check_execution, execution_settings
from pipelines.run.config import (GenerationConfig, LeaseConfig, ModelConfig, OutputConfig, RunConfig, new_run_id,
                                  settings_hash)
from pipelines.storage import S3Config


@dataclass
class PromptConfig:
    format: str = MISSING  # see conf/base.yaml
    concurrency: int = 1  # CPU actors building prompts
    num_cpus: float = 1.0
    batch_size: int = 256
    resources: dict[str, float] = field(default_factory=dict)  # Ray custom resources, to pin prompt actors to nodes


@dataclass
class MaskNamesConfig:
    # Robustness check: prompt with function and parameter names masked (random strings), then map
    # the calls back and judge them against the original tools and answers.
    names: bool = False


@dataclass
class LabelConfig:
    input: InputConfig = field(default_factory=InputConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    s3: S3Config = field(default_factory=S3Config)
    ray: RayConfig = field(default_factory=RayConfig)
    dry_run: bool = False  # build and write prompts; load no model
    resume: str = "auto"  # auto: continue an earlier run of the same settings; overwrite: start over
    max_error_rate: Optional[float] = None  # stop when bad_input + engine_error + row_error rows pass this share
    # a row still in the prompt or annotate stage after this many seconds is stopped and written as row_error
    # (pipelines/run/guard.py); null: no limit
    row_time_budget_s: Optional[float] = 10.0
    progress_interval_s: float = 30.0  # seconds between progress lines
    run: RunConfig = field(default_factory=RunConfig)
    mask: MaskNamesConfig = field(default_factory=MaskNamesConfig)
    # Run each label's calls (and its gold's) on real implementations: the exec_* columns (docs/output.md)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    seed: int = 0  # draws of mask.names, per row id
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    preflight: bool = False  # run the preflight checks only: a checklist, exit 0 or 2


class Mode(str, enum.Enum):
    """What a run does with each row, and so where a row's text comes from. Part of the manifest's
    fingerprint: an output is finished in the mode that started it."""

    GENERATE = "generate"  # the engine writes the text (jobs/label.py)
    REVALIDATE = "revalidate"  # the input's raw_output column is the text (jobs/validate.py)
    DRY_RUN = "dry_run"  # prompts only: no text (dry_run=true)

    @classmethod
    def of(cls, config: "LabelConfig", revalidate: bool) -> "Mode":
        return cls.REVALIDATE if revalidate else (cls.DRY_RUN if config.dry_run else cls.GENERATE)


def load_config(args: list[str], conf_dir: Path = CONF_DIR) -> LabelConfig:
    """`["conf=NAME", "key=value", ...]` -> a checked LabelConfig: conf/base.yaml <- conf/NAME.yaml <- overrides."""
    if profile_name(args, default=None) is None:
        joining = next((a.split("=", 1)[1] for a in args if a.startswith("ray.address=")), None) or os.environ.get(
            "RAY_ADDRESS")
        if joining:
            raise ConfigError(f"this run joins the Ray cluster at {joining} but names no profile: pass conf=prod (or "
                              "conf=local to run the demo model there on purpose)")
    config = load_profile(LabelConfig, args, conf_dir, base=(conf_dir / "base.yaml",))
    _check(config)
    if config.run.id is None:
        config.run.id = new_run_id()
    return config


def _check(config: LabelConfig) -> None:
    check_keys(config)
    if config.generation.max_tokens >= config.generation.max_model_len:
        raise ConfigError(
            f"generation.max_tokens ({config.generation.max_tokens}) must be below "
            f"generation.max_model_len ({config.generation.max_model_len}): nothing would be left for the prompt"
        )
    if config.lease.stale_after_s < 3 * config.lease.heartbeat_s:
        raise ConfigError(f"lease.stale_after_s ({config.lease.stale_after_s}) must be at least 3 x lease.heartbeat_s "
                          f"({config.lease.heartbeat_s}): a live run must not look dead after one late heartbeat")
    generation = config.generation
    if generation.samples < 1:
        raise ConfigError(f"config key 'generation.samples' must be 1 or more (the label alone), not {generation.samples}")
    if generation.sample_temperature <= 0:
        raise ConfigError("config key 'generation.sample_temperature' must be above 0: samples at 0 would all be the label")
    if not 0 < generation.sample_top_p <= 1:
        raise ConfigError("config key 'generation.sample_top_p' must be in (0, 1]")
    check_engine(config.engine, generation)
    check_execution(config.execution)
    if (config.prompt.format == CHAT_TEMPLATE and engines.kind_of(config.engine).parses_calls(config.engine)
            and config.validation.parser != "json"):
        raise ConfigError("engine.endpoint.tool_choice=auto writes the calls the server parsed as a JSON list: set "
                          f"validation.parser=json (not {config.validation.parser}), or engine.endpoint.tool_choice=none "
                          "to read the model's own text with that parser")


def label_settings(config: LabelConfig, model: str | None) -> dict:
    """The settings that change labels, defined once: the model (as resolved: a local path made
    absolute), the prompt format, generation, validation with its version, the scoring rules, engine_kwargs (passed to
    vLLM as is, so they may), and the name masking with its seed. Not paths, run ids, scaling or
    scheduling. `config_hash` is their hash; the manifest's fingerprint adds the run's mode and the
    input listing (pipelines/run/output.py)."""
    plain = to_plain(config)
    return redact({  # written into the manifest: no token of engine_kwargs, no password of a URL
        "model": model,
        "prompt_format": plain["prompt"]["format"],
        "generation": plain["generation"],
        "validation": {**plain["validation"], "version": VALIDATION_VERSION},
        "scoring": plain["scoring"],
        "engine_kwargs": plain["engine"]["engine_kwargs"],
        "mask": {**plain["mask"], "seed": plain["seed"]},
        # only when on: the fingerprints of runs without execution stay what they were (resume)
        **({"execution": execution_settings(config.execution)} if config.execution.enabled else {}),
    })


def config_hash(config: LabelConfig, model: str | None) -> str:
    """The hash of `label_settings`: rows labeled the same way share it, across runs and partitions."""
    return settings_hash(label_settings(config, model))

