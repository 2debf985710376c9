"""Any function-calling source -> the query/tool parquet shards that jobs/label.py reads.

    python jobs/prepare.py [conf=NAME] [input.path=SOURCE] [output.path=OUT] [output.rows_per_shard=N] [prepare.drop_bad=true]

Profiles are conf/prepare/NAME.yaml (default `local`: the sample xLAM file into out/shards).

SOURCE: local JSON / JSON Lines / parquet / CSV files (a file or a folder), or a hub dataset name
such as Salesforce/xlam-function-calling-60k (input.split picks the split). xLAM rows (query, tools,
answers) and BFCL rows (question, function) are both read. Exit codes: 0 written; 1 failed; 2 bad
config or input (bad rows are listed with their position and reason).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import prepare_command  # noqa: E402

if __name__ == "__main__":
    prepare_command()
