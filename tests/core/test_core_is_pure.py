"""The pure core imports nothing heavy: no Ray, Arrow or omegaconf, in a fresh interpreter."""

import subprocess
import sys

from tests.conftest import REPO

CORE = ["reasons", "tools", "prompts", "parsing", "validation", "scoring", "masking", "sizing", "confidence", "judging"]
# A meta-path finder that refuses the heavy packages, installed before anything is imported.
BLOCK = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ray", "pyarrow", "omegaconf", "fsspec", "vllm", "torch"}:
            raise ImportError("the core must not import " + name)
sys.meta_path.insert(0, Refuse())
"""


def test_the_core_imports_without_ray_arrow_or_omegaconf():
    imports = "\n".join(f"import pipelines.core.{name}" for name in CORE)
    check = "\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {'ray', 'pyarrow', 'omegaconf'}))"
    proc = subprocess.run([sys.executable, "-c", BLOCK + imports + check], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_the_refusal_is_real():
    proc = subprocess.run([sys.executable, "-c", BLOCK + "import pipelines.label.config"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "must not import omegaconf" in proc.stderr
