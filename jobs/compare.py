"""Agreement across runs: several outputs of the same rows (two models, mask.names on and off, two
prompt formats, a judge output), joined by id; per row whether the runs agree and their consensus,
and a summary of pairwise agreement.

    python jobs/compare.py [conf=NAME] input.paths=[A,B,...] output.path=OUT [input.names=[a,b,...]]

Profiles are conf/compare/NAME.yaml (default `local`). Exit codes: 0 written; 1 failed; 2 bad config, an
input that is not a finished run, or runs whose id sets differ (the counts on each side are printed).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import compare_command  # noqa: E402

if __name__ == "__main__":
    compare_command()
