from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """The demo checkpoint, built once and shared with `make run`."""
    from pipelines.tiny_model import ensure_tiny_model

    return ensure_tiny_model(REPO / ".cache" / "models" / "tiny-qwen2")
