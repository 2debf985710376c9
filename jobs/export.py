"""A labeling output -> training data: xLAM rows or OpenAI chat records, as JSON Lines or parquet,
only the rows worth keeping (status, agreement, correctness), de-duplicated.

    python jobs/export.py [conf=NAME] [input.path=LABELS] [output.path=OUT] [export.format=xlam|openai]
        [export.file_format=jsonl|parquet] [export.min_agreement=0.8] [export.require_correct=true]

Profiles are conf/export/NAME.yaml (default `local`: out/local, jobs/label.py's demo output, into
out/export). Exit codes: 0 written; 1 failed; 2 bad config, or an input that is not a labeling output.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import export_command  # noqa: E402

if __name__ == "__main__":
    export_command()
