import contextlib
import os
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent
SECRET = "PLANTED-SECRET-3f9a"  # an S3 secret key that must never show in any output or log
# vLLM-CPU's KV cache, GiB (vllm/platforms/cpu.py), for every engine the tests start, through the
# environment every job, mini-cluster and worker inherits: instead of a share of RAM
# (engine.gpu_memory_utilization, 4 GiB at conf=local's 0.2 here), so that the two test workers'
# engines fit in memory together. The tests' rows need a few MB of it.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """built:tiny-qwen2's folder (random weights, fast): built once, for the plumbing tests. They run
    it unconstrained (generation.constrained=false), as before conf=local's model was a trained one."""
    from pipelines.models.built import ensure_built

    return ensure_built("tiny-qwen2")


@pytest.fixture(scope="session")
def s3_endpoint():
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key=SECRET,
                      region_name="us-east-1")
    s3.create_bucket(Bucket="shards")
    s3.create_bucket(Bucket="labels")
    for shard in sorted((REPO / "data" / "sample").glob("*.parquet")):
        s3.upload_file(str(shard), "shards", f"sample/{shard.name}")
    # The same rows as shards of 8 for the fault tests: Ray Data streams block by block (a shard is
    # a block here), so these commit pieces while later shards still wait for the engine.
    sample = pq.read_table(REPO / "data" / "sample")
    for i in range(0, sample.num_rows, 8):
        sink = pa.BufferOutputStream()
        pq.write_table(sample.slice(i, 8), sink)
        s3.put_object(Bucket="shards", Key=f"split/part-{i:05d}.parquet", Body=sink.getvalue().to_pybytes())
    yield endpoint
    server.stop()


def wait_for(predicate, proc, timeout=300, what="condition"):
    """Polls `predicate` while the job `proc` runs (if any); fails with its output if it ends first."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the job ended (exit {proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(cluster_class):
    """A Ray mini-cluster on this machine: the head takes the prompt actors, two nodes can take
    engines. Its dashboard (the state API the tests ask) on a port of its own: two test workers
    each start one, and Ray's default port would be taken."""
    cluster = cluster_class(initialize_head=True, head_node_args={"num_cpus": 3, "resources": {"prompt_node": 1},
                                                                  "dashboard_port": free_port()})
    engine_nodes = [cluster.add_node(num_cpus=2, resources={"engine_node": 1}) for _ in range(2)]
    cluster.wait_for_nodes()
    return cluster, engine_nodes


@pytest.fixture(scope="session")
def cluster():
    from ray.cluster_utils import Cluster

    cluster, engine_nodes = start_cluster(Cluster)
    before = _engine_processes()
    yield cluster, engine_nodes
    import ray

    ray.shutdown()
    cluster.shutdown()
    # An engine process whose actor is gone ends by itself (pipelines/engines/vllm/plugin.py); one
    # left orphaned all the same would hold its KV cache for the tests after. Orphans only: the
    # other test worker's engines are alive, under their actors.
    import psutil

    for process in _engine_processes() - before:
        try:
            if process.ppid() == 1:
                process.kill()
        except psutil.NoSuchProcess:
            pass


def _engine_processes() -> set:
    import psutil

    found = set()
    for process in psutil.process_iter(["cmdline"]):
        if (process.info["cmdline"] or [""])[0].startswith("VLLM::"):
            found.add(process)
    return found


@pytest.fixture(scope="session")
def common_args(s3_endpoint, cluster, tiny_model):
    # Every job pins its prompt actors to the head and its engines to the second node.
    return [f"s3.endpoint_url={s3_endpoint}", "s3.access_key_id=testing", f"s3.secret_access_key={SECRET}",
            f"model.source={tiny_model}", "generation.constrained=false", f"ray.address={cluster[0].address}",
            "prompt.resources={prompt_node: 0.1}", "engine.resources={engine_node: 0.1}"]


@contextlib.contextmanager
def vllm_server(model: str, name: str, api_key: str, log: Path):
    """A started VllmServer, killed at the end."""
    served = VllmServer(model, name, api_key, log)
    served.start()
    try:
        yield served
    finally:
        served.kill()


