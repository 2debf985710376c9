"""The end of the recipe: a labeling output -> the rows a trainer reads, only those worth keeping.

    jobs/export.py [conf=NAME] input.path=LABELS output.path=OUT [export.format=xlam|openai]
                   [export.file_format=jsonl|parquet] [export.statuses=[ok,no_call]] [export.min_agreement=0.8]
                   [export.judge_verdicts=[agree]]

The input is a finished output of jobs/label.py or jobs/validate.py, of jobs/judge.py (the same rows
with a verdict, which export.judge_verdicts filters on), or of jobs/compare.py (whose consensus
calls are the label, with the consensus share as the agreement; rows without a consensus are dropped
under `status`).

Formats: `xlam` rows (`id`, `query`, `tools`, `answers`: the labeling job's own input form, so an
export can be labeled again) and `openai` chat records (`messages` ending with the assistant's
`tool_calls`, and `tools` as OpenAI function tools with JSON-Schema parameters). Filters, in order,
each counted in the summary with the rows it dropped: the status, the agreement of sampled outputs,
the score against gold, the judge's verdict, and duplicates (a digest of query and tools; the first row kept).

It streams the labeling output's pieces batch by batch on the driver, with no Ray: its work per row
is a few dictionary operations, far below what a cluster would pay to start; memory holds one batch
and a 16-byte digest per kept row.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import storage
from pipelines.core.decontamination import EvalIndex
from pipelines.core.prompts import parse_query
from pipelines.core.tools import load_tools, parameters_schema, plain_cell
from pipelines.run.output import finished_output
from pipelines.core.calls import read_calls
from pipelines.recipe import compare
from pipelines.recipe.config import ExportConfig

COLUMNS = ["id", "query", "tools", "calls", "status", "agreement", "correct"]
XLAM_SCHEMA = pa.schema([("id", pa.string()), ("query", pa.string()), ("tools", pa.string()), ("answers", pa.string())])
OPENAI_SCHEMA = pa.schema([("id", pa.string()), ("messages", pa.string()), ("tools", pa.string())])


def run(config: ExportConfig) -> dict:
    started = time.time()
    in_fs, in_root = storage.filesystem(config.input.path, config.s3)
    from_compare = finished_output(in_fs, in_root, "input.path", config.input.path).mode == compare.MODE
    columns = COMPARE_COLUMNS if from_compare else COLUMNS
    if config.export.judge_verdicts is not None:
        pieces = storage.parquet_files(in_fs, in_root)
        if from_compare or (pieces and "judge_verdict" not in storage.read_schema(in_fs, pieces[0]).names):
            raise storage.InputError(f"export.judge_verdicts is set, but input.path {config.input.path!r} has no "
                                     "judge_verdict column: export the output of jobs/judge.py")
        columns = [*columns, "judge_verdict"]
    out_fs, out_root = storage.filesystem(config.output.path, config.s3)
    storage.require_empty_output(out_fs, out_root, config.output.path)
    out_fs.makedirs(out_root, exist_ok=True)

    settings = config.export
    evaluation = eval_index(settings) if settings.decontaminate else None
    dropped: Counter = Counter()
    seen: set[bytes] = set()
    rows_in = files = kept = 0
    pending: list[dict] = []
    for batch in storage.read_columns(in_fs, in_root, columns, ("exec_correct",) if settings.require_exec_correct else ()):
        for row in batch.to_pylist():
            row = consensus_row(row) if from_compare else row
            rows_in += 1
            reason = drop_reason(row, settings, seen, evaluation)
            if reason:
                dropped[reason] += 1
                continue
            pending.append(record(row, settings.format))
            kept += 1
            if len(pending) == config.output.rows_per_file:
                _write(out_fs, out_root, files, pending, settings)
                files, pending = files + 1, []
    if pending:
        _write(out_fs, out_root, files, pending, settings)
        files += 1
    summary = {"input": config.input.path, "output": config.output.path, "format": settings.format,
               "file_format": settings.file_format, "rows_in": rows_in, "rows": kept, "files": files,
               "dropped": {reason: dropped[reason] for reason in DROP_REASONS if dropped[reason]},
               "decontamination": None if evaluation is None else {
                   "eval_sets": list(settings.eval_sets), "eval_queries": evaluation.queries,
                   "ngram": settings.decontaminate_ngram, "match": settings.decontaminate_match},
               "wall_time_s": round(time.time() - started, 2)}
    storage.write_json(out_fs, posixpath.join(out_root, storage.SUMMARY_FILE), summary)
    return summary


DROP_REASONS = ("status", "low_agreement", "incorrect", "exec_incorrect", "judge_verdict", "contaminated", "duplicate")
# A compare output's rows, read as labeled rows: the consensus of the runs is the label.
COMPARE_COLUMNS = ["id", "query", "tools", "consensus_calls", "consensus_share"]
NO_CONSENSUS = "no_consensus"  # the status a compare row without a majority exports under (never kept)


def consensus_row(row: dict) -> dict:
    """A compare output's row as a labeled row: its consensus calls, `ok` (or `no_call` for []), and
    the consensus share as its agreement; no consensus, no label."""
    calls = row["consensus_calls"]
    status = NO_CONSENSUS if calls is None else ("ok" if calls else "no_call")
    return {**row, "calls": calls, "status": status, "agreement": row["consensus_share"], "correct": None}


def drop_reason(row: dict, settings, seen: set[bytes], evaluation: EvalIndex | None = None) -> str | None:
    """Why a labeled row is not exported, or None; a kept row's digest joins `seen`."""
    if row["status"] not in settings.statuses or row["calls"] is None:
        return "status"
    if settings.min_agreement is not None and (row.get("agreement") is None or row["agreement"] < settings.min_agreement):
        return "low_agreement"
    if settings.require_correct and row.get("correct") is False:
        return "incorrect"
    if settings.require_exec_correct and row.get("exec_correct") is False:
        return "exec_incorrect"
    if settings.judge_verdicts is not None and row.get("judge_verdict") not in settings.judge_verdicts:
        return "judge_verdict"
    if evaluation is not None and evaluation.overlaps(row["query"], tool_names(row["tools"], evaluation)):
        return "contaminated"
    if settings.dedupe:
        digest = hashlib.blake2b(json.dumps([row["query"], row["tools"]], sort_keys=True, default=str).encode(),
                                 digest_size=16).digest()
        if digest in seen:
            return "duplicate"
        seen.add(digest)
    return None


