"""The labeling job's output protocol, in one place: pieces, their row coverage, the manifest and
its fingerprint, the `_tmp/` staging folder and the side files.

Every output file ("piece") records in its parquet footer the input rows it holds, as row ranges
per input shard. A piece appears atomically (written aside, then moved into place), so the set of
pieces present is the set of rows durably done: a rerun reads the footers, skips those rows at
read time, and generates only the rest. See docs/design.md, "Resume".
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.run import lease
from pipelines.storage import SUMMARY_FILE, InputError, OutputError, parquet_files, write_json

COVERAGE_KEY = b"hammer_labeling.coverage"  # footer metadata: {shard name: [[start, end), ...]}

Ranges = list[list[int]]  # sorted, disjoint, half-open [start, end)


def to_ranges(rows: Iterable[int]) -> Ranges:
    out: Ranges = []
    for r in sorted(set(rows)):
        if out and out[-1][1] == r:
            out[-1][1] = r + 1
        else:
            out.append([r, r + 1])
    return out


def merge_ranges(*many: Ranges) -> Ranges:
    out: Ranges = []
    for start, end in sorted(r for ranges in many for r in ranges):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def count(ranges: Ranges) -> int:
    return sum(end - start for start, end in ranges)


def skip_mask(ranges: Ranges, offset: int, n: int) -> list[bool]:
    """For rows offset..offset+n-1: True where the row is already done."""
    mask = [False] * n
    for start, end in ranges:
        for r in range(max(start, offset), min(end, offset + n)):
            mask[r - offset] = True
    return mask


def piece_name(coverage: dict[str, Ranges]) -> str:
    """A deterministic, safe file name for the rows a piece holds: never a path from the data."""
    first = min(coverage)
    stem = safe_name(first.rsplit(".", 1)[0])[:60]
    start = min(r[0] for r in coverage[first])
    digest = hashlib.sha256(json.dumps(coverage, sort_keys=True).encode()).hexdigest()[:12]
    return f"{stem}-{start:09d}-{digest}.parquet"


def safe_name(text: str) -> str:
    """ASCII letters, digits, `.`, `_` and `-` only (accents dropped, other characters `_`), starting
    with a letter or digit: it cannot climb out of a folder, and is never taken for a side file
    (`_...`, `.`...), which resume and the summary do not read."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"^[^A-Za-z0-9]+", "", re.sub(r"[^A-Za-z0-9._-]", "_", ascii_text)) or "shard"


def fingerprint(label_settings: dict, input_listing: list[tuple[str, int]], mode: str) -> dict:
    """What must match for a rerun to continue an output: the settings that change labels
    (label/config.py), the run's mode, and the input listing (shard names and row counts)."""
    return {**label_settings, "mode": mode, "input": [list(item) for item in input_listing]}


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable `key: old -> new` lines between two fingerprints."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, name + ".")
        elif a != b:
            if key == "input":
                out.append(f"input: the shard listing changed ({len(a or [])} -> {len(b or [])} shards, or their row counts)")
            else:
                out.append(f"{name}: {json.dumps(a)} -> {json.dumps(b)}")
    return out


# --------------------------------------------------------------- the output folder and its pieces

CONFIG_FILE = "_config.yaml"
MANIFEST_FILE = "_manifest.json"
BFCL_TABLE_FILE = "_bfcl.md"  # BFCL's table in Markdown, beside the summary, when rows carry BFCL categories
TMP_DIR = "_tmp"


def open_output(fs: fsspec.AbstractFileSystem, root: str, fingerprint: dict, resume: str) -> dict[str, Ranges]:
    """Makes `root` ready for this run and returns the input rows its pieces already hold.

    A new or empty output starts fresh. An earlier output of the same job (same fingerprint, see
    `_manifest.json`) is continued. Anything else stops the job, unless resume=overwrite, which
    deletes an earlier output of this job and starts over.
    """
    manifest_path = posixpath.join(root, MANIFEST_FILE)
    fs.invalidate_cache(root)
    entries = [p for p in fs.ls(root, detail=False) if not _is_lease(p)] if fs.exists(root) else []
    has_files = bool(entries)
    has_manifest = has_files and fs.exists(manifest_path)
    if has_files and not has_manifest:
        raise OutputError(
            f"output.path {root!r} holds files but no {MANIFEST_FILE}: it is not an output of this job, "
            "and nothing there is deleted; choose a new output.path"
        )
    if has_manifest and resume == "overwrite":
        fs.rm(entries, recursive=True)  # all but this run's lease
    elif has_manifest:
        try:
            previous = json.loads(fs.cat(manifest_path))["fingerprint"]
            if not isinstance(previous, dict):
                raise TypeError("'fingerprint' is not an object")
        except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise OutputError(
                f"{manifest_path} cannot be read ({type(e).__name__}: {e}): it records the settings that made the "
                "rows here, so this run cannot tell whether it may continue them; restore it, set "
                "resume=overwrite to start over, or choose a new output.path") from None
        changed = differences(previous, fingerprint)
        if changed:
            raise OutputError(
                f"output.path {root!r} was written with other settings ({'; '.join(changed)}); rerun with "
                "the same settings to resume, set resume=overwrite to start over, or choose a new output.path"
            )
    fs.makedirs(root, exist_ok=True)
    write_json(fs, manifest_path, {"fingerprint": fingerprint})
    remove_tmp(fs, root)  # pieces a crashed run did not finish: never committed, never read
    return committed_coverage(fs, root)


