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
    "core": ("pipelines.engines", "pipelines.models", "pipelines.label", "pipelines.judge", "pipelines.recipe",
             "pipelines.run", "pipelines.cli", "pipelines.api", "pipelines.checklist"),
    "engines": ("pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.run", "pipelines.cli",
                "pipelines.api"),
    "models": ("pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.engines", "pipelines.run",
               "pipelines.cli", "pipelines.api"),
    "run": ("pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.cli", "pipelines.api"),
    "execution": ("pipelines.judge", "pipelines.recipe", "pipelines.cli", "pipelines.api", "pipelines.engines",
                  "pipelines.label"),
    "label": ("pipelines.judge", "pipelines.recipe", "pipelines.cli", "pipelines.api"),
    # the judge reads a labeling output's calls through core.calls, its columns by name: nothing of label/
    "judge": ("pipelines.label", "pipelines.recipe", "pipelines.execution", "pipelines.cli", "pipelines.api"),
    # the report reads summaries and rows; it knows no job (the skeleton, compare and the command call it)
    "report": ("pipelines.run", "pipelines.label", "pipelines.judge", "pipelines.recipe", "pipelines.execution",
               "pipelines.engines", "pipelines.cli", "pipelines.api"),
}


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_imports_nothing_above_it(part):
    wrong = sorted((f, m) for f, m in imported_modules(PIPELINES / part) if m.startswith(FORBIDDEN[part]))
    assert wrong == []


def test_the_check_sees_an_import():
    """imported_modules finds a real import (else the tests above would pass on nothing)."""
    assert ("pipelines/judge/plan.py", "pipelines.run.plan") in imported_modules(PIPELINES / "judge")
    assert ("pipelines/judge/stages.py", "pipelines.core.calls") in imported_modules(PIPELINES / "judge")


def test_no_job_imports_an_engine_kinds_module():
    """The jobs reach a kind through the registry (engines.kind_of), never through its subpackage."""
    kinds = tuple(f"pipelines.engines.{name}" for name in ("vllm", "endpoint"))
    outside = {(f, m) for f, m in imported_modules(PIPELINES) if not f.startswith("pipelines/engines/")}
    assert sorted((f, m) for f, m in outside if m.startswith(kinds)) == []


def kind_comparisons(source: str) -> list[int]:
    """Lines comparing something's `.kind` (engine.kind == "vllm", section.engine.kind in (...))."""
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Compare)
            and any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in [node.left, *node.comparators])]


def test_no_code_outside_engines_tests_a_kinds_name():
    """`engine.kind == "..."` outside pipelines/engines/ would be a second list of the kinds."""
    found = [f"{path.relative_to(REPO)}:{line}" for path in PIPELINES.rglob("*.py")
             if not path.is_relative_to(PIPELINES / "engines") for line in kind_comparisons(path.read_text())]
    assert found == []


def test_every_registered_kind_offers_the_whole_interface():
    from pipelines.engines import KINDS, EngineKind, kind_of
    from pipelines.engines.config import EngineConfig

    wanted = [name for name in dir(EngineKind) if not name.startswith("_")]
    assert "generate" in wanted and "check_pool" in wanted
    for name in KINDS:
        kind = kind_of(EngineConfig(kind=name))
        assert kind.name == name
        assert [n for n in wanted if not hasattr(type(kind), n) and not hasattr(kind, n)] == [], name


def test_the_kind_check_sees_a_comparison():
    """The scan above finds a kind test where there is one (else it would pass on nothing)."""
    assert kind_comparisons('if config.engine.kind == "endpoint":\n    pass\nx = engine.kind in KINDS\n') == [1, 3]
