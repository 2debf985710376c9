"""One run per output at a time: a lease, `_lease.json` under output.path.

The record names the holding run (run id, host, pid), a token fresh for each acquisition, and a
heartbeat time that the holder renews every `lease.heartbeat_s`. Every change is a compare-and-swap:
on S3 a conditional write (`IfNoneMatch="*"` to create, `IfMatch=<etag>` to renew, take over or
release), on a local disk a read-compare-replace under an exclusive `flock`. So two runs never both
believe they hold it, and only the holder can release it (its release is a swap to a record saying
"released", which the next run takes like an absent one).

A second run that finds a live holder refuses, naming it. Staleness is measured on the reader's own
clock, never by comparing it with the time the holder wrote: the reader watches the record, and a
record that changes (a heartbeat) means a live run, so it refuses; a record that stays the same
for `lease.stale_after_s` on the reader's monotonic clock means a dead one, so it takes it over (a
scheduler's retry after a crash then succeeds, after that wait). Whatever the holder's clock says,
a live holder renews its record every heartbeat and is never taken over. A holder on this same host
whose process is gone is taken over at once.

A holder checks the lease before each piece it commits (`check`), so a run that stalled and lost
its lease cannot write after the new holder started. A heartbeat that cannot renew (the store
refuses or fails) for half of `lease.stale_after_s` marks the lease lost too, before any other run
could take it: the driver stops the run (`raise_if_lost`), keeping every piece it committed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import fsspec
import fsspec.asyn

LEASE_FILE = "_lease.json"


class LeaseHeld(ValueError):
    """Another live run holds the output; the message names it."""


class LeaseLost(RuntimeError):
    """This run's lease was taken over; it must not write."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    token: str
    heartbeat: float  # epoch seconds, by the holder's clock: shown, never used to decide
    age_s: float  # this host's time minus that: shown, never used to decide

    @property
    def dead_here(self) -> bool:
        """Held from this host by a process that no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            pass
        return False


class _Store:
    """Compare-and-swap of one small object: read() -> (bytes, version) or None; swap(data, expected
    version or None for "absent") -> new version, or None when someone else changed it first."""

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str):
        self.fs, self.path = fs, path
        self.s3 = "s3" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        if not self.s3 and not isinstance(fs, fsspec.implementations.local.LocalFileSystem):
            raise ValueError(f"output.path on {fs.protocol}: the run lease needs a local disk or S3")

    def read(self) -> tuple[bytes, str] | None:
        if self.s3:
            bucket, key = self.path.split("/", 1)
            try:
                return fsspec.asyn.sync(self.fs.loop, _s3_get, self.fs, bucket, key)
            except FileNotFoundError:
                return None
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def swap(self, data: bytes, expected: str | None) -> str | None:
        if self.s3:
            bucket, key = self.path.split("/", 1)
            condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
            try:
                return self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)["ETag"]
            except FileExistsError:
                return None
            except OSError as e:  # s3fs turns 412 Precondition Failed / 409 ConditionalRequestConflict into these
                if "pre-condition" in str(e) or "Conditional" in str(e):
                    return None
                raise
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read()
            if (current[1] if current else None) != expected:
                return None
            tmp = f"{self.path}.{uuid.uuid4().hex}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        return hashlib.sha256(data).hexdigest()

    def record(self) -> dict | None:
        found = self.read()
        return json.loads(found[0]) if found else None


async def _s3_get(fs, bucket: str, key: str) -> tuple[bytes, str]:
    response = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return await body.read(), response["ETag"]


class Lease:
    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, run_id: str, *, heartbeat_s: float = 10.0,
                 stale_after_s: float = 60.0, clock=time.monotonic, sleep=time.sleep):
        self.store = _Store(fs, posixpath.join(root, LEASE_FILE))
        self.run_id = run_id
        self.token = uuid.uuid4().hex
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.clock, self.sleep = clock, sleep  # the reader's own clock (monotonic): staleness is measured on it
        self.version: str | None = None
        self.lost = threading.Event()
        self.lost_why: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> Holder | None:
        """The run holding the lease now, or None when it is free (absent or released)."""
        found = self.store.read()
        return _holder(found[0]) if found else None

    def _record(self) -> bytes:
        return json.dumps({"run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
                           "token": self.token, "heartbeat": time.time()}).encode()

    def acquire(self) -> str | None:
        """Takes the lease (see the module's docstring); returns a line saying whose lease was taken
        over, if any. Raises LeaseHeld while another run is alive."""
        watched: tuple[str, float] | None = None  # (version, since: this clock) of the record under watch
        told = False
        while True:
            found = self.store.read()
            holder = _holder(found[0]) if found else None
            if holder is None:  # absent, or released by its holder
                if self._swap(found[1] if found else None):
                    return None
                continue
            if holder.dead_here:
                if self._swap(found[1]):
                    return f"took over the lease of run {holder.run_id!r} on {holder.host} (its process is gone)"
                continue
            if watched is not None and watched[0] != found[1]:
                raise LeaseHeld(f"run {holder.run_id!r} on {holder.host} (pid {holder.pid}) is writing this output "
                                "(its heartbeat moved while this run watched); wait for it to end or choose another "
                                "output.path")
            if watched is None:
                watched = (found[1], self.clock())
            unchanged = self.clock() - watched[1]
            if unchanged >= self.stale_after_s:
                if self._swap(found[1]):
                    return (f"took over the lease of run {holder.run_id!r} on {holder.host} (no heartbeat for "
                            f"{unchanged:.0f} s on this run's clock)")
                continue
            if unchanged > 1.5 * self.heartbeat_s and not told:
                told = True
                print(f"lease: run {holder.run_id!r} on {holder.host} missed its heartbeat; waiting until its lease "
                      f"is stale ({self.stale_after_s - unchanged:.0f} s) to take it over", flush=True)
            wait = (min(1.0, self.heartbeat_s / 4) if unchanged <= 1.5 * self.heartbeat_s
                    else min(self.heartbeat_s, self.stale_after_s - unchanged + 0.01))
            self.sleep(wait)

    def _swap(self, expected: str | None, record: bytes | None = None) -> bool:
        version = self.store.swap(record or self._record(), expected)
        if version is not None:
            self.version = version
        return version is not None

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        renewed = self.clock()
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self._swap(self.version):
                    holder = self.holder()
                    self._lose(f"this run's lease was taken over by run {holder.run_id if holder else '(none)'!r}")
                    return
                renewed = self.clock()
            except Exception as e:  # noqa: BLE001 - the store failed: retried until it is too late
                if self.clock() - renewed >= self.stale_after_s / 2:
                    self._lose(f"this run could not renew its lease for {self.clock() - renewed:.0f} s "
                               f"({type(e).__name__}: {e}); it stops before another run may take the output over")
                    return
                print(f"lease: heartbeat failed ({type(e).__name__}: {e}); retrying", flush=True)

    def _lose(self, why: str) -> None:
        self.lost_why = why
        self.lost.set()
        print(f"lease: LOST: {why}; this run's pieces will not commit", flush=True)

    def raise_if_lost(self) -> None:
        """The driver's check between pieces: LeaseLost once the heartbeat found the lease gone."""
        if self.lost.is_set():
            raise LeaseLost(f"{self.lost_why}; every piece committed before is kept: rerun to continue")

    def release(self) -> None:
        """Frees the lease if this run still holds it: a swap against the version it last wrote, so a
        lease another run took meanwhile is left alone."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self.version is None or self.lost.is_set():
            return
        released = json.dumps({"released": True, "run_id": self.run_id, "token": None}).encode()
        try:
            self._swap(self.version, released)
        except Exception as e:  # noqa: BLE001 - the run's work is done; a lease left behind goes stale
            print(f"lease: could not release ({type(e).__name__}: {e}); it goes stale after "
                  f"{self.stale_after_s:g} s", flush=True)


def _holder(data: bytes) -> Holder | None:
    record = json.loads(data)
    if record.get("released"):
        return None
    return Holder(record["run_id"], record["host"], record["pid"], record["token"], record["heartbeat"],
                  max(0.0, time.time() - record["heartbeat"]))


def check(fs: fsspec.AbstractFileSystem, root: str, token: str) -> None:
    """Raises LeaseLost unless the lease under `root` is still the one with this token."""
    holder = _Store(fs, posixpath.join(root, LEASE_FILE)).record()
    if holder is None or holder.get("token") != token:
        raise LeaseLost(f"this run's lease on {root!r} was taken over by run "
                        f"{holder.get('run_id') if holder else '(none)'!r}; the piece is not committed")
