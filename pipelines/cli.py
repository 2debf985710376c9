"""The command line shared by the jobs: config, one call to the pipeline, summary, exit code.

Exit codes: 0 every input row has an output row; 1 the job failed or lost rows; 2 bad config or input.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from pipelines.core.reasons import ENGINE_ERROR, INVALID_CALL, NO_CALL, OK, PARSE_ERROR
from pipelines.config import (CONF_DIR, HELP_FLAGS, ConfigError, key_help, load_profile, profile_loader, profile_name,
                              to_yaml)
from pipelines.engines import EngineUnavailable
from pipelines.label.config import LabelConfig, Mode, load_config
from pipelines.label.plan import check, run
from pipelines.label.summary import format_table
from pipelines.models.built import BUILT_MODELS, built_name
from pipelines.run.lease import LeaseLost
from pipelines.checklist import PreflightFailed
from pipelines.run.progress import ErrorRateExceeded
from pipelines.storage import InputError, OutputError

HAMMER_HINT = """To label with Hammer, point model.source at a Hammer checkpoint (a hub id, a local directory, or an
s3:// prefix), e.g.
  python jobs/label.py conf=local model.source=MadeAgents/Hammer-7b engine.device=gpu generation.max_tokens=512"""


def built_model_notice(source: str) -> str | None:
    """What a user should know about a model the job builds itself, before its labels are read."""
    name = built_name(source)
    if name not in BUILT_MODELS:
        return None
    built = BUILT_MODELS[name]
    what = "its labels are NOISE" if not built.trained else "its labels are real and often wrong"
    return f"NOTE: model.source={source}: {built.about}; {what}.\n{HAMMER_HINT}"


def main(argv: list[str], *, revalidate: bool = False) -> int:
    if set(argv) & set(HELP_FLAGS):
        return _help("jobs/validate.py" if revalidate else "jobs/label.py", LabelConfig, CONF_DIR,
                     (CONF_DIR / "base.yaml",))
    try:
        config = load_config(argv)
    except ConfigError as e:
        print(f"config error: {e}")
        return 2
    if sys.stdout.isatty():  # a person: the config is in the output folder; a log keeps it whole
        print(f"run {config.run.id}: conf={profile_name(argv)}; the resolved config (secrets redacted) goes to "
              f"{config.output.path}/_config.yaml")
    else:
        print(f"run {config.run.id}, resolved config (secrets redacted):\n{to_yaml(config)}")
    notice = None if revalidate else built_model_notice(config.model.source)
    if notice:
        print(notice)
    if config.preflight:
        _, code = _guarded(functools.partial(check, config, Mode.of(config, revalidate)))
        if code == 0:
            print("preflight passed")
        return code
    summary, code = _guarded(functools.partial(run, config, revalidate=revalidate))
    if summary is None:
        return code
    print(format_table(summary))
    print(f"output: {config.output.path} (summary: _summary.json, config: _config.yaml)")
    if summary.get("report"):
        print(f"report: {summary['report']} (open it in a browser)")
    if summary["rows"] != summary["input_rows"]:
        print(f"error: {summary['input_rows']} input rows but {summary['rows']} output rows")
        return 1
    unanswered = no_answer(summary)
    if unanswered:
        print(f"error: {unanswered}")
        return 1
    return 0


def no_answer(summary: dict) -> str | None:
    """Why a generating run whose engine answered none of the rows sent to it is not a success: every
    row is written (as engine_error), so a scheduler that reads exit 0 would take an output of no labels
    for a finished one. Exit 1 says the run failed; its rows stay, and resume=overwrite redoes them."""
    status = summary["status"]
    answered = sum(status.get(s, 0) for s in (OK, NO_CALL, PARSE_ERROR, INVALID_CALL))
    if summary.get("mode") != Mode.GENERATE.value or answered or not status.get(ENGINE_ERROR):
        return None
    return (f"the engine answered none of the {status[ENGINE_ERROR]} rows sent to it (all engine_error; their "
            "`errors` say why): fix the engine or the settings it refused, then rerun with resume=overwrite")


def data_job_main(argv: list[str], load: Callable[[list[str]], Any], job: Callable[[Any], dict],
                  profiles: tuple[str, type, Path, tuple[Path, ...]] | None = None) -> int:
    """The command line of the jobs besides labeling: `[conf=NAME] [key=value ...]` through `load`
    (pipelines.config.profile_loader, or a job's own), the job, its summary as JSON. `--help`: the
    keys of the job's schema and its profiles: (name, schema, profile folder, base files)."""
    if profiles is not None and set(argv) & set(HELP_FLAGS):
        return _help(*profiles)
    try:
        config = load(argv)
    except ConfigError as e:
        print(f"config error: {e}")
        return 2
    print(f"resolved config (secrets redacted):\n{to_yaml(config)}")
    summary, code = _guarded(functools.partial(job, config))
    if summary is None:
        return code
    print(json.dumps({k: v for k, v in summary.items() if k != "timeline"}, indent=2))  # the timeline is the report's
    print(f"output: {summary['output']} (summary: _summary.json)")
    if summary.get("report"):
        print(f"report: {summary['report']} (open it in a browser)")
    return code


def _help(name: str, schema: type, conf_dir: Path, base: tuple[Path, ...]) -> int:
    profiles = sorted(p.stem for p in conf_dir.glob("*.yaml") if p.stem != "base")
    print(f"{name}: [conf=NAME] [key=value ...]\n\nprofiles (conf=NAME, default local): {', '.join(profiles)} "
          f"(in {conf_dir})\nexit codes: 0 done; 1 the job failed or stopped; 2 a config or input problem, before "
          f"any work\n\nkeys (default without a profile):\n{key_help(schema, base)}")
    return 0


# One command per job (pyproject.toml's [project.scripts]); jobs/*.py call the same.

def label_command() -> None:
    sys.exit(main(sys.argv[1:]))


def validate_command() -> None:
    sys.exit(main(sys.argv[1:], revalidate=True))


def judge_command() -> None:
    from pipelines.judge.config import JUDGE_CONF_DIR, JudgeConfig, load_judge_config
    from pipelines.judge.plan import run as judge

    sys.exit(data_job_main(sys.argv[1:], load_judge_config, judge,
                           ("jobs/judge.py", JudgeConfig, JUDGE_CONF_DIR, (JUDGE_CONF_DIR / "base.yaml",))))


def execute_command() -> None:
    from pipelines.execution.job import EXECUTE_CONF_DIR, ExecuteConfig, load_execute_config
    from pipelines.execution.job import run as execute

    sys.exit(data_job_main(sys.argv[1:], load_execute_config, execute,
                           ("jobs/execute.py", ExecuteConfig, EXECUTE_CONF_DIR, (EXECUTE_CONF_DIR / "base.yaml",))))


def report_command() -> None:
    """jobs/report.py: the report of any finished output, without a model."""
    from pipelines.report.write import ReportConfig, write_report
    from pipelines.run.output import finished_output
    from pipelines.storage import filesystem

    def report(config: ReportConfig) -> dict:
        fs, root = filesystem(config.input.path, config.s3)
        finished = finished_output(fs, root, "input.path", config.input.path)
        path = write_report(fs, root, config.input.path, finished.mode, finished.summary, finished.settings)
        return {"output": config.input.path, "report": path}

    load = functools.partial(load_profile, ReportConfig, conf_dir=CONF_DIR / "report")
    sys.exit(data_job_main(sys.argv[1:], load, report, ("jobs/report.py", ReportConfig, CONF_DIR / "report", ())))


def _recipe_command(name: str) -> None:
    import importlib

    from pipelines.recipe import config as recipe_config

    schema = getattr(recipe_config, f"{name.capitalize()}Config")
    job = importlib.import_module(f"pipelines.recipe.{name}").run
    load = profile_loader(schema, name)
    sys.exit(data_job_main(sys.argv[1:], load, job, (f"jobs/{name}.py", schema, load.keywords["conf_dir"],
                                                     load.keywords["base"])))


def compare_command() -> None:
    _recipe_command("compare")


def prepare_command() -> None:
    _recipe_command("prepare")


def augment_command() -> None:
    _recipe_command("augment")


def export_command() -> None:
    _recipe_command("export")


def leaderboard_command() -> None:
    _recipe_command("leaderboard")


def _guarded(job: Callable[[], dict]) -> tuple[dict | None, int]:
    """Runs a job; a failure becomes one line on stdout and an exit code (the traceback goes to stderr
    where it helps: not for problems the user must fix)."""
    try:
        return job(), 0
    except (ConfigError, InputError, OutputError, PreflightFailed) as e:
        print(f"error: {e}")
        return None, 2
    except LeaseLost as e:
        print(f"error: {e}")
        return None, 1
    except ErrorRateExceeded as e:
        print(f"error: stopped: {e}")
        return None, 1
    except Exception as e:  # noqa: BLE001 - one line on stdout for schedulers
        traceback.print_exc()
        stopped = _cause(e, EngineUnavailable)
        if stopped is not None:  # raised in a client actor, reached here wrapped in Ray's errors
            print(f"error: stopped: {str(stopped).splitlines()[0]}")  # Ray Data appends its retry advice
        else:
            print(f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return None, 1


def _cause(error: BaseException, kind: type) -> BaseException | None:
    """The first `kind` in an exception's chain: Ray's task errors hold the actor's as `cause`."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "cause", None)  # a RayTaskError is also an instance of its cause's class
        if isinstance(inner, kind):
            return inner
        if isinstance(error, kind):
            return error
        error = inner or error.__cause__ or error.__context__
    return None
