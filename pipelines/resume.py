"""Resume bookkeeping, pure: which input rows are already written, and whether a rerun matches.

Every output file ("piece") records in its parquet footer the input rows it holds, as row ranges
per input shard. A piece appears atomically (written aside, then moved into place), so the set of
pieces present is the set of rows durably done: a rerun reads the footers, skips those rows at
read time, and generates only the rest. See docs/design.md, "Resume".
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Iterable

COVERAGE_KEY = b"hammer_labeling.coverage"  # footer metadata: {shard name: [[start, end), ...]}
# Bump when validation, parsing or scoring change what a label means: a rerun then refuses to mix.
VALIDATION_VERSION = "2"

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
    """Letters, digits, `.`, `_` and `-` only, not starting with a dot: cannot climb out of a folder."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".") or "_"


def fingerprint(config_plain: dict, input_listing: list[tuple[str, int]], model: str | None, mode: str) -> dict:
    """What must match for a rerun to continue an output: everything that changes the rows."""
    return {
        "mode": mode,
        "model": model,
        "prompt_format": config_plain["prompt"]["format"],
        "generation": config_plain["generation"],
        "engine_kwargs": config_plain["engine"]["engine_kwargs"],
        "mask": {**config_plain["mask"], "seed": config_plain["seed"]},
        "validation": {**config_plain["validation"], "version": VALIDATION_VERSION},
        "input": [list(item) for item in input_listing],
    }


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
