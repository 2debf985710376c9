"""The report of a finished output, as a person sees it in a real browser (headless Chromium): its
numbers are the summary's, its images are drawn, nothing a row holds runs."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.report.page import render, text
from pipelines.report.rows import Picked
from tests.report.browser import open_page

TOOLS = json.dumps([{"name": "weather", "description": "Weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "City"}}, "required": ["city"]}}])
SCRIPT = "<script>document.title = 'pwned'</script>"
IMG = "<img src=x onerror=\"document.title = 'pwned by img'\">"
HOSTILE_TOOLS = json.dumps([{"name": IMG, "description": SCRIPT, "parameters": {"type": "object", "properties": {}}}])
ROWS = [  # id, query, tools, raw output (re-validated), answers
    ("ok-1", "Weather in Oslo?", TOOLS, '[{"name": "weather", "arguments": {"city": "Oslo"}}]',
     '[{"name": "weather", "arguments": {"city": "Oslo"}}]'),
    ("ok-2", f"Weather in {SCRIPT}?", TOOLS, json.dumps([{"name": "weather", "arguments": {"city": IMG}}]), None),
    ("parse", "Weather in Rome?", TOOLS, f"</pre>{SCRIPT}", None),
    ("invalid", "Weather?", TOOLS, '[{"name": "weather", "arguments": {}}]', None),
    ("bad-tools", "Weather?", HOSTILE_TOOLS, "[]", None),
]


def test_every_value_is_escaped():
    assert text(SCRIPT) == "&lt;script&gt;document.title = &#x27;pwned&#x27;&lt;/script&gt;"
    picked = Picked()
    picked.add({"id": "x", "status": "ok", "query": SCRIPT, "tools": HOSTILE_TOOLS, "raw_output": IMG, "errors": []})
    page = render("Labeling", {"output": SCRIPT, "rows": 1, "status": {"ok": 1}}, {"model": IMG}, picked)
    assert SCRIPT not in page and IMG not in page and "<script" not in page and "onerror=\"" not in page


@pytest.fixture(scope="module")
def hostile_output(tmp_path_factory, cluster):
    from pipelines.cli import main

    root = tmp_path_factory.mktemp("report")
    (root / "given").mkdir()
    pq.write_table(pa.table({"id": [r[0] for r in ROWS], "query": [r[1] for r in ROWS], "tools": [r[2] for r in ROWS],
                             "raw_output": [r[3] for r in ROWS], "answers": [r[4] for r in ROWS]}),
                   root / "given" / "rows.parquet")
    out = root / "labels"
    assert main(["conf=local", f"input.path={root / 'given'}", f"output.path={out}",
                 f"ray.address={cluster[0].address}"], revalidate=True) == 0
    return out


@pytest.mark.integration
def test_the_report_opens_in_a_browser_with_the_summarys_numbers_and_runs_nothing_a_row_holds(hostile_output):
    summary = json.loads((hostile_output / "_summary.json").read_text())
    assert summary["report"] == f"{hostile_output}/_report.html"
    seen = open_page(hostile_output / "_report.html")
    assert seen.errors == []
    assert seen.title == "Run report"  # neither the <script> nor the onerror ran
    for hostile in (SCRIPT, IMG, f"</pre>{SCRIPT}"):
        assert hostile in seen.text  # shown as the characters it is
    for status, rows in summary["status"].items():  # the summary's counts, as the page shows them
        if rows:
            assert f"{status}\t{rows}\t" in seen.text
    assert len(seen.images) >= 1 and all(complete and w > 0 and h > 0 for complete, w, h in seen.images)
    assert seen.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(seen.screenshot) > 10_000


@pytest.mark.integration
def test_the_report_command_writes_it_for_any_finished_output(hostile_output, tmp_path):
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO

    copy = tmp_path / "copy"
    shutil.copytree(hostile_output, copy)
    (copy / "_report.html").unlink()
    done = subprocess.run([sys.executable, "jobs/report.py", f"input.path={copy}"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == f"report: {copy}/_report.html (open it in a browser)"
    assert (copy / "_report.html").read_text() == (hostile_output / "_report.html").read_text()
    refused = subprocess.run([sys.executable, "jobs/report.py", f"input.path={tmp_path / 'nothing'}"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "input.path" in refused.stdout


def test_every_section_renders_from_a_summary_read_back_from_its_file():
    """Each section at once (sorted keys, as _summary.json holds them): the page's figures are drawn,
    one per figure the numbers call for."""
    summary = json.loads(json.dumps({
        "output": "out", "rows": 10, "status": {"ok": 6, "parse_error": 4}, "timeline": [[0, 0], [5, 4], [9, 10]],
        "accuracy": {"scored_rows": 10, "overall": 0.5, "single": 0.5},
        "calibration": {"agreement": {"1": {"rows": 4, "accuracy": 0.75}, "0": {"rows": 6, "accuracy": 1 / 3}},
                        "mean_logprob": {">= -0.1": {"rows": 5, "accuracy": 0.6}}},
        "verdicts": {"agree": 5, "disagree": 1}, "against_gold": {"agree": {"correct": 4, "incorrect": 1},
                                                               "disagree": {"correct": 0, "incorrect": 1}},
        "execution": {"exec_status": {"ok": 5, "error": 1}, "exec_correct": {"rows": 6, "correct": 3, "accuracy": 0.5}},
    }, sort_keys=True))
    page = render("Labeling", summary, None, Picked())
    # rows over the run, statuses, accuracy per bucket (two signals), coverage against accuracy, verdicts
    assert page.count('<img src="data:image/png;base64,') == 5
    # the buckets in their order (the file holds them sorted by name)
    assert page.index('<td>0</td><td class="n">6</td>') < page.index('<td>1</td><td class="n">4</td>')


@pytest.mark.integration
def test_a_report_that_fails_is_said_and_the_complete_run_still_succeeds(tmp_path, cluster, monkeypatch, capsys):
    """The labels are written and counted: a failing report must not turn the run into a failure that
    every rerun (nothing left to do) would meet again. The fault is injected into the report's writer."""
    from pipelines.cli import main
    from pipelines.run import job

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(job, "write_report", broken)
    (tmp_path / "given").mkdir()
    pq.write_table(pa.table({"id": ["a"], "query": ["Weather in Oslo?"], "tools": [TOOLS], "raw_output": ["[]"]}),
                   tmp_path / "given" / "rows.parquet")
    out = tmp_path / "out"
    assert main(["conf=local", f"input.path={tmp_path / 'given'}", f"output.path={out}",
                 f"ray.address={cluster[0].address}"], revalidate=True) == 0
    printed = capsys.readouterr().out
    assert "warning: the report was not written (RuntimeError: no fonts)" in printed and "report: " not in printed
    assert json.loads((out / "_summary.json").read_text())["report"] is None and not (out / "_report.html").exists()
