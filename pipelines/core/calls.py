"""Calls as the output's call columns hold them (`calls`, `consensus_calls`): `arguments` as a JSON
string (one Arrow type for any arguments), and back. Every reader of a labeling output uses these."""

from __future__ import annotations

import json

from pipelines.core import untrusted


def written_calls(calls: list[dict] | None) -> list[dict] | None:
    """Calls as the CALL columns hold them (`calls`, `consensus_calls`, ...): `arguments` as a JSON string."""
    if calls is None:
        return None
    return [{"name": c["name"], "arguments": untrusted.dumps(c["arguments"])} for c in calls]


def read_calls(calls: list[dict] | None) -> list[dict] | None:
    """A CALL column's calls back to calls with an `arguments` object (written_calls undone)."""
    if calls is None:
        return None
    return [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in calls]
