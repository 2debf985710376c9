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

from pipelines.cli import data_job_main  # noqa: E402
from pipelines.config import profile_loader  # noqa: E402
from pipelines.recipe import leaderboard  # noqa: E402
from pipelines.recipe.config import LeaderboardConfig  # noqa: E402

if __name__ == "__main__":
    sys.exit(data_job_main(sys.argv[1:], profile_loader(LeaderboardConfig, "leaderboard"), leaderboard.run))
