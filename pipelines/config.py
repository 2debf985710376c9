"""The configuration machinery every job shares: typed schemas (dataclasses) behind omegaconf.

`conf/base.yaml` <- `conf/NAME.yaml` <- `key=value` overrides for the labeling job (its schema:
pipelines/label/config.py); the schema's defaults <- overrides for the data jobs (pipelines/recipe/
config.py). Everything is checked before any work: unknown keys, wrong types, missing required
values, out-of-range choices and numbers all stop the job with a message naming the key (exit 2).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import inspect
import json
import re
import typing
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.core.prompts import PROMPT_FORMATS
from pipelines.core.parsing import PARSERS
from pipelines.core.scoring import RULES as SCORING_RULES


class ConfigError(ValueError):
    """A configuration problem the user must fix; the message says which key and how."""


@dataclass
class InputConfig:
    path: str = MISSING  # a local directory or file, or an s3:// prefix, holding parquet shards


# Checked in every job's config that has the key (the label, judge, prepare and augment schemas differ).
SOURCE_FORMATS = ("json", "parquet", "csv", "bfcl")  # bfcl: the leaderboard's own files (jobs/prepare.py)
# A model's engine pool: at the top of the labeling config, under `judge.` in the judge's.
_ENGINE_POSITIVE = (
    "prompt.concurrency", "prompt.batch_size", "generation.max_tokens", "generation.max_model_len",
    "engine.replicas", "engine.tensor_parallel_size", "engine.batch_size", "engine.max_concurrent_batches",
    "engine.max_num_seqs", "engine.max_num_batched_tokens",
)
_CHOICES = {"prompt.format": PROMPT_FORMATS, "engine.device": ("gpu", "cpu"), "judge.engine.device": ("gpu", "cpu"),
            "resume": ("auto", "overwrite"), "input.format": (None, *SOURCE_FORMATS), "export.format": ("xlam", "openai"),
            "export.file_format": ("jsonl", "parquet"), "scoring.rules": SCORING_RULES,
            "validation.parser": tuple(PARSERS), "export.decontaminate_match": ("query", "query_and_tools")}
_SHARES = ("max_error_rate", "augment.irrelevance.fraction", "augment.mask.probability", "export.min_agreement")  # in [0, 1] or null
_POSITIVE = (
    *_ENGINE_POSITIVE, *(f"judge.{key}" for key in _ENGINE_POSITIVE),
    "validation.max_output_chars", "validation.max_depth", "output.rows_per_file", "output.rows_per_shard",
    "lease.heartbeat_s", "row_time_budget_s", "export.decontaminate_ngram",
)  # or null, where the schema allows it


# The profiles ship inside the package (an installed wheel has them too); a checkout's `conf/` links here.
CONF_DIR = Path(str(importlib.resources.files("pipelines") / "conf"))


def profile_name(args: list[str], default: str = "local") -> str:
    """The `conf=NAME` argument, every job's one way to pick a profile."""
    return next((a.split("=", 1)[1] for a in args if a.startswith("conf=")), default)


def load_profile(schema: type, args: list[str], conf_dir: Path, base: tuple[Path, ...] = ()):
    """Every job's command line: `[conf=NAME] [key=value ...]` -> the schema's defaults <- the `base`
    files <- `conf_dir/NAME.yaml` (default `local`) <- the overrides, checked."""
    name = profile_name(args)
    overrides = check_overrides([a for a in args if not a.startswith("conf=")])
    profiles = sorted(p.stem for p in conf_dir.glob("*.yaml") if p.stem != "base")
    if name not in profiles:
        raise ConfigError(f"conf={name}: no {conf_dir / (name + '.yaml')}; profiles: {', '.join(profiles)}")
    relative = Path("conf", conf_dir.relative_to(CONF_DIR)) if conf_dir.is_relative_to(CONF_DIR) else conf_dir
    config = build_config(schema, [*base, conf_dir / f"{name}.yaml"], overrides,
                          f"profile conf={name}; set them in {relative}/{name}.yaml or on the command line")
    check_keys(config)
    return config


def profile_loader(schema: type, name: str):
    """A data job's `load` for cli.data_job_main: its profiles in conf/<name>/, over conf/<name>/base.yaml if any."""
    conf_dir = CONF_DIR / name
    base = (conf_dir / "base.yaml",) if (conf_dir / "base.yaml").exists() else ()
    return functools.partial(load_profile, schema, conf_dir=conf_dir, base=base)


def check_overrides(args: list[str]) -> list[str]:
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value (for example input.path=data/sample)")
    return args


def build_config(schema: type, files: list[Path], overrides: list[str], hint: str):
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


def check_keys(config) -> None:
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


# ..._env keys name the environment variable that holds a secret (engine.endpoint.api_key_env): shown
_SECRET = re.compile(r"^(?!.*_env$).*(secret|password|passwd|credential|access_key|api_key|session_token|(^|_)token$)",
                     re.I)
REDACTED = "***"


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")  # user:password@ in any URL


def redact(obj: Any) -> Any:
    """A copy of a plain config tree with every secret-looking key's value replaced (engine_kwargs'
    `hf_token` among them) and the credentials inside URLs (`https://user:pass@host`) masked: the one
    redaction of everything that writes settings out (the printed config, _config.yaml, the manifest's
    fingerprint, messages naming a URL)."""
    if isinstance(obj, dict):
        return {k: (REDACTED if _SECRET.search(str(k)) and v is not None else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return _URL_CREDENTIALS.sub(f"{REDACTED}@", obj)
    return obj


def to_plain(config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config))


def to_yaml(config) -> str:
    """The resolved config with secrets redacted: what is printed and saved beside the output."""
    return OmegaConf.to_yaml(OmegaConf.create(redact(to_plain(config))))


# ----------------------------------------------------------------------------------- --help

HELP_FLAGS = ("-h", "--help")


def key_help(schema: type, base: tuple[Path, ...] = ()) -> str:
    """Every key of a job's schema with its default (the schema's, under the `base` files) and its
    meaning (the comment the schema gives it): what `--help` prints. The same schema is what
    docs/configuration.md is checked against (tests/test_docs.py)."""
    defaults = OmegaConf.merge(OmegaConf.structured(schema), *(OmegaConf.load(f) for f in base))
    lines = []
    for key, meaning in _schema_keys(schema):
        value = OmegaConf.select(defaults, key, throw_on_missing=False)
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        shown = "(required)" if value == "???" else json.dumps(value)
        lines.append(f"  {key} = {shown}" + (f"\n      {meaning}" if meaning else ""))
    return "\n".join(lines)


def _schema_keys(schema: type, prefix: str = ""):
    """(dotted key, meaning) of every leaf of a config dataclass, in declaration order."""
    hints = typing.get_type_hints(schema)
    meanings = _field_comments(schema)
    for f in dataclasses.fields(schema):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            yield from _schema_keys(kind, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", meanings.get(f.name, "")


_FIELD = re.compile(r"^\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$")


def _field_comments(schema: type) -> dict[str, str]:
    """A dataclass's fields -> the comment on the field's line, else the comment lines just above it."""
    try:
        lines, _ = inspect.getsourcelines(schema)
    except (OSError, TypeError):
        return {}
    out, above = {}, []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        found = _FIELD.match(line.rstrip("\n"))
        if found:
            out[found.group(1)] = found.group(2) or " ".join(above)
        above = []
    return out
