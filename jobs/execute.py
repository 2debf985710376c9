"""Runs the calls of a finished labeling output on real implementations, without a model: each row's
calls (and its gold's) in a worker process of its own, the exec_* columns beside every row.

    python jobs/execute.py [conf=NAME] [input.path=LABELS] [output.path=OUT] [execution.implementations=[...]] [key=value ...]
    ray job submit --working-dir . -- python jobs/execute.py conf=NAME input.path=s3://... output.path=s3://...

Profiles are conf/execute/NAME.yaml over conf/execute/base.yaml (default `local`: BFCL's multi-turn first
turns labeled into out/multi-turn, on the leaderboard's environments). Exit codes: 0 every input row has an
output row; 1 the job failed or lost rows; 2 bad config or input.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import execute_command  # noqa: E402

if __name__ == "__main__":
    execute_command()
