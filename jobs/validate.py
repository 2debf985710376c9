"""Re-validate model outputs without a model: parquet with `query`, `tools` and `raw_output` (an
earlier run's output, or outputs produced elsewhere) -> the same annotated columns and summary.

    python jobs/validate.py input.path=... output.path=... [key=value ...]

The same stages as jobs/label.py, with generation replaced by the input's `raw_output` column.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import validate_command  # noqa: E402

if __name__ == "__main__":
    validate_command()
