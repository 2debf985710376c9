"""A judge model's verdict on each ok / no_call row of a labeling output: agree, disagree or unparseable,
with one sentence of reason. Every row comes out; the rest pass untouched.

    python jobs/judge.py [conf=NAME] [input.path=LABELS] [output.path=OUT] [judge.model.source=MODEL] [key=value ...]
    ray job submit --working-dir . -- python jobs/judge.py conf=prod input.path=s3://... output.path=s3://...

Profiles are conf/judge/NAME.yaml over conf/judge/base.yaml (default `local`: jobs/label.py's demo output,
out/local, judged by the same tiny model into out/judge). Exit codes: 0 every input row has an output
row; 1 the job failed or lost rows; 2 bad config or input (not a finished labeling output).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import judge_command  # noqa: E402

if __name__ == "__main__":
    judge_command()
