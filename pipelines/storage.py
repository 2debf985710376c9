"""Files, not runs: filesystems (fsspec: local or s3://), S3 settings, shard listing, id checks."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pyarrow.fs as pafs

REQUIRED_COLUMNS = ("query", "tools")
SUMMARY_FILE = "_summary.json"


@dataclass
class S3Config:
    endpoint_url: Optional[str] = None  # e.g. a MinIO or test endpoint; None: AWS
    region: Optional[str] = None
    access_key_id: Optional[str] = None  # None: the usual AWS environment variables / profile
    secret_access_key: Optional[str] = None
    session_token: Optional[str] = None
    anon: bool = False


class InputError(ValueError):
    """A problem with the input as a whole; the message names the path or column."""


class OutputError(ValueError):
    """An output folder this run cannot use as it is (not empty, not this job's, written with other
    settings, its manifest unreadable); the message names the folder and what to do."""


def filesystem(path: str, s3: S3Config) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, path without scheme, absolute) for a local path or an s3:// URL."""
    options = {}
    if path.startswith("s3://"):
        client_kwargs = {k: v for k, v in {"endpoint_url": s3.endpoint_url, "region_name": s3.region}.items() if v}
        options = {"anon": s3.anon, "key": s3.access_key_id, "secret": s3.secret_access_key,
                   "token": s3.session_token, "client_kwargs": client_kwargs, "skip_instance_cache": True}
    fs, root = fsspec.core.url_to_fs(path, **options)
    return fs, root.rstrip("/")


def covers(outer: str, inner: str) -> bool:
    """Whether path `inner` is `outer` or lies under it (local paths resolved: `.`, `..`, links)."""
    def normal(path: str) -> str:
        if path.startswith("s3://"):
            return path.rstrip("/")
        return "file://" + os.path.realpath(os.path.expanduser(path.removeprefix("file://")))

    o, i = normal(outer), normal(inner)
    return i == o or i.startswith(o.rstrip("/") + "/")


def arrow_filesystem(fs: fsspec.AbstractFileSystem, path: str) -> pafs.FileSystem:
    """The same filesystem as Arrow's own (for Ray Data's readers and writers and the driver's
    dataset scans): local files and S3 natively, with the fsspec filesystem's settings. Not a
    Python-backed PyFileSystem: a scan's file sources would then hold Python objects that Arrow's
    I/O threads release, and one released while the interpreter exits aborts the process (exit 134).
    path: one path it will read or write (without scheme): on AWS without s3.region, its bucket's
    region is asked for, as s3fs does by itself (Arrow would take us-east-1)."""
    if "file" in _protocols(fs):
        return pafs.LocalFileSystem()
    if "s3" in _protocols(fs):
        options = fs.storage_options
        client = options.get("client_kwargs") or {}
        region, endpoint = client.get("region_name"), client.get("endpoint_url")
        if region is None and endpoint is None:
            region = pafs.resolve_s3_region(path.split("/")[0])
        return pafs.S3FileSystem(access_key=options.get("key"), secret_key=options.get("secret"),
                                 session_token=options.get("token"), anonymous=bool(options.get("anon")),
                                 region=region, endpoint_override=endpoint)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))  # another fsspec protocol: Arrow has no native one


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


@dataclass
class Shards:
    paths: list[str]  # full paths, sorted
    names: list[str]  # paths relative to the input root: stable across machines, used in ids
    schema: pa.Schema  # unified over all shards
    rows: list[int]  # rows per shard

    @property
    def num_rows(self) -> int:
        return sum(self.rows)


def list_shards(fs: fsspec.AbstractFileSystem, root: str, required: tuple[str, ...] = REQUIRED_COLUMNS,
                exclude: str | None = None) -> Shards:
    """The parquet shards under `root` (or the one file it names), their schemas and row counts;
    `exclude`: a folder under `root` to leave out (an output written inside the input)."""
    if fs.isfile(root):
        paths = [root]
        base = posixpath.dirname(root)
    elif fs.isdir(root):
        paths = sorted(p for p in fs.find(root) if p.endswith(".parquet") and not hidden(p, root)
                       and not (exclude and (p + "/").startswith(exclude.rstrip("/") + "/")))
        base = root
    else:
        raise InputError(f"input.path {root!r} does not exist")
    if not paths:
        raise InputError(f"input.path {root!r} holds no .parquet files")

    def metadata_of(path: str) -> pq.FileMetaData:
        try:
            with fs.open(path, "rb") as f:
                return pq.read_metadata(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"input shard {path!r} is not a readable parquet file: {e}") from None

    with ThreadPoolExecutor(16) as pool:  # footers only; many small reads, so in parallel
        metadata = list(pool.map(metadata_of, paths))
    schemas = [m.schema.to_arrow_schema() for m in metadata]
    for path, schema in zip(paths, schemas):
        missing = [c for c in required if c not in schema.names]
        if missing:
            raise InputError(
                f"input shard {path!r} has no {' or '.join(repr(c) for c in missing)} column "
                f"(columns: {', '.join(schema.names)}); every shard needs {', '.join(required)}"
            )
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputError(f"input shards under {root!r} have incompatible schemas: {e}") from None
    names = [posixpath.relpath(p, base) for p in paths]
    return Shards(paths, names, schema.remove_metadata(), [m.num_rows for m in metadata])


