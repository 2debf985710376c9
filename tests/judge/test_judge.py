"""jobs/judge.py for real: a labeling output on S3 (made by jobs/validate.py from known outputs, so
its statuses are known), the tiny model as judge on a vLLM-CPU engine of the mini-cluster. The
judge's verdicts are noise; the tests assert which rows it judges, that every row comes out once
with its columns untouched, the counts, the rerun and the resume."""

import json
import signal
import subprocess
import sys

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pipelines.storage import S3Config, arrow_filesystem, filesystem, parquet_files
from tests.conftest import REPO, SECRET

pytestmark = pytest.mark.integration

TOOLS = json.dumps([{"name": "weather", "description": "Weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "City"}}, "required": ["city"]}}])
OSLO = json.dumps([{"name": "weather", "arguments": {"city": "Oslo"}}])
OUTPUTS = [  # raw output -> the status jobs/validate.py gives it
    (OSLO, "ok"), ("[]", "no_call"), ("oops", "parse_error"), (json.dumps([{"name": "weather", "arguments": {}}]), "invalid_call"),
]
JUDGED = {"ok", "no_call"}
LABEL_COLUMNS = ["id", "query", "tools", "raw_output", "calls", "status", "errors", "run_id", "config_hash"]


def _s3(s3_endpoint):
    return [f"s3.endpoint_url={s3_endpoint}", "s3.access_key_id=testing", f"s3.secret_access_key={SECRET}"]


def _job(script, *args, code=0):
    proc = subprocess.run([sys.executable, f"jobs/{script}", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _labels(tmp_path, s3_endpoint, name, rows, judge_args):
    """A finished labeling output on S3 of `rows` rows cycling through OUTPUTS."""
    given = tmp_path / f"{name}-given"
    given.mkdir()
    pq.write_table(pa.table({"id": [f"r{i:03d}" for i in range(rows)],
                             "query": [f"Weather in Oslo, please ({i})" for i in range(rows)],
                             "tools": [TOOLS] * rows,
                             "raw_output": [OUTPUTS[i % len(OUTPUTS)][0] for i in range(rows)]}), given / "rows.parquet")
    joining = [a for a in judge_args if a.startswith("ray.address=")]  # the shared cluster: no Ray start of its own
    _job("validate.py", "conf=local", f"input.path={given}", f"output.path=s3://labels/{name}", *joining, *_s3(s3_endpoint))
    return f"s3://labels/{name}"


@pytest.fixture(scope="module")
def judge_args(s3_endpoint, cluster, tiny_model):
    return ["conf=local", *_s3(s3_endpoint), f"judge.model.source={tiny_model}", f"ray.address={cluster[0].address}",
            "judge.prompt.resources={prompt_node: 0.1}", "judge.engine.resources={engine_node: 0.1}"]


def _read(s3_endpoint, path):
    fs, root = filesystem(path, S3Config(endpoint_url=s3_endpoint, access_key_id="testing", secret_access_key=SECRET))
    try:  # an S3 prefix exists while something is under it: the run's first object can be moving
        return fs, root, {p: fs.info(p)["ETag"] for p in parquet_files(fs, root)}
    except FileNotFoundError:
        return fs, root, {}


def _table(fs, root):
    return pads.dataset(parquet_files(fs, root), filesystem=arrow_filesystem(fs, root), format="parquet").to_table()


def test_judge_judges_ok_and_no_call_rows_and_passes_the_rest_untouched(tmp_path, s3_endpoint, judge_args):
    labels = _labels(tmp_path, s3_endpoint, "for-judge", 12, judge_args)
    _job("judge.py", *judge_args, f"input.path={labels}", "output.path=s3://labels/judged/one")
    fs, root, pieces = _read(s3_endpoint, "s3://labels/judged/one")
    judged = {r["id"]: r for r in _table(fs, root).to_pylist()}
    given = {r["id"]: r for r in _table(*_read(s3_endpoint, labels)[:2]).to_pylist()}
    assert sorted(judged) == sorted(given)  # every row, once
    for row_id, row in judged.items():
        assert {c: row[c] for c in LABEL_COLUMNS} == {c: given[row_id][c] for c in LABEL_COLUMNS}
        if row["status"] in JUDGED:
            assert row["judge_verdict"] in ("agree", "disagree", "unparseable"), row
            assert row["judge_output"] is not None
        else:
            assert row["judge_verdict"] is None and row["judge_output"] is None
        assert row["judge_template"] == "judge-v1" and row["judge_config_hash"]
    summary = json.loads(fs.cat(f"{root}/_summary.json"))
    assert summary["rows"] == summary["input_rows"] == 12
    assert summary["verdicts"]["not_judged"] == 6  # parse_error and invalid_call rows, 3 each
    report = fs.cat(f"{root}/_report.html").decode()  # the judge's report: its verdicts beside the labels
    assert "Judge report" in report and any(f"judge_verdict = {v}" in report for v in ("agree", "disagree", "unparseable"))
    assert summary["by_label_status"]["parse_error"] == {"not_judged": 3}
    assert sum(summary["by_label_status"]["ok"].values()) == 3 == sum(summary["by_label_status"]["no_call"].values())

    # Export keeps the judged rows of the verdicts asked for, and counts the rest.
    exported = tmp_path / "exported"
    _job("export.py", "input.path=s3://labels/judged/one", f"output.path={exported}", "export.dedupe=false",
         "export.judge_verdicts=[unparseable]", *_s3(s3_endpoint))
    expected = sorted(i for i, r in judged.items() if r["status"] in JUDGED and r["judge_verdict"] == "unparseable")
    kept = [json.loads(line)["id"] for line in (exported / "part-00000.jsonl").read_text().splitlines()] if expected else []
    assert sorted(kept) == expected
    dropped = json.loads((exported / "_summary.json").read_text())["dropped"]
    assert dropped == {"status": 6, **({"judge_verdict": 6 - len(expected)} if len(expected) < 6 else {})}

    # A rerun with the same settings does nothing; with another template version it is refused.
    out = _job("judge.py", *judge_args, f"input.path={labels}", "output.path=s3://labels/judged/one")
    assert "nothing to do: all 12 input rows are already in s3://labels/judged/one" in out
    assert _read(s3_endpoint, "s3://labels/judged/one")[2] == pieces
    (REPO / "conf/judge/templates/judge-test-v2.txt").write_text("$tools\n$query\n$calls\nSay agree.\n")
    try:
        out = _job("judge.py", *judge_args, f"input.path={labels}", "output.path=s3://labels/judged/one",
                   "judge.prompt.template=judge-test-v2", code=2)
    finally:
        (REPO / "conf/judge/templates/judge-test-v2.txt").unlink()
    assert "was written with other settings (template.name: \"judge-v1\" -> \"judge-test-v2\"" in out


def test_judge_refuses_an_input_that_is_not_a_finished_labeling_output(tmp_path, judge_args):
    (tmp_path / "shards").mkdir()
    pq.write_table(pa.table({"id": ["a"], "query": ["q"], "tools": [TOOLS]}), tmp_path / "shards" / "a.parquet")
    out = _job("judge.py", *judge_args, f"input.path={tmp_path / 'shards'}", f"output.path={tmp_path / 'out'}", code=2)
    assert "has no _manifest.json: it is not an output of jobs/label.py" in out


def test_judge_killed_mid_run_then_rerun_finishes_without_redoing_work(tmp_path, s3_endpoint, judge_args, cluster):
    labels = _labels(tmp_path, s3_endpoint, "for-judge-kill", 96, judge_args)
    args = [*judge_args, f"input.path={labels}", "output.path=s3://labels/judged/killed", "output.rows_per_file=8",
            "judge.prompt.batch_size=8", "judge.engine.batch_size=8", "judge.engine.max_concurrent_batches=1"]
    fs, root, _ = _read(s3_endpoint, "s3://labels/judged/killed")
    proc = subprocess.Popen([sys.executable, "jobs/judge.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    from tests.conftest import wait_for
    from tests.label.test_integration import _alive_actors

    try:
        wait_for(lambda: len(_read(s3_endpoint, "s3://labels/judged/killed")[2]) >= 2, proc, what="two committed pieces")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # As the labeling job's driver-killed test: the killed driver's workers outlive it until Ray reaps
    # its job, and one committing a piece could commit it after `before` is read.
    wait_for(lambda: not _alive_actors(cluster[0].address), None, what="Ray reaping the killed driver's actors")
    before = _read(s3_endpoint, "s3://labels/judged/killed")[2]
    written = pads.dataset(list(before), filesystem=arrow_filesystem(fs, root), format="parquet").count_rows()
    assert 0 < written < 96, "the kill should land mid-run"

    _job("judge.py", *args)
    after = _read(s3_endpoint, "s3://labels/judged/killed")[2]
    assert all(after.get(p) == etag for p, etag in before.items())  # committed pieces untouched
    ids = _table(fs, root).column("id").to_pylist()
    assert sorted(ids) == [f"r{i:03d}" for i in range(96)]
    summary = json.loads(fs.cat(f"{root}/_summary.json"))
    assert summary["rows_before_this_run"] == written and summary["rows"] == 96
