"""Any function-calling source -> the query/tool shards the labeling job reads (`jobs/prepare.py`).

Reads with the `datasets` library: local JSON, JSON Lines, parquet or CSV files, or a hub dataset
(e.g. Salesforce/xlam-function-calling-60k). Two row shapes:
  * xLAM: `query`, `tools`, optional `answers` (JSON strings or lists), optional `id`;
  * BFCL: `question` (a list of chat messages, or of turns of them), `function` (a list of tools),
    optional `answers` (calls, or BFCL's possible answers).
`input.format=bfcl` reads the leaderboard's own files instead: each category's question file joined
by `id` with its possible-answer file (`possible_answer/`), from a BFCL data folder or, with
`input.path=bfcl-eval`, the installed `bfcl-eval` package's.
Writes parquet shards with `id`, `query`, `tools`, `answers` (strings; tools and answers as JSON, the
answers in the form given) and `bfcl_category` (the BFCL category, or the source's column of that name).
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import storage
from pipelines.config import ConfigError
from pipelines.core import bfcl
from pipelines.core.scoring import CATEGORY_COLUMN, load_answers
from pipelines.core.tools import BadInput, load_tools, plain_cell
from pipelines.recipe.config import PrepareConfig

SCHEMA = pa.schema([("id", pa.string()), ("query", pa.string()), ("tools", pa.string()), ("answers", pa.string()),
                    (CATEGORY_COLUMN, pa.string())])
# BFCL's multi-turn rows: their first turn, with what its execution needs (pipelines/execution/): the
# environments the row uses and their initial configuration (JSON), read by execution.* as it names them.
MULTI_TURN_CATEGORIES = ("multi_turn_base",)
ENVIRONMENT_COLUMNS = (("involved_classes", pa.list_(pa.string())), ("initial_config", pa.string()))
BFCL_FORMAT = "bfcl"  # input.format: the leaderboard's question and possible-answer files
INSTALLED_BFCL = "bfcl-eval"  # input.path with input.format=bfcl: the installed package's data folder
FORMAT_OF_SUFFIX = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
MAX_REPORTED = 20  # bad rows named in the message


def to_shard_row(row: dict, position: int) -> dict:
    """Pure: one source row -> one shard row. Raises BadInput with a reason code."""
    if "question" in row and "function" in row:  # BFCL
        query = _bfcl_query(row["question"])
        tools_cell, answers_cell = row["function"], row.get("answers")
    elif "query" in row and "tools" in row:  # xLAM and the labeling job's own form
        query, tools_cell, answers_cell = row["query"], row["tools"], row.get("answers")
    else:
        raise BadInput("unknown_row_shape", f"columns {sorted(row)}: expected query and tools (xLAM) or "
                                            "question and function (BFCL)")
    if not isinstance(query, str) or not query.strip():
        raise BadInput("empty_query", f"query is {'empty' if isinstance(query, str) else type(query).__name__}")
    tools_cell = plain_cell(tools_cell)
    tools = load_tools(tools_cell)
    answers = None
    if answers_cell is not None:
        try:
            gold = load_answers(plain_cell(answers_cell))
        except (ValueError, json.JSONDecodeError) as e:
            raise BadInput("bad_answers", str(e)) from None
        names = {t.name for t in tools}
        unknown = sorted(set(gold.names()) - names)
        if unknown:
            raise BadInput("answer_unknown_function", f"answers call {unknown}, which are not among the tools")
        answers = gold.to_json()
    row_id, category = row.get("id"), row.get(CATEGORY_COLUMN)
    environments = {name: row[name] for name, _ in ENVIRONMENT_COLUMNS if name in row}
    return {"id": str(row_id) if row_id is not None else str(position), "query": query,
            "tools": tools_cell if isinstance(tools_cell, str) else json.dumps(tools_cell, ensure_ascii=False),
            "answers": answers, CATEGORY_COLUMN: category if isinstance(category, str) else None, **environments}


def _bfcl_query(question: Any) -> str:
    """BFCL's `question`: messages, or turns of messages. One user message becomes the query as
    text; a conversation becomes a JSON list of messages, which the labeling job reads as such."""
    question = plain_cell(question)
    if isinstance(question, str):
        try:
            question = json.loads(question)
        except json.JSONDecodeError as e:
            raise BadInput("bad_question", f"question is not JSON ({e})") from None
    if not isinstance(question, list):
        raise BadInput("bad_question", f"question is a {type(question).__name__}, expected a list of messages")
    messages = [m for item in question for m in (item if isinstance(item, list) else [item])]
    if not messages or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        raise BadInput("bad_question", "question holds no messages with text content")
    if len(messages) == 1 and messages[0].get("role", "user") == "user":
        return messages[0]["content"]
    return json.dumps([{"role": m.get("role", "user"), "content": m["content"]} for m in messages], ensure_ascii=False)


def load_source(path: str, data_format: str | None, split: str):
    """A `datasets.Dataset` of the source: local files by their suffix, else a hub dataset."""
    import datasets

    local = Path(path)
    if local.exists():
        files = sorted(str(p) for p in local.rglob("*") if p.suffix in FORMAT_OF_SUFFIX) if local.is_dir() else [path]
        if not files:
            raise storage.InputError(f"input.path {path!r} holds no .json, .jsonl, .parquet or .csv files")
        data_format = data_format or FORMAT_OF_SUFFIX.get(Path(files[0]).suffix)
        if data_format is None:
            raise storage.InputError(f"input.path {path!r}: cannot tell the format from the name; set input.format")
        try:
            return datasets.load_dataset(data_format, data_files=files, split="train")
        except Exception as e:  # noqa: BLE001 - datasets raises many kinds; the user needs the file and the cause
            raise storage.InputError(f"input.path {path!r} could not be read as {data_format}: {e}") from None
    return datasets.load_dataset(path, split=split)


def bfcl_folder(path: str) -> Path:
    """The BFCL data folder named by input.path (`bfcl-eval`: the installed package's)."""
    if path == INSTALLED_BFCL:
        try:
            import bfcl_eval
        except ImportError:
            raise storage.InputError("input.path=bfcl-eval: the bfcl-eval package is not installed; install it without "
                                     "its dependencies (pip install --no-deps bfcl-eval==2026.3.23) or point input.path "
                                     "at a BFCL data folder") from None
        return Path(bfcl_eval.__file__).parent / "data"
    folder = Path(path)
    if not folder.is_dir():
        raise storage.InputError(f"input.path {path!r} with input.format=bfcl is not a folder: point it at BFCL's data "
                                 "folder (BFCL_v4_*.json beside possible_answer/), or set input.path=bfcl-eval")
    return folder


def bfcl_source(path: str, categories: list[str]) -> list[dict]:
    """The leaderboard's rows of `categories`, each question with its possible answers (joined by
    id), `[]` for irrelevance categories and none for relevance (any call is right), and its category."""
    unknown = [c for c in categories if c not in (*bfcl.CATEGORIES, *MULTI_TURN_CATEGORIES)]
    if unknown:
        unported = [c for c in unknown if c in bfcl.UNPORTED_CATEGORIES]
        why = (f"{', '.join(unported)} are not scored like the leaderboard (its Java and JavaScript value conversion is "
               "not ported); " if unported else "")
        raise ConfigError(f"config key 'prepare.categories' names {', '.join(unknown)}: {why}the single-turn categories "
                          f"this job scores are {', '.join(bfcl.CATEGORIES)}, and the multi-turn ones it imports "
                          f"(first turns, for execution) {', '.join(MULTI_TURN_CATEGORIES)}")
    folder, rows = bfcl_folder(path), []
    for category in categories:
        if category in MULTI_TURN_CATEGORIES:
            rows += multi_turn_rows(folder, category)
            continue
        questions = _bfcl_file(folder, category)
        if category in bfcl.AST_CATEGORIES:
            possible = {r["id"]: r["ground_truth"] for r in _bfcl_file(folder / "possible_answer", category)}
            missing = [q["id"] for q in questions if q["id"] not in possible]
            if missing:
                raise storage.InputError(f"{folder}: {len(missing)} {category} question(s) have no possible answer "
                                         f"(e.g. {missing[0]}); the folder's files do not belong together")
        for q in questions:
            answers = possible[q["id"]] if category in bfcl.AST_CATEGORIES else (
                [] if category in bfcl.IRRELEVANCE_CATEGORIES else None)
            rows.append({"id": q["id"], "question": q["question"], "function": q["function"], "answers": answers,
                         CATEGORY_COLUMN: category})
    return rows


def multi_turn_rows(folder: Path, category: str) -> list[dict]:
    """A multi-turn category's first turns: the turn's messages, the function docs of the row's
    involved classes as its tools, the gold's calls of that turn as JSON calls (read by
    core.execution.parse_call_string, positional arguments named by the environments' signatures:
    nothing is evaluated), the classes and their initial configuration."""
    from pipelines.core.execution import parse_call_string
    from pipelines.execution.config import BFCL_CLASSES, bfcl_parameters  # the doc files are named as the modules

    docs: dict[str, list[dict]] = {}
    for path in sorted((folder / "multi_turn_func_doc").glob("*.json")):
        docs[path.stem] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    gold = {r["id"]: r["ground_truth"] for r in _bfcl_file(folder / "possible_answer", category)}
    rows = []
    for q in _bfcl_file(folder, category):
        classes = q["involved_classes"]
        parameters = bfcl_parameters(classes)
        try:
            tools = [doc for name in classes for doc in docs[BFCL_CLASSES[name]]]
            answers = [parse_call_string(call, parameters) for call in gold[q["id"]][0]]
        except (KeyError, ValueError) as e:
            raise storage.InputError(f"{folder}: {category} row {q['id']}: {type(e).__name__}: {e}") from None
        rows.append({"id": q["id"], "question": q["question"][0], "function": tools, "answers": answers,
                     CATEGORY_COLUMN: category, "involved_classes": classes,
                     "initial_config": json.dumps(q.get("initial_config") or {}, ensure_ascii=False)})
    return rows


def _bfcl_file(folder: Path, category: str) -> list[dict]:
    """One category's JSON Lines file (BFCL_v4_<category>.json, or another version's single match)."""
    path = folder / f"BFCL_v4_{category}.json"
    if not path.exists():
        matches = sorted(folder.glob(f"BFCL_v*_{category}.json"))
        if len(matches) != 1:
            raise storage.InputError(f"{folder} has no BFCL_v4_{category}.json (prepare.categories names {category})")
        path = matches[0]
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise storage.InputError(f"{path} is not JSON Lines ({e})") from None


def shard_rows(source: Iterable[dict]) -> tuple[list[dict], list[str]]:
    """Every source row -> a shard row, or a `position: code: detail` line; duplicate ids are bad too."""
    rows, bad, seen = [], [], set()
    for position, row in enumerate(source):
        try:
            out = to_shard_row(row, position)
            if out["id"] in seen:
                raise BadInput("duplicate_id", f"id {out['id']!r} appears earlier in the source")
        except BadInput as e:
            named = f" (id {row['id']})" if isinstance(row, dict) and row.get("id") is not None else ""
            bad.append(f"row {position}{named}: {e.reason}")
            continue
        seen.add(out["id"])
        rows.append(out)
    return rows, bad


def run(config: PrepareConfig) -> dict:
    started = time.time()
    if config.input.format == BFCL_FORMAT:
        source = bfcl_source(config.input.path, list(config.prepare.categories))
    else:
        source = load_source(config.input.path, config.input.format, config.input.split)
    rows, bad = shard_rows(source)
    if bad and not config.prepare.drop_bad:
        shown = "\n  ".join(bad[:MAX_REPORTED])
        more = f"\n  ... and {len(bad) - MAX_REPORTED} more" if len(bad) > MAX_REPORTED else ""
        raise storage.InputError(f"{len(bad)} of {len(source)} rows of {config.input.path} are bad; nothing was written "
                            f"(set prepare.drop_bad=true to leave them out):\n  {shown}{more}")
    fs, root = storage.filesystem(config.output.path, config.s3)
    storage.require_empty_output(fs, root, config.output.path)
    fs.makedirs(root, exist_ok=True)
    size = config.output.rows_per_shard
    shards = []
    schema = SCHEMA
    if any("involved_classes" in r for r in rows):  # multi-turn rows: every row gets the columns (null elsewhere)
        schema = pa.schema([*SCHEMA, *ENVIRONMENT_COLUMNS])
    for start in range(0, len(rows), size):
        path = posixpath.join(root, f"part-{start // size:05d}.parquet")
        with fs.open(path, "wb") as f:
            pq.write_table(pa.Table.from_pylist(rows[start:start + size], schema=schema), f)
        shards.append(path)
    summary = {"input": config.input.path, "output": config.output.path, "source_rows": len(source),
               "rows": len(rows), "shards": len(shards), "bad_rows": len(bad),
               "bad_reasons": dict(Counter(line.split(": ")[1] for line in bad)), "bad_examples": bad[:MAX_REPORTED],
               "schema": {f.name: str(f.type) for f in schema},
               "null_answers": sum(r["answers"] is None for r in rows), "wall_time_s": round(time.time() - started, 2)}
    storage.write_json(fs, posixpath.join(root, storage.SUMMARY_FILE), summary)
    return summary
