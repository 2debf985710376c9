"""The judge job's configuration: conf/judge/base.yaml <- conf/judge/NAME.yaml <- `key=value`.

The judge's own engine pool and generation settings live under `judge.*`, in the same shapes as the
labeling job's (`judge.model`, `judge.engine`, `judge.generation`), so a labeling model can serve as
the judge with the same values. The settings that change verdicts are defined once, in `judge_settings`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipelines.cluster import RayConfig
from pipelines.config import CONF_DIR, ConfigError, InputConfig, redact, load_profile, to_plain
from pipelines.core.judging import TemplateError, check_template
from pipelines.engines.config import EngineConfig, check_engine
from pipelines.run.config import GenerationConfig, LeaseConfig, ModelConfig, OutputConfig, RunConfig, new_run_id
from pipelines.storage import S3Config

JUDGE_CONF_DIR = CONF_DIR / "judge"
TEMPLATE_DIR = JUDGE_CONF_DIR / "templates"


@dataclass
class JudgePromptConfig:
    template: str = "judge-v1"  # conf/judge/templates/NAME.txt; a new version is a new file
    concurrency: int = 1  # CPU actors building judge prompts
    num_cpus: float = 1.0
    batch_size: int = 256
    resources: dict[str, float] = field(default_factory=dict)


@dataclass
class JudgeSettings:
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: JudgePromptConfig = field(default_factory=JudgePromptConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)  # samples and logprobs stay off
    engine: EngineConfig = field(default_factory=EngineConfig)


@dataclass
class JudgeConfig:
    input: InputConfig = field(default_factory=InputConfig)  # a finished output of jobs/label.py or jobs/validate.py
    output: OutputConfig = field(default_factory=OutputConfig)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    s3: S3Config = field(default_factory=S3Config)
    ray: RayConfig = field(default_factory=RayConfig)
    resume: str = "auto"  # auto: continue an earlier run of the same settings; overwrite: start over
    max_error_rate: Optional[float] = None  # stop when the judge's engine_error rows pass this share
    row_time_budget_s: Optional[float] = 10.0  # as the labeling job's: a row past it is written as row_error
    progress_interval_s: float = 30.0
    run: RunConfig = field(default_factory=RunConfig)
    lease: LeaseConfig = field(default_factory=LeaseConfig)


def load_judge_config(args: list[str], conf_dir: Path = JUDGE_CONF_DIR) -> JudgeConfig:
    config = load_profile(JudgeConfig, args, conf_dir, base=(conf_dir / "base.yaml",))
    generation = config.judge.generation
    if generation.samples != 1 or generation.logprobs:
        raise ConfigError("judge.generation.samples must be 1 and judge.generation.logprobs false: a verdict is "
                          "one greedy answer")
    check_engine(config.judge.engine, generation, prefix="judge.")
    if generation.max_tokens >= generation.max_model_len:
        raise ConfigError(f"judge.generation.max_tokens ({generation.max_tokens}) must be below "
                          f"judge.generation.max_model_len ({generation.max_model_len})")
    load_template(config.judge.prompt.template)
    if config.run.id is None:
        config.run.id = new_run_id()
    return config


def load_template(name: str) -> str:
    """The text of conf/judge/templates/NAME.txt, checked; ConfigError naming the key otherwise."""
    path = TEMPLATE_DIR / f"{name}.txt"
    known = sorted(p.stem for p in TEMPLATE_DIR.glob("*.txt"))
    if "/" in name or not path.is_file():
        raise ConfigError(f"judge.prompt.template={name!r}: no {path}; templates: {', '.join(known)}")
    text = path.read_text()
    try:
        check_template(text)
    except TemplateError as e:
        raise ConfigError(f"judge.prompt.template={name!r} ({path}): {e}") from None
    return text


def judge_settings(config: JudgeConfig, model: str, template: str) -> dict:
    """The settings that change verdicts: the judge model (resolved), the template's name and text
    (`template`, as load_template read it), generation, and engine_kwargs. Not paths, run ids,
    scaling or scheduling."""
    plain = to_plain(config.judge)
    return redact({  # written into the manifest: no token of engine_kwargs, no password of a URL
        "judge_model": model,
        "template": {"name": config.judge.prompt.template, "sha256": hashlib.sha256(template.encode()).hexdigest()},
        "generation": plain["generation"],
        "engine_kwargs": plain["engine"]["engine_kwargs"],
    })
