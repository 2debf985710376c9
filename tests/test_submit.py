"""`ray job submit` for real: a local Ray head on 127.0.0.1, the scheduler recipe (deploy/submit.sh)
submitting one partition, the job's status and logs, its output; a rerun and a failing run."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration
DATE = "2026-11-24"
SAMPLE_ROWS = 65


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A Ray head of its own (own ports, own temp dir), as `ray start --head` on a user's machine;
    stopped by its process group, so that no other Ray on this machine is touched."""
    gcs, dashboard, client, agent_http, agent_grpc, metrics = _free_ports(6)
    # Token authentication on, with a token of its own (Ray 2.60 turns it on by itself when
    # ~/.ray/auth_token exists, and then the CLI needs RAY_AUTH_MODE=token too).
    token = tmp_path_factory.mktemp("auth") / "token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token)}
    env.pop("RAY_ADDRESS", None)
    temp_dir = Path("/tmp") / f"ray-submit-{os.getpid()}"  # short: Ray's socket paths must fit 107 bytes
    proc = subprocess.Popen(
        ["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
         f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
         f"--metrics-export-port={metrics}", "--num-cpus=4", "--include-dashboard=true", f"--temp-dir={temp_dir}",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    env["RAY_ADDRESS"] = address
    try:
        deadline = time.time() + 120
        while subprocess.run(["ray", "job", "list"], env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None and time.time() < deadline, "the Ray head did not start"
            time.sleep(2)
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _submit(env, *args, conf="local"):
    return subprocess.run(["deploy/submit.sh", *args], cwd=REPO, env={**env, "LABEL_CONF": conf},
                          capture_output=True, text=True, timeout=600)


def _job_id(output: str) -> str:
    return next(line.split("'")[1] for line in output.splitlines() if "submitted successfully" in line)


def test_a_scheduled_partition_runs_through_ray_job_submit(head, tiny_model, tmp_path):
    output = tmp_path / "labels"
    args = [DATE, f"model.source={tiny_model}", "generation.constrained=false", "generation.max_tokens=8", "progress_interval_s=0",
            f"output.path={output}/dt=${{run.date}}"]
    first = _submit(head, *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    job_id = _job_id(first.stdout)
    assert job_id.startswith(f"hammer-labeling-{DATE}-")

    status = subprocess.run(["ray", "job", "status", job_id], env=head, capture_output=True, text=True)
    assert f"Job '{job_id}' succeeded" in status.stdout
    logs = subprocess.run(["ray", "job", "logs", job_id], env=head, capture_output=True, text=True).stdout
    partition = output / f"dt={DATE}"
    assert f"output: {partition}" in logs and "progress: " in logs and f"date: '{DATE}'" in logs
    table = pq.read_table(partition)
    assert table.num_rows == SAMPLE_ROWS and len(set(table.column("id").to_pylist())) == SAMPLE_ROWS

    # The scheduler retries: a finished partition is left as it is.
    again = _submit(head, *args)
    assert again.returncode == 0 and "nothing to do: all 65 input rows are already in" in again.stdout
    assert pq.read_table(partition).num_rows == SAMPLE_ROWS


def test_a_failing_job_fails_the_submission(head):
    # conf=prod without its required paths: the job stops before any work, and the scheduler sees it.
    proc = _submit(head, DATE, conf="prod")
    assert proc.returncode != 0
    assert "required key(s) not set: input.path, output.path" in proc.stdout
    assert "' failed" in proc.stdout + proc.stderr