def hidden(path: str, root: str) -> bool:
    return any(part.startswith(("_", ".")) for part in posixpath.relpath(path, root).split("/"))


def require_empty_output(fs: fsspec.AbstractFileSystem, root: str, path: str) -> None:
    """The data jobs write a new output; they neither resume nor overwrite one."""
    if fs.exists(root) and fs.ls(root):
        raise OutputError(f"output.path {path!r} is not empty; choose a new one or empty it")


def find_bad_ids(fs: fsspec.AbstractFileSystem, shards: Shards, limit: int = 10) -> list[str]:
    """Null or duplicated values of the input `id` column, as `'id' in shard (rows ...)` lines.
    Reads only that column; keeps one 64-bit hash per row, then a second pass names the culprits."""
    def ids_of(path: str) -> list:
        with fs.open(path, "rb") as f:
            # Neither read-ahead nor pyarrow's own threads, from these pool threads over a Python file
            # object: with them, pyarrow 26 aborted the interpreter at exit in 1 run of 10 ("terminate
            # called without an active exception", exit 134); without, 0 of 30.
            return pq.read_table(f, columns=["id"], pre_buffer=False, use_threads=False).column("id").to_pylist()

    def digest(value) -> int:
        return int.from_bytes(hashlib.blake2b(repr(value).encode(), digest_size=8).digest(), "little")

    with ThreadPoolExecutor(16) as pool:
        hashes = np.concatenate([np.fromiter((digest(v) for v in ids), np.uint64, len(ids))
                                 for ids in pool.map(ids_of, shards.paths)] or [np.array([], np.uint64)])
    values, counts = np.unique(hashes, return_counts=True)
    suspects = set(values[counts > 1].tolist())
    null_hash = digest(None)
    if not suspects and null_hash not in set(values.tolist()):
        return []
    seen: dict = {}
    for name, path in zip(shards.names, shards.paths):
        for row, value in enumerate(ids_of(path)):
            if value is None or digest(value) in suspects:
                seen.setdefault(repr(value), []).append(f"{name}:{row}")
    bad = [(k, v) for k, v in seen.items() if k == "None" or len(v) > 1]
    return [f"{k} at {', '.join(v[:5])}{' ...' if len(v) > 5 else ''}" for k, v in bad[:limit]]


def write_text(fs: fsspec.AbstractFileSystem, path: str, text: str) -> None:
    with fs.open(path, "w") as f:
        f.write(text)


def write_json(fs: fsspec.AbstractFileSystem, path: str, obj) -> None:
    write_text(fs, path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_schema(fs: fsspec.AbstractFileSystem, path: str) -> pa.Schema:
    """One parquet file's schema, from its footer."""
    with fs.open(path, "rb") as f:
        return pq.read_schema(f)


def parquet_files(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    """The parquet files directly under `root`, not the side files (names starting with `_` or `.`),
    listed afresh: s3fs caches listings, and a job's pieces appear while it runs. For the labeling
    job these are its committed pieces (label/output.py)."""
    fs.invalidate_cache(root)
    return [p for p in fs.ls(root, detail=False) if p.endswith(".parquet") and not hidden(p, root)]


def read_columns(fs: fsspec.AbstractFileSystem, root: str, columns: list[str], optional: tuple[str, ...] = ()):
    """Streams a few columns of the parquet files under `root`, batch by batch (memory stays flat);
    `optional` ones only where the files have them."""
    pieces = parquet_files(fs, root)
    if pieces:  # an empty input commits no file, and a dataset of no files has no columns
        dataset = pads.dataset(pieces, filesystem=arrow_filesystem(fs, root), format="parquet")
        present = [c for c in optional if c in dataset.schema.names and c not in columns]
        yield from dataset.to_batches(columns=list(columns) + present)
