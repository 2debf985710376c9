"""The judge plan: a labeling output -> judge prompts -> the judge's engine -> verdicts -> write.

Every job's machinery throughout (pipelines/run/: the run skeleton, shard reader, output protocol
with pieces, coverage, manifest and resume, lease, preflight and progress; pipelines/engines/: the
engine kinds); the judge's own are its checks, its prompt, its verdicts and its summary.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from pipelines import engines
from pipelines.core.judging import VERDICTS
from pipelines.judge import config as jcfg
from pipelines.judge import stages
from pipelines.run.config import settings_hash
from pipelines.run.job import Job, RunFacts, run_job
from pipelines.run.lease import Lease
from pipelines.run.plan import prompt_actors
from pipelines.checklist import Checklist
from pipelines.run.preflight import check_batching, check_finished_input, check_output, check_pool

MODE = "judge"  # in the manifest's fingerprint: an output is finished by the job that started it
REQUIRED_COLUMNS = ("id", "query", "tools", "status", "calls")
SUMMARY_COLUMNS = ["status", "judge_verdict", "correct"]


def run(config: jcfg.JudgeConfig) -> dict:
    """Judges every ok / no_call row of a finished labeling output on the run skeleton
    (pipelines/run/job.py); returns the summary (also `_summary.json`). A rerun into the same output
    continues where the last one stopped."""
    return run_job(config, judge_job(config))


def judge_job(config: jcfg.JudgeConfig) -> Job:
    """The judge as the run skeleton takes it: its preflight, settings, stages and summary."""
    model = engines.model_name(config.judge, key="judge.model.source")
    template = jcfg.load_template(config.judge.prompt.template)
    settings = jcfg.judge_settings(config, model, template)

    def summarize(batches, facts: RunFacts) -> dict:
        counter = VerdictCounter()
        for batch in batches:
            counter.add(batch.to_pydict())
        return counter.to_dict(run_id=config.run.id, input=config.input.path, output=config.output.path,
                               judge_model=model, template=config.judge.prompt.template,
                               input_rows=facts.shards.num_rows, rows_before_this_run=facts.rows_before_this_run,
                               stopped=facts.stopped, wall_seconds=round(facts.wall_seconds, 3),
                               timeline=facts.timeline)

    return Job(mode=MODE, preflight=lambda lease: preflight(config, model, lease), settings=lambda: settings,
               stages=lambda ds, schema: judge_plan(ds, config, schema, model, template, settings_hash(settings)),
               summary_columns=(SUMMARY_COLUMNS, ()), summarize=summarize, add_id=False,
               status_column="judge_verdict", metrics=config.judge.engine.log_metrics)


def preflight(config: jcfg.JudgeConfig, model: str, lease: Lease | None) -> Checklist:
    """The labeling job's checks, on the judge's model and engines; the input must be a finished
    labeling output."""
    print("preflight:", flush=True)
    checks = Checklist()
    check_finished_input(config, checks, REQUIRED_COLUMNS)
    check_output(config, checks, lease)
    check_pool(config.judge, config.ray, model, checks, prefix="judge.")
    check_batching(config.judge, checks, engine=True, prefix="judge.")
    checks.raise_if_failed()
    return checks


def judge_plan(ds, config: jcfg.JudgeConfig, input_schema: pa.Schema, model: str, template: str, config_hash: str):
    """The judge's stages over a labeling output's rows: judge prompt -> the judge's engine -> verdicts."""
    judge = config.judge
    kind = engines.kind_of(judge.engine)
    lineage = {"judge_model": model, "judge_template": judge.prompt.template, "judge_run_id": config.run.id,
               "judge_config_hash": config_hash}
    ds = prompt_actors(ds, stages.JudgePromptStage, judge.prompt, {
        "tokenizer_source": None if kind.takes_messages else model,
        "template": template,
        "max_prompt_tokens": judge.generation.max_model_len - judge.generation.max_tokens,
        "trust_remote_code": judge.model.trust_remote_code,
        "constrained": judge.generation.constrained,
        "row_time_budget_s": config.row_time_budget_s,
    })
    carried = [*input_schema.names, *stages.ANNOTATE_READS]
    ds = kind.generate(ds, judge, model, keep=[c for c in dict.fromkeys(carried) if c not in engines.WRITES])
    return ds.map_batches(stages.annotate_verdicts, batch_format="pyarrow",
                          fn_kwargs={"input_schema": input_schema, "lineage": lineage,
                                     "row_time_budget_s": config.row_time_budget_s})


class VerdictCounter:
    """The judge's summary: verdicts overall and per label status, and against gold where the
    labeling run scored the row (does the judge's `agree` track `correct`?)."""

    def __init__(self):
        self.rows = 0
        self.verdicts: Counter = Counter()
        self.by_status: Counter = Counter()  # (label status, verdict)
        self.against_gold: Counter = Counter()  # (verdict, correct)

    def add(self, batch: dict[str, list]) -> None:
        self.rows += len(batch["status"])
        for status, verdict, correct in zip(batch["status"], batch["judge_verdict"], batch["correct"]):
            verdict = verdict or stages.NOT_JUDGED
            self.verdicts[verdict] += 1
            self.by_status[(status, verdict)] += 1
            if correct is not None and verdict in ("agree", "disagree"):
                self.against_gold[(verdict, "correct" if correct else "incorrect")] += 1

    def to_dict(self, **extra) -> dict:
        names = (*VERDICTS, stages.NOT_JUDGED)
        statuses = sorted({s for s, _ in self.by_status}, key=str)
        return {
            **extra,
            "rows": self.rows,
            "verdicts": {v: self.verdicts[v] for v in names},
            "by_label_status": {str(s): {v: self.by_status[(s, v)] for v in names if self.by_status[(s, v)]}
                                for s in statuses},
            # rows with gold answers: the judge's verdict against the labeling run's score
            "against_gold": {v: {c: self.against_gold[(v, c)] for c in ("correct", "incorrect")}
                             for v in ("agree", "disagree")},
            "rows_per_second": round(self.rows / extra["wall_seconds"], 3) if extra.get("wall_seconds") else None,
        }