def tool_names(tools, evaluation: EvalIndex) -> frozenset[str]:
    """The function names of a row's tools, where the match needs them (query_and_tools); a row whose
    tools cannot be read offers none."""
    if not evaluation.with_tools:
        return frozenset()
    try:
        return frozenset(t.name for t in load_tools(tools if isinstance(tools, str) else plain_cell(tools)))
    except ValueError:
        return frozenset()


def eval_index(settings) -> EvalIndex:
    """The evaluation sets' queries as one index (export.eval_sets): `bfcl`, every question of the
    installed bfcl-eval (single-turn, live, multi-turn: each turn's user messages); else files or
    folders of parquet, JSON or JSON Lines rows with `query` or `question`, and `tools` or `function`."""
    index = EvalIndex(ngram=settings.decontaminate_ngram, with_tools=settings.decontaminate_match == "query_and_tools")
    for name in settings.eval_sets:
        for query, tools in (_bfcl_questions() if name == "bfcl" else _eval_file_rows(name)):
            index.add(query, tool_names(tools, index) if tools is not None else frozenset())
    if not index.queries:
        raise storage.InputError(f"export.eval_sets {list(settings.eval_sets)} hold no queries: name files with a "
                                 "`query` or `question` field, or bfcl")
    return index


def _bfcl_questions():
    """(query, tools) of every BFCL question file of the installed package (each turn of a multi-turn row)."""
    from pipelines.recipe.prepare import INSTALLED_BFCL, bfcl_folder

    folder = bfcl_folder(INSTALLED_BFCL)
    for path in sorted([*folder.glob("BFCL_v*.json"), *(folder / "unused_datasets" / "question").glob("BFCL_v*.json")]):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if not lines or not lines[0].startswith('{"id"'):
            continue  # not a question file (format_sensitivity.json lists ids)
        for line in lines:
            row = json.loads(line)
            yield from _question_queries(row.get("question"), row.get("function"))


def _question_queries(question, function):
    """BFCL's `question`: messages, or turns of messages; each turn's user text is a query."""
    if isinstance(question, str):
        yield question, function
        return
    for turn in question or []:
        messages = turn if isinstance(turn, list) else [turn]
        text = "\n".join(m["content"] for m in messages if isinstance(m, dict) and m.get("role", "user") == "user"
                         and isinstance(m.get("content"), str))
        if text:
            yield text, function


def _eval_file_rows(path: str):
    import datasets

    from pipelines.recipe.prepare import load_source

    try:
        source = load_source(path, None, "train")
    except (storage.InputError, datasets.exceptions.DatasetNotFoundError, FileNotFoundError, ValueError) as e:
        raise storage.InputError(f"export.eval_sets names {path!r}, which cannot be read ({e})") from None
    for row in source:
        if isinstance(row.get("query"), str):
            yield row["query"], row.get("tools")
        else:
            yield from _question_queries(row.get("question"), row.get("function"))


def record(row: dict, form: str) -> dict:
    """One kept row in the export's format. Calls are the labeled ones (mask.names rows already
    mapped back to the original names); `arguments` become objects again."""
    calls = read_calls(row["calls"])
    tools_text = row["tools"] if isinstance(row["tools"], str) else json.dumps(plain_cell(row["tools"]), ensure_ascii=False)
    if form == "xlam":
        return {"id": str(row["id"]), "query": row["query"], "tools": tools_text,
                "answers": json.dumps(calls, ensure_ascii=False)}
    messages = parse_query(row["query"]) or [{"role": "user", "content": row["query"]}]
    tool_calls = [{"id": f"call_{i}", "type": "function",
                   "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                  for i, c in enumerate(calls)]
    messages = [*messages, {"role": "assistant", "content": None, "tool_calls": tool_calls}]
    tools = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                               "parameters": parameters_schema(t)[0]}}
             for t in load_tools(tools_text)]
    return {"id": str(row["id"]), "messages": messages, "tools": tools}


def _write(fs, root: str, index: int, rows: list[dict], settings) -> None:
    name = posixpath.join(root, f"part-{index:05d}.{'jsonl' if settings.file_format == 'jsonl' else 'parquet'}")
    with fs.open(name, "wb") as f:
        if settings.file_format == "jsonl":
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
        else:
            pq.write_table(_table(rows, settings.format), f)


def _table(rows: list[dict], form: str) -> pa.Table:
    if form == "xlam":
        return pa.Table.from_pylist(rows, schema=XLAM_SCHEMA)
    # Nested chat records vary in shape from row to row; parquet holds them as JSON strings.
    return pa.Table.from_pylist([{"id": r["id"], "messages": json.dumps(r["messages"], ensure_ascii=False),
                                  "tools": json.dumps(r["tools"], ensure_ascii=False)} for r in rows],
                                schema=OPENAI_SCHEMA)

