"""The report as one HTML page: inline CSS, images as data URIs, no script. Every value that reaches
the page passes through `text()` (html.escape): a query holding `<script>` shows as those characters."""

from __future__ import annotations

import html
import json
from typing import Any

from pipelines.core import untrusted
from pipelines.core.confidence import AGREEMENT_BUCKETS, LOGPROB_BUCKETS
from pipelines.core.judging import VERDICTS
from pipelines.core.reasons import EXEC_STATUSES, STATUSES
from pipelines.core.scoring import GOLD_TYPES
from pipelines.report import plots
from pipelines.report.rows import Picked

BUCKET_ORDER = [name for _, name in (*AGREEMENT_BUCKETS, *LOGPROB_BUCKETS)]
MAX_CELL_CHARS = 2000  # of any one value shown: the page stays small whatever a row holds

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; word-break: break-word; background: #f8f8f8; padding: .4em; margin: .2em 0; max-height: 16em; overflow: auto; }
.row { border: 1px solid #ddd; border-radius: 4px; padding: .5em .8em; margin: .6em 0; }
.muted { color: #666; } img { max-width: 100%; }
"""


def text(value: Any, limit: int | None = MAX_CELL_CHARS) -> str:
    """Any value as escaped text, cut at `limit` characters (a row's values; the job's own are not cut)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str)
    if limit is not None and len(value) > limit:
        value = value[:limit] + f" ... ({len(value) - limit} more characters)"
    return html.escape(value, quote=True)


def table(header: list[str] | None, rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{text(h)}</th>" for h in header or [])
    body = "".join("<tr>" + "".join(f'<td class="n">{text(c)}</td>' if isinstance(c, (int, float)) else f"<td>{text(c)}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def image(uri: str | None, alt: str) -> str:
    return "" if uri is None else f'<p><img src="{uri}" alt="{text(alt)}"></p>'


def share(part: float | None) -> str:
    return "" if part is None else f"{part:.1%}"


def tool_names(tools: Any) -> str:
    try:
        value = untrusted.loads(tools) if isinstance(tools, str) else tools
        return ", ".join(str(t.get("name")) for t in value if isinstance(t, dict)) if isinstance(value, list) else str(tools)
    except (ValueError, untrusted.UntrustedValue):
        return "(tools that are not JSON)"


def row_block(row: dict) -> str:
    fields = [("id", row.get("id")), ("status", row.get("status")), ("query", row.get("query")),
              ("tools", tool_names(row.get("tools"))), ("raw output", row.get("raw_output")),
              ("calls", row.get("calls")), ("errors", row.get("errors")), ("flags", row.get("flags")),
              ("gold (answers)", row.get("answers")), ("correct", row.get("correct")), ("mismatch", row.get("mismatch")),
              ("agreement", row.get("agreement")), ("mean log-probability", row.get("mean_logprob")),
              ("judge", " ".join(str(v) for v in (row.get("judge_verdict"), row.get("judge_reason")) if v is not None) or None),
              ("execution", " ".join(str(v) for v in (row.get("exec_status"), row.get("exec_mismatch")) if v is not None) or None),
              ("results", row.get("exec_results"))]
    shown = "".join(f"<div><b>{text(name)}</b><pre>{text(value)}</pre></div>" for name, value in fields
                    if value not in (None, [], ""))
    return f'<div class="row">{shown}</div>'


def ordered(counts: dict, order) -> dict:
    """A summary's counts in the vocabulary's order (the summary file holds them sorted by name)."""
    known = [k for k in order if k in counts]
    return {**{k: counts[k] for k in known}, **{k: v for k, v in sorted(counts.items()) if k not in known}}


def render(kind: str, summary: dict, settings: dict | None, picked: Picked) -> str:
    """The page: the same whether `summary` is the run's own dict or read back from `_summary.json`."""
    parts = [f"<h1>{text(kind)} report: {text(summary.get('output'))}</h1>", _run(summary, settings)]
    statuses = ordered(summary.get("status") or summary.get("exec_status") or {}, (*STATUSES, *EXEC_STATUSES))
    if statuses:
        parts.append("<h2>Statuses and reasons</h2>")
        parts.append(table(["status", "rows", "share"], [[s, n, share(n / summary["rows"]) if summary.get("rows") else ""]
                                                        for s, n in statuses.items() if n]))
        parts.append(image(plots.counts_bars(statuses, "rows per status"), "rows per status"))
    if picked.reasons:
        parts.append("<h3>Reasons, ranked</h3>" + table(["reason", "rows"], picked.reasons.most_common()))
    parts += [_quality(summary), _confidence(summary), _judge(summary), _execution(summary), _review(picked)]
    shown = {k: v for k, v in summary.items() if k not in ("timeline", "report")}  # (the report is this page)
    parts.append("<h2>The summary</h2><pre>" + text(json.dumps(shown, indent=2, sort_keys=True), limit=None) + "</pre>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Run report</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def _run(summary: dict, settings: dict | None) -> str:
    facts = [(k, summary.get(k)) for k in ("output", "input", "run_id", "model", "judge_model", "mode", "template",
                                          "input_rows", "rows", "rows_before_this_run", "stopped", "prompt_tokens",
                                          "output_tokens", "wall_seconds", "rows_per_second") if summary.get(k) is not None]
    out = "<h2>The run</h2>" + table(None, [[k, v] for k, v in facts])
    if settings:
        out += ("<h3>Settings that change the output</h3><pre>" + text(json.dumps(settings, indent=2, sort_keys=True), limit=None)
                + "</pre>")
    return out + image(plots.rows_per_second(summary.get("timeline") or []), "rows written over the run")


def _quality(summary: dict) -> str:
    accuracy = summary.get("accuracy") or {}
    if not accuracy.get("scored_rows"):
        return ""
    out = "<h2>Quality against gold</h2>" + table(
        ["gold call type", "accuracy"], [[k, share(accuracy.get(k))] for k in ("overall", *GOLD_TYPES) if accuracy.get(k) is not None])
    out += f'<p class="muted">{text(accuracy["scored_rows"])} rows with answers scored.</p>'
    bfcl = summary.get("bfcl")
    if bfcl:
        cells = [[name, share(cell.get("accuracy")), cell.get("total")] for name, cell in bfcl["categories"].items()
                 if not cell.get("missing")]
        out += "<h3>The leaderboard's categories</h3>" + table(["category", "accuracy", "rows"], cells)
    return out


def _confidence(summary: dict) -> str:
    calibration = {signal: ordered(buckets, BUCKET_ORDER) for signal, buckets in (summary.get("calibration") or {}).items()}
    if not any(calibration.values()):
        return ""
    out = "<h2>Confidence</h2>"
    for signal, buckets in calibration.items():
        if buckets:
            out += f"<h3>{text(signal)}</h3>" + table(["bucket", "rows", "accuracy"],
                                                     [[b, c["rows"], share(c["accuracy"])] for b, c in buckets.items()])
    out += image(plots.reliability(calibration), "accuracy per confidence bucket")
    if calibration.get("agreement"):
        out += image(plots.coverage_accuracy(calibration["agreement"]), "coverage against accuracy")
    return out


def _judge(summary: dict) -> str:
    if "verdicts" not in summary:
        return ""
    verdicts = ordered(summary["verdicts"], VERDICTS)
    out = "<h2>The judge</h2>" + image(plots.counts_bars(verdicts, "rows per verdict"), "rows per verdict")
    gold = summary.get("against_gold") or {}
    if any(n for cells in gold.values() for n in cells.values()):
        out += "<h3>Verdicts against the labels' correctness</h3>" + table(
            ["verdict", "correct", "incorrect"], [[v, cells["correct"], cells["incorrect"]] for v, cells in gold.items()])
    return out


def _execution(summary: dict) -> str:
    execution = summary.get("execution")
    if not execution:
        return ""
    judged = execution["exec_correct"]
    statuses = ordered(execution["exec_status"], EXEC_STATUSES)
    return ("<h2>Execution</h2>" + table(["exec_status", "rows"], [[s, n] for s, n in statuses.items() if n])
            + f"<p>exec_correct: {text(judged['correct'])} of {text(judged['rows'])} rows with gold calls run "
              f"({text(share(judged['accuracy']))}).</p>")


def _review(picked: Picked) -> str:
    out = ["<h2>Rows to review</h2>"]
    for (column, value), rows in sorted(picked.by_group.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        out.append(f"<h3>{text(column)} = {text(value)}</h3>" + "".join(row_block(r) for r in rows))
    for code, _ in picked.reasons.most_common():
        out.append(f"<h3>reason {text(code)}</h3>" + "".join(row_block(r) for r in picked.by_reason[code]))
    least = picked.least_confident_rows()
    if least:
        out.append("<h3>The least confident ok rows</h3>" + "".join(row_block(r) for r in least))
    return "".join(out)
