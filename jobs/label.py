"""Label (query, tools) parquet shards with a Hammer model.

    python jobs/label.py [conf=NAME] [key=value ...]
    ray job submit --working-dir . -- python jobs/label.py conf=prod input.path=s3://... output.path=s3://...

Exit codes: 0 every input row has an output row; 1 the job failed or lost rows; 2 bad config or input.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import label_command  # noqa: E402

if __name__ == "__main__":
    label_command()
