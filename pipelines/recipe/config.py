"""The data jobs' configuration (jobs/prepare.py, augment.py, export.py, compare.py): schemas with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from pipelines.cluster import RayConfig
from pipelines.config import InputConfig
from pipelines.core.bfcl import CATEGORIES
from pipelines.storage import S3Config


@dataclass
class SourceConfig:
    path: str = MISSING  # a local JSON / JSON Lines / parquet / CSV file or folder, or a hub dataset name
    # json, parquet or csv (None: from the file names); bfcl: the leaderboard's question and possible-answer
    # files, from a BFCL data folder or (input.path=bfcl-eval) the installed bfcl-eval package's
    format: Optional[str] = None
    split: str = "train"  # of a hub dataset


@dataclass
class ShardsOutputConfig:
    path: str = MISSING  # a local directory or an s3:// prefix
    rows_per_shard: int = 10_000


@dataclass
class PrepareSettings:
    drop_bad: bool = False  # false: any bad row stops the job before it writes; true: bad rows are left out
    # with input.format=bfcl: the categories to import (default: every single-turn one this job scores)
    categories: list[str] = field(default_factory=lambda: list(CATEGORIES))


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


@dataclass
class ExportOutputConfig:
    path: str = MISSING  # a local directory or an s3:// prefix; must be empty
    rows_per_file: int = 100_000


@dataclass
class ExportSettings:
    format: str = "xlam"  # xlam: id, query, tools, answers (the labeling job's input); openai: chat records
    file_format: str = "jsonl"  # jsonl or parquet
    statuses: list[str] = field(default_factory=lambda: ["ok", "no_call"])  # labels worth keeping
    min_agreement: Optional[float] = None  # keep rows whose sampled outputs agree at least this much
    require_correct: bool = False  # drop rows scored incorrect against gold (rows without gold stay)
    # drop rows whose calls did not do what the gold's do when run (exec_correct false; rows without a verdict stay)
    require_exec_correct: bool = False
    judge_verdicts: Optional[list[str]] = None  # keep rows a judge gave one of these verdicts (a jobs/judge.py output)
    dedupe: bool = True  # one row per (query, tools): the first
    # Leave out rows whose query overlaps an evaluation set (docs/judge-and-compare.md, "Decontamination")
    decontaminate: bool = False
    # the evaluation sets: `bfcl` (every question of the installed bfcl-eval), or parquet/JSON/JSON Lines
    # files or folders of rows with a `query` (or BFCL's `question`) and optional `tools` (or `function`)
    eval_sets: list[str] = field(default_factory=lambda: ["bfcl"])
    decontaminate_ngram: int = 8  # words per n-gram; a shorter query matches by its whole text only
    decontaminate_match: str = "query"  # query, or query_and_tools: an overlap counts with the same function names


@dataclass
class ExportConfig:
    input: InputConfig = field(default_factory=InputConfig)  # a finished output of jobs/label.py, validate.py, judge.py or compare.py
    output: ExportOutputConfig = field(default_factory=ExportOutputConfig)
    export: ExportSettings = field(default_factory=ExportSettings)
    s3: S3Config = field(default_factory=S3Config)


@dataclass
class RunsConfig:
    paths: list[str] = MISSING  # two or more finished outputs of jobs/label.py, jobs/validate.py or jobs/judge.py
    names: list[str] = field(default_factory=list)  # one per path, for the summary; default: each path's last part


@dataclass
class CompareOutputConfig:
    path: str = MISSING  # a local directory or an s3:// prefix; must be empty


@dataclass
class CompareSettings:
    num_partitions: int = 8  # of the join by id (Ray Data's hash shuffle)


@dataclass
class CompareConfig:
    input: RunsConfig = field(default_factory=RunsConfig)
    output: CompareOutputConfig = field(default_factory=CompareOutputConfig)
    compare: CompareSettings = field(default_factory=CompareSettings)
    s3: S3Config = field(default_factory=S3Config)
    ray: RayConfig = field(default_factory=RayConfig)


@dataclass
class TableOutputConfig:
    path: Optional[str] = None  # a Markdown file to write the table to (local or s3://); None: printed only


@dataclass
class LeaderboardConfig:
    input: InputConfig = field(default_factory=InputConfig)  # a finished output of jobs/label.py or jobs/validate.py
    output: TableOutputConfig = field(default_factory=TableOutputConfig)
    model: Optional[str] = None  # the name in the table's Model column; None: the output's model
    s3: S3Config = field(default_factory=S3Config)
