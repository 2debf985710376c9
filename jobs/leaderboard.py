"""BFCL's table of a finished labeling output whose rows carry BFCL categories, without a model.

    python jobs/leaderboard.py [conf=NAME] input.path=LABELS [output.path=TABLE.md] [model=NAME]

Profiles are conf/leaderboard/NAME.yaml (default `local`: out/local). Prints the table (the
aggregates, then each category) and its Markdown form, in the columns of the Hammer-7b card's table;
output.path also writes the Markdown. Exit codes: 0 done; 1 failed; 2 bad config, or an input that is
not a finished labeling output with BFCL categories.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import leaderboard_command  # noqa: E402

if __name__ == "__main__":
    leaderboard_command()
