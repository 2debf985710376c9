"""Label (query, tools) parquet shards with a Hammer model.

    python jobs/label.py [conf=NAME] [key=value ...]
    ray job submit --working-dir . -- python jobs/label.py conf=prod input.path=s3://... output.path=s3://...

Exit codes: 0 every input row has an output row; 1 the job failed or lost rows; 2 bad config or input.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.config import ConfigError, load_config, to_yaml  # noqa: E402
from pipelines.io import InputError  # noqa: E402
from pipelines.labeling import run  # noqa: E402
from pipelines.summary import format_table  # noqa: E402

DEMO_NOTICE = """NOTE: model.build_tiny=true: the model is a tiny Qwen2 with RANDOM weights, built locally, so its
labels are noise. To label for real, point model.source at a Hammer checkpoint, e.g.
  python jobs/label.py conf=local model.build_tiny=false model.source=MadeAgents/Hammer-7b engine.device=gpu
(a hub id, a local directory, or an s3:// prefix)."""


def main(argv: list[str]) -> int:
    try:
        config = load_config(argv)
    except ConfigError as e:
        print(f"config error: {e}")
        return 2
    print(f"run {config.run_id}, resolved config (secrets redacted):\n{to_yaml(config)}")
    if config.model.build_tiny:
        print(DEMO_NOTICE)
    try:
        summary = run(config)
    except (ConfigError, InputError) as e:
        print(f"error: {e}")
        return 2
    print(format_table(summary))
    print(f"output: {config.output.path} (summary: _summary.json, config: _config.yaml)")
    if summary["rows"] != summary["input_rows"]:
        print(f"error: {summary['input_rows']} input rows but {summary['rows']} output rows")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
