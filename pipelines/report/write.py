"""Writing an output's report, `_report.html` beside its `_summary.json`: by the run skeleton at the end
of every finished run (labeling, re-validation, judge, execution), by compare, and by `jobs/report.py`
for any finished output."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from pipelines import storage
from pipelines.config import InputConfig
from pipelines.report.page import render
from pipelines.report.rows import SHOWN_COLUMNS, pick
from pipelines.storage import S3Config

REPORT_FILE = "_report.html"
KIND_OF_MODE = {"generate": "Labeling", "revalidate": "Re-validation", "dry_run": "Dry run", "judge": "Judge",
                "execute": "Execution", "compare": "Compare"}


def write_report(fs, root: str, path: str, mode: str | None, summary: dict, settings: dict | None) -> str:
    """Writes the report of the output at `root` (`path` as the user named it) from its summary, the
    settings that made it and one pass over its rows; returns the report's path."""
    picked = pick(storage.read_columns(fs, root, [], tuple(SHOWN_COLUMNS)))
    page = render(KIND_OF_MODE.get(mode, "Run"), summary, settings, picked)
    storage.write_text(fs, posixpath.join(root, REPORT_FILE), page)
    return posixpath.join(path.rstrip("/"), REPORT_FILE)


@dataclass
class ReportConfig:
    input: InputConfig = field(default_factory=InputConfig)  # any finished output of these jobs; the report goes beside it
    s3: S3Config = field(default_factory=S3Config)