@dataclass(frozen=True)
class Finished:
    """A finished output of these jobs, as a later job (judge, compare, export) reads it."""
    mode: str | None  # the manifest's: generate, revalidate, dry_run, judge, execute or compare
    summary: dict
    settings: dict | None = None  # the fingerprint's settings that change the output (not the mode, not the input)


def finished_output(fs: fsspec.AbstractFileSystem, root: str, key: str, path: str) -> Finished:
    """The mode and summary of a finished output of these jobs (labeling, re-validation, judge,
    compare); InputError naming `key` otherwise."""
    def read(name: str):
        try:
            return json.loads(fs.cat(posixpath.join(root, name)))
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise InputError(f"{key} {path!r}: {name} cannot be read ({e})") from None

    manifest = read(MANIFEST_FILE)
    if manifest is None:
        raise InputError(f"{key} {path!r} has no {MANIFEST_FILE}: it is not an output of jobs/label.py, "
                         "jobs/validate.py or jobs/judge.py")
    summary = read(SUMMARY_FILE)
    if summary is None or summary.get("rows") != summary.get("input_rows"):
        written = "no summary yet" if summary is None else f"{summary.get('rows')} of {summary.get('input_rows')} rows"
        raise InputError(f"{key} {path!r} is not a finished run ({written}): rerun the job that writes it "
                         "until it completes, then this one")
    fingerprint = manifest.get("fingerprint") if isinstance(manifest, dict) else None
    if not isinstance(fingerprint, dict):
        return Finished(None, summary)
    return Finished(fingerprint.get("mode"), summary, {k: v for k, v in fingerprint.items() if k not in ("mode", "input")})


def _is_lease(path: str) -> bool:
    return posixpath.basename(path).startswith(lease.LEASE_FILE)  # the record and its local lock file


def remove_tmp(fs: fsspec.AbstractFileSystem, root: str) -> None:
    tmp = posixpath.join(root, TMP_DIR)
    if fs.exists(tmp):
        fs.rm(tmp, recursive=True)


def committed_coverage(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, Ranges]:
    """Input rows held by the committed pieces under `root`, per input shard (footers only)."""
    pieces = parquet_files(fs, root)

    def coverage_of(path: str) -> dict:
        with fs.open(path, "rb") as f:
            metadata = pq.read_metadata(f).metadata or {}
        return json.loads(metadata.get(COVERAGE_KEY, b"{}"))

    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(coverage_of, pieces))
    shards = {name for c in found for name in c}
    return {name: merge_ranges(*(c.get(name, []) for c in found)) for name in shards}


def write_piece(fs: fsspec.AbstractFileSystem, root: str, table: pa.Table, coverage: dict[str, Ranges],
                lease_token: str) -> str:
    """Commits one output file atomically: written under _tmp/, then moved into place (a rename on
    local disks, a single copy on S3), so a reader sees it whole or not at all. The name is a
    function of the rows it holds, so a retried task rewrites the same file. Only while this run
    holds the output's lease (a run that lost it raises lease.LeaseLost and commits nothing)."""
    name = piece_name(coverage)
    tmp = posixpath.join(root, TMP_DIR, f"{name}.{uuid.uuid4().hex}")
    table = table.replace_schema_metadata({COVERAGE_KEY: json.dumps(coverage, sort_keys=True)})
    fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
    with fs.open(tmp, "wb") as f:
        pq.write_table(table, f)
    final = posixpath.join(root, name)
    lease.check(fs, root, lease_token)
    fs.mv(tmp, final)
    return final
