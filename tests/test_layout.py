"""The folders' architecture, read from the code's imports: each part imports only the parts below it."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PIPELINES = REPO / "pipelines"


def imported_modules(folder: Path) -> set[tuple[str, str]]:
    """(file, imported module) for every `pipelines.*` import under folder (relative imports are not used)."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found.update((str(path.relative_to(REPO)), n) for n in names if n.startswith("pipelines."))
    return found


# part -> the parts of pipelines/ it must not import (a job's package, or a part above it)
FORBIDDEN = {
    "engines": ("pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.run", "pipelines.cli",
                "pipelines.api"),
    "models": ("pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.engines", "pipelines.run",
               "pipelines.cli", "pipelines.api"),
    "run": ("pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.cli", "pipelines.api"),
    "label": ("pipelines.judge", "pipelines.recipe", "pipelines.cli", "pipelines.api"),
}


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_imports_nothing_above_it(part):
    wrong = sorted((f, m) for f, m in imported_modules(PIPELINES / part) if m.startswith(FORBIDDEN[part]))
    assert wrong == []


def test_the_judge_reads_only_the_labeling_outputs_columns_from_label():
    from_label = sorted((f, m) for f, m in imported_modules(PIPELINES / "judge") if m.startswith("pipelines.label"))
    assert {m for _, m in from_label} <= {"pipelines.label.schema", "pipelines.label.schema.read_calls"}, from_label


def test_the_check_sees_an_import():
    """imported_modules finds a real import (else the tests above would pass on nothing)."""
    assert ("pipelines/judge/plan.py", "pipelines.run.plan") in imported_modules(PIPELINES / "judge")