class VllmServer:
    """`vllm serve` (vLLM's OpenAI-compatible server, the CPU build) on 127.0.0.1, started and killed
    by the tests that label through an endpoint. Greedy as the in-process engine: the model's
    generation_config.json is not applied (`--generation-config vllm`), one sequence at a time, in
    float32 as conf=local's engine (pipelines/conf/local.yaml)."""

    def __init__(self, model: str, name: str, api_key: str, log: Path):
        self.model, self.name, self.api_key, self.log = model, name, api_key, log
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.process = None

    def command(self) -> list[str]:
        import sys

        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(self.port),
                "--api-key", self.api_key, "--max-model-len", "4096", "--max-num-seqs", "1", "--enforce-eager",
                "--generation-config", "vllm", "--dtype", "float32"]

    def start(self, timeout_s: float = 300) -> None:
        import subprocess
        import time
        import urllib.request

        self.process = subprocess.Popen(self.command(), stdout=self.log.open("a"), stderr=subprocess.STDOUT,
                                        start_new_session=True, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
        deadline = time.monotonic() + timeout_s
        request = urllib.request.Request(f"{self.base_url}/models", headers={"Authorization": f"Bearer {self.api_key}"})
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited {self.process.returncode}: see {self.log}"
            try:
                urllib.request.urlopen(request, timeout=2).read()
                return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"{self.command()[:3]} did not answer within {timeout_s} s: see {self.log}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the server and every process of its session (its EngineCore): no shutdown."""
        import signal

        if self.running():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class EndpointGate:
    """An HTTP relay between a job and a server, in a test's hands, so that a fault lands at a chosen
    row instead of at a moment: it passes every request and every answer on unchanged, holds the
    `hold_at`-th chat completion of the rows (the preflight's probe is not one) until the test
    releases it, and while the server behind it is down closes the job's connection without an
    answer. (Killing the server once two pieces were written raced: on a fast machine every row had
    been answered by then.)"""

    def __init__(self, upstream_base_url: str, hold_at: int):
        import threading
        from http.server import ThreadingHTTPServer
        from urllib.parse import urlsplit

        upstream = urlsplit(upstream_base_url)
        self.upstream = (upstream.hostname, upstream.port)
        self.hold_at, self.row_requests = hold_at, 0
        self.holding, self.released = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _relay_handler(self))
        self.http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.http.server_port}{upstream.path}"

    def __enter__(self):
        import threading

        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.http.shutdown()
        self.http.server_close()

    def wait_if_held(self, path: str, body: bytes) -> None:
        import json

        from pipelines.core.prompts import TOOLS_PROBE_MESSAGES

        if not path.endswith("/chat/completions") or json.loads(body).get("messages") == TOOLS_PROBE_MESSAGES:
            return
        with self.lock:
            self.row_requests += 1
            held = self.row_requests == self.hold_at
        if held:
            self.holding.set()
            self.released.wait()


def _relay_handler(gate: EndpointGate):
    import http.client
    from http.server import BaseHTTPRequestHandler

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self):
            self.relay(None)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            gate.wait_if_held(self.path, body)
            self.relay(body)

        def relay(self, body: bytes | None) -> None:
            upstream = http.client.HTTPConnection(*gate.upstream, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException):
                self.close_connection = True  # no answer, the connection closed: what a dead server gives
                return
            finally:
                upstream.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Relay


class LlamaCppServer(VllmServer):
    """llama.cpp's OpenAI-compatible server (llama-cpp-python[server], built here by make setup) on a
    GGUF file: a second server implementation, with its own structured-output request shape."""

    def command(self) -> list[str]:
        import sys

        return [sys.executable, "-m", "llama_cpp.server", "--model", self.model, "--model_alias", self.name,
                "--host", "127.0.0.1", "--port", str(self.port), "--api_key", self.api_key, "--n_ctx", "4096",
                "--n_threads", "2", "--seed", "0"]
