"""Hammer's data recipe on Ray Data: irrelevance rows and name/default masking over query/tool shards.

    python jobs/augment.py [conf=NAME] [input.path=SHARDS] [output.path=OUT] [seed=0] [augment.irrelevance.fraction=0.125]
        [augment.mask.probability=0.667] [augment.mask.functions|parameters|defaults|shuffle=true|false]

Writes the labeling job's input schema plus `origin` (original, irrelevance, masked) and `mask_map`
(how to map a masked row back). Profiles are conf/augment/NAME.yaml (default `local`: out/shards
into out/augmented). The same command writes the same rows. Exit codes as jobs/label.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, wherever this is started from

from pipelines.cli import augment_command  # noqa: E402

if __name__ == "__main__":
    augment_command()
