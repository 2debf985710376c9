"""The output's lease, on a local disk and on a real S3 endpoint (moto's server), with real processes."""

import json
import signal
import subprocess
import sys
import textwrap

import fsspec
import pyarrow as pa
import pytest

from pipelines.run.lease import LEASE_FILE, Lease, LeaseHeld, LeaseLost, check
from pipelines.run.output import write_piece
from pipelines.storage import parquet_files
from tests.conftest import REPO, SECRET

HEARTBEAT_S = 0.5
STALE_AFTER_S = 2.0


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path):
    """(url, fsspec filesystem, root) of an output folder, on each kind of store."""
    if request.param == "local":
        url = str(tmp_path / "out")
        fs, root = fsspec.core.url_to_fs(url)
        return url, {}, fs, root
    endpoint = request.getfixturevalue("s3_endpoint")
    fs = fsspec.filesystem("s3", key="testing", secret=SECRET, client_kwargs={"endpoint_url": endpoint},
                           skip_instance_cache=True)
    if not fs.exists("leases"):
        fs.mkdir("leases")
    options = {"key": "testing", "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint}}
    url = f"s3://leases/{tmp_path.name}"
    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
    return url, options, fs, root


HOLDER = textwrap.dedent("""
    import sys, time, fsspec, json
    from pipelines.run.lease import Lease, LeaseHeld
    url, options, run_id = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
    lease = Lease(fs, root, run_id, heartbeat_s=%s, stale_after_s=%s)
    try:
        lease.acquire()
    except LeaseHeld as e:
        print("refused:", e, flush=True)
        sys.exit(2)
    lease.start_heartbeat()
    print("held", flush=True)
    time.sleep(600)
""" % (HEARTBEAT_S, STALE_AFTER_S))


def start_holder(url, options, run_id) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, url, json.dumps(options), run_id], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def lease_of(fs, root, run_id, **kwargs) -> Lease:
    return Lease(fs, root, run_id, heartbeat_s=HEARTBEAT_S, stale_after_s=STALE_AFTER_S, **kwargs)


def test_a_second_run_is_refused_while_the_first_one_lives(place):
    url, options, fs, root = place
    first = start_holder(url, options, "first-run")
    try:
        with pytest.raises(LeaseHeld, match="run 'first-run' on .* is writing this output"):
            lease_of(fs, root, "second-run").acquire()
    finally:
        first.kill()
        first.wait()


