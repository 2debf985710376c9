"""One run per output at a time: a lease, `_lease.json` under output.path.

The record names the holding run (run id, host, pid), a token fresh for each acquisition, and a
heartbeat time that the holder renews every `lease.heartbeat_s`. Every change is a compare-and-swap:
on S3 a conditional write (`IfNoneMatch="*"` to create, `IfMatch=<etag>` to renew or take over),
on a local disk a read-compare-replace under an exclusive `flock`. So two runs never both believe
they hold it.

A second run that finds a live holder refuses, naming it. It cannot tell a live holder from one
that just died by age alone, so it watches for up to one heartbeat interval: a heartbeat that moves
means a live run (refuse); one that does not means a missed beat, and it waits until the lease is
stale (`lease.stale_after_s`) and takes it over, so a scheduler's retry after a crash succeeds rather
than failing. A holder on this same host whose process is gone is taken over at once.

A holder checks the lease before each piece it commits (`check`), so a run that stalled and lost
its lease cannot write after the new holder started.
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
    heartbeat: float  # epoch seconds
    age_s: float
    stale: bool

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

    def delete(self) -> None:
        self.fs.rm(self.path)

    def record(self) -> dict | None:
        found = self.read()
        return json.loads(found[0]) if found else None


async def _s3_get(fs, bucket: str, key: str) -> tuple[bytes, str]:
    response = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return await body.read(), response["ETag"]


class Lease:
    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, run_id: str, *, heartbeat_s: float = 10.0,
                 stale_after_s: float = 60.0, clock=time.time, sleep=time.sleep):
        self.store = _Store(fs, posixpath.join(root, LEASE_FILE))
        self.run_id = run_id
        self.token = uuid.uuid4().hex
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.clock, self.sleep = clock, sleep
        self.version: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> Holder | None:
        found = self.store.read()
        return self._holder(found[0]) if found else None

    def _holder(self, data: bytes) -> Holder:
        record = json.loads(data)
        age = max(0.0, self.clock() - record["heartbeat"])
        return Holder(record["run_id"], record["host"], record["pid"], record["token"], record["heartbeat"], age,
                      age > self.stale_after_s)

    def _record(self) -> bytes:
        return json.dumps({"run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
                           "token": self.token, "heartbeat": self.clock()}).encode()

    def acquire(self) -> str | None:
        """Takes the lease (see the module's docstring); returns a line saying whose lease was taken
        over, if any. Raises LeaseHeld while another run is alive."""
        watched: tuple[str, float, float] | None = None  # (token, heartbeat, since) of a holder under watch
        while True:
            found = self.store.read()
            if found is None:
                if self._swap(None):
                    return None
                continue
            holder = self._holder(found[0])
            if holder.stale or holder.dead_here:
                if self._swap(found[1]):
                    why = "its process is gone" if holder.dead_here else f"no heartbeat for {holder.age_s:.0f} s"
                    return f"took over the lease of run {holder.run_id!r} on {holder.host} ({why})"
                continue
            if watched and (watched[0] != holder.token or watched[1] != holder.heartbeat):
                raise LeaseHeld(f"run {holder.run_id!r} on {holder.host} (pid {holder.pid}) is writing this output "
                                f"(heartbeat {holder.age_s:.0f} s ago); wait for it to end or choose another "
                                "output.path")
            if watched is None:
                watched = (holder.token, holder.heartbeat, self.clock())
            elif self.clock() - watched[2] > 1.5 * self.heartbeat_s:
                print(f"lease: run {holder.run_id!r} on {holder.host} missed its heartbeat; waiting until its lease "
                      f"is stale ({self.stale_after_s - holder.age_s:.0f} s) to take it over", flush=True)
                self.sleep(max(0.0, self.stale_after_s - holder.age_s) + 0.1)
                continue
            self.sleep(min(1.0, self.heartbeat_s / 4))

    def _swap(self, expected: str | None) -> bool:
        version = self.store.swap(self._record(), expected)
        if version is not None:
            self.version = version
        return version is not None

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._swap(self.version):
                self.lost.set()
                holder = self.holder()
                print(f"lease: LOST to run {holder.run_id if holder else '?'!r}; this run's pieces will not commit",
                      flush=True)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        record = self.store.record()
        if record and record["token"] == self.token:
            self.store.delete()


def check(fs: fsspec.AbstractFileSystem, root: str, token: str) -> None:
    """Raises LeaseLost unless the lease under `root` is still the one with this token."""
    holder = _Store(fs, posixpath.join(root, LEASE_FILE)).record()
    if holder is None or holder["token"] != token:
        raise LeaseLost(f"this run's lease on {root!r} was taken over by run "
                        f"{holder['run_id'] if holder else '(none)'!r}; the piece is not committed")
