"""Writes the report of any finished output (labeling, re-validation, judge, execution, compare):
`_report.html` beside its `_summary.json`, one file to open in a browser. No model, no Ray.

    python jobs/report.py [conf=NAME] input.path=OUTPUT

Profiles are conf/report/NAME.yaml (default `local`: make run's out/local). Exit codes: 0 written;
1 the job failed; 2 bad config, or not a finished output.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import report_command  # noqa: E402

if __name__ == "__main__":
    report_command()