def test_the_other_order_the_process_started_second_is_refused(place):
    url, options, fs, root = place
    lease = lease_of(fs, root, "in-test-run")
    lease.acquire()
    lease.start_heartbeat()
    try:
        second = subprocess.run([sys.executable, "-c", HOLDER, url, json.dumps(options), "late-run"], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "refused: run 'in-test-run'" in second.stdout, second.stdout
    finally:
        lease.release()
    assert lease_of(fs, root, "x").holder() is None  # released: the next run takes it at once
    assert lease_of(fs, root, "next").acquire() is None


def test_a_killed_runs_lease_is_taken_over_at_once_on_its_host(place):
    url, options, fs, root = place
    first = start_holder(url, options, "killed-run")
    first.send_signal(signal.SIGKILL)
    first.wait()
    took_over = lease_of(fs, root, "retry").acquire()
    assert took_over.startswith("took over the lease of run 'killed-run'") and "process is gone" in took_over
    assert lease_of(fs, root, "x").holder().run_id == "retry"


def test_a_lease_from_another_host_without_heartbeat_is_waited_out_then_taken(place):
    _, _, fs, root = place
    now = [1000.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    fs.makedirs(root, exist_ok=True)
    fs.pipe(f"{root}/{LEASE_FILE}", json.dumps({"run_id": "crashed-elsewhere", "host": "node-7", "pid": 1,
                                                  "token": "t0", "heartbeat": 999.0}).encode())
    took_over = lease_of(fs, root, "retry", clock=lambda: now[0], sleep=sleep).acquire()
    assert "took over the lease of run 'crashed-elsewhere' on node-7 (no heartbeat for" in took_over
    assert now[0] - 999.0 > STALE_AFTER_S  # it waited until the lease was stale, not less


class FakeClock:
    """A run's own clock, moved by its sleeps: waits take no time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def take_over(fs, root, run_id) -> tuple[Lease, str]:
    clock = FakeClock()
    lease = lease_of(fs, root, run_id, clock=clock, sleep=clock.sleep)
    return lease, lease.acquire()


def test_a_holder_that_lost_its_lease_commits_nothing(place):
    _, _, fs, root = place
    old = lease_of(fs, root, "stalled-run")
    old.acquire()
    # The stalled run's heartbeat is long gone: the next run, once the record stood still for
    # stale_after_s on its own clock, takes over.
    new, took_over = take_over(fs, root, "new-run")
    assert "stalled-run" in took_over and "no heartbeat for" in took_over
    with pytest.raises(LeaseLost, match="taken over by run 'new-run'"):
        check(fs, root, old.token)
    with pytest.raises(LeaseLost):
        write_piece(fs, root, pa.table({"x": [1]}), {"s.parquet": [[0, 1]]}, old.token)
    assert parquet_files(fs, root) == []
    write_piece(fs, root, pa.table({"x": [1]}), {"s.parquet": [[0, 1]]}, new.token)
    assert len(parquet_files(fs, root)) == 1
    # The old holder's heartbeat finds out too, stops renewing, and its driver stops.
    old.start_heartbeat()
    assert old.lost.wait(10 * HEARTBEAT_S)
    with pytest.raises(LeaseLost, match="taken over by run 'new-run'"):
        old.raise_if_lost()
    assert lease_of(fs, root, "x").holder().run_id == "new-run"


def test_release_leaves_a_lease_it_no_longer_holds(place):
    _, _, fs, root = place
    old = lease_of(fs, root, "old")
    old.acquire()
    take_over(fs, root, "new")
    old.release()  # a swap against the version it wrote: refused, the new holder's record stays
    assert lease_of(fs, root, "x").holder().run_id == "new"


class SkewedLease(Lease):
    """A holder whose clock is off: the heartbeat time it writes is `skew_s` from the truth."""

    skew_s = 0.0

    def _record(self) -> bytes:
        record = json.loads(super()._record())
        return json.dumps({**record, "heartbeat": record["heartbeat"] + self.skew_s}).encode()


@pytest.mark.parametrize("skew_s", [-3600.0, -120.0, 3600.0])
def test_a_live_holder_is_never_taken_over_whatever_its_clock_says(place, skew_s):
    """Its record says its last heartbeat was an hour (or two minutes) ago, or an hour ahead: it
    beats, so a second run refuses, and never takes the lease."""
    _, _, fs, root = place
    holder = SkewedLease(fs, root, "skewed-run", heartbeat_s=HEARTBEAT_S, stale_after_s=STALE_AFTER_S)
    holder.skew_s = skew_s
    holder.acquire()
    holder.start_heartbeat()
    try:
        assert lease_of(fs, root, "x").holder().age_s > STALE_AFTER_S or skew_s > 0  # its stamp looks stale
        with pytest.raises(LeaseHeld, match="run 'skewed-run' on .* is writing this output"):
            lease_of(fs, root, "second-run").acquire()
        assert not holder.lost.is_set()
        assert lease_of(fs, root, "x").holder().run_id == "skewed-run"
    finally:
        holder.release()


def test_a_heartbeat_that_cannot_renew_stops_the_run(place):
    _, _, fs, root = place
    lease = lease_of(fs, root, "run")
    lease.acquire()
    failures = []

    def failing_swap(data, expected):
        failures.append(expected)
        raise OSError("the store is unreachable")

    lease.store.swap = failing_swap
    lease.start_heartbeat()
    assert lease.lost.wait(STALE_AFTER_S / 2 + 4 * HEARTBEAT_S)
    assert len(failures) >= 2  # retried before giving up
    with pytest.raises(LeaseLost, match="could not renew its lease .*OSError: the store is unreachable"):
        lease.raise_if_lost()


def test_no_lease_on_other_filesystems():
    with pytest.raises(ValueError, match="needs a local disk or S3"):
        Lease(fsspec.filesystem("memory"), "/out", "r")
