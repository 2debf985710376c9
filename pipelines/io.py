"""Filesystems (fsspec: local or s3://), shard listing, the output folder and its side files."""

from __future__ import annotations

import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyarrow.fs import FSSpecHandler, PyFileSystem

from pipelines.config import S3Config

REQUIRED_COLUMNS = ("query", "tools")
SUMMARY_FILE = "_summary.json"
CONFIG_FILE = "_config.yaml"


class InputError(ValueError):
    """A problem with the input as a whole; the message names the path or column."""


def filesystem(path: str, s3: S3Config) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, path without scheme, absolute) for a local path or an s3:// URL."""
    options = {}
    if path.startswith("s3://"):
        client_kwargs = {k: v for k, v in {"endpoint_url": s3.endpoint_url, "region_name": s3.region}.items() if v}
        options = {"anon": s3.anon, "key": s3.access_key_id, "secret": s3.secret_access_key,
                   "token": s3.session_token, "client_kwargs": client_kwargs, "skip_instance_cache": True}
    fs, root = fsspec.core.url_to_fs(path, **options)
    return fs, root.rstrip("/")


def arrow_filesystem(fs: fsspec.AbstractFileSystem) -> PyFileSystem:
    """The same filesystem for Ray Data's readers and writers, which take pyarrow's."""
    return PyFileSystem(FSSpecHandler(fs))


@dataclass
class Shards:
    paths: list[str]  # full paths, sorted
    names: list[str]  # paths relative to the input root: stable across machines, used in ids
    schema: pa.Schema  # unified over all shards
    num_rows: int


def list_shards(fs: fsspec.AbstractFileSystem, root: str, required: tuple[str, ...] = REQUIRED_COLUMNS) -> Shards:
    if fs.isfile(root):
        paths = [root]
        base = posixpath.dirname(root)
    elif fs.isdir(root):
        paths = sorted(p for p in fs.find(root) if p.endswith(".parquet") and not _hidden(p, root))
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
    return Shards(paths, names, schema.remove_metadata(), sum(m.num_rows for m in metadata))


def _hidden(path: str, root: str) -> bool:
    return any(part.startswith(("_", ".")) for part in posixpath.relpath(path, root).split("/"))


def prepare_output(fs: fsspec.AbstractFileSystem, root: str, overwrite: bool) -> None:
    if fs.exists(root) and fs.ls(root):
        if not overwrite:
            raise InputError(
                f"output.path {root!r} is not empty; choose a new output.path or set output.overwrite=true"
            )
        fs.rm(root, recursive=True)
    fs.makedirs(root, exist_ok=True)


def write_text(fs: fsspec.AbstractFileSystem, path: str, text: str) -> None:
    with fs.open(path, "w") as f:
        f.write(text)


def read_summary_columns(fs: fsspec.AbstractFileSystem, root: str, columns: list[str]):
    """Streams a few columns of the written output, batch by batch (memory stays flat)."""
    dataset = pads.dataset(root, filesystem=arrow_filesystem(fs), format="parquet")
    yield from dataset.to_batches(columns=columns)


def write_json(fs: fsspec.AbstractFileSystem, path: str, obj) -> None:
    write_text(fs, path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
