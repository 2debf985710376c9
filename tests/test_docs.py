"""The docs stay true: checked against the schema and the code, not only for names.

docs/configuration.md: every key of the schema, each default as the schema and conf/base.yaml make
it, and every choice a key accepts. docs/output.md: every added column with its Arrow type, every
status, call type and reason code the code can emit. README: its short key table names real keys.
"""

import dataclasses
import re

import pytest
from omegaconf import OmegaConf

from pipelines.config import _CHOICES
from pipelines.core.reasons import STATUSES
from pipelines.core.validation import CALL_TYPES
from pipelines.config import CONF_DIR
from pipelines.label.config import LabelConfig
from pipelines.label.schema import ADDED_COLUMNS
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text()
OUTPUT = (REPO / "docs" / "output.md").read_text()


def _leaf_keys(cls, prefix=""):
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from _leaf_keys(type(default), key + ".")
        else:
            yield key


LEAVES = list(_leaf_keys(LabelConfig))


def _table_rows(text: str, header: str):
    """The rows of the markdown table whose header line starts with `header`, as lists of cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def _documented_defaults(text: str = CONFIGURATION) -> dict[str, str]:
    """key -> the default as written in a page's first key table (a cell may list several keys and
    defaults; a row whose default is "as ..." points at another table)."""
    out = {}
    for keys, defaults, _ in _table_rows(text, "| key | default | meaning |"):
        if defaults.startswith("as "):
            continue
        names = re.findall(r"`([\w.]+)`", keys)
        values = [v.strip() for v in defaults.split(", ")]
        if len(values) == 1:
            values = values * len(names)
        assert len(values) == len(names), f"{keys}: {len(names)} keys but defaults {defaults!r}"
        out.update(zip(names, values))
    return out


def _spelled(value) -> str:
    """A default as the docs write it."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def test_every_config_key_is_documented_and_every_documented_key_exists():
    documented = _documented_defaults()
    assert [k for k in LEAVES if k not in documented] == []
    assert [k for k in documented if k not in LEAVES] == []


def test_every_documented_default_is_the_schemas():
    effective = OmegaConf.merge(OmegaConf.structured(LabelConfig), OmegaConf.load(CONF_DIR / "base.yaml"))
    wrong = {}
    for key, written in _documented_defaults().items():
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(effective, parent) if parent else effective
        if OmegaConf.is_missing(node, leaf):
            expected = "required"
        elif key == "run.id":
            expected = "new"  # None in the schema: made at start
        else:
            value = node[leaf]
            expected = _spelled(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
        if written != expected:
            wrong[key] = (written, expected)
    assert wrong == {}


def test_every_choice_a_key_accepts_is_named_in_its_meaning():
    meaning = {}
    for keys, _, text in _table_rows(CONFIGURATION, "| key | default | meaning |"):
        for name in re.findall(r"`([\w.]+)`", keys):
            meaning[name] = text
    missing = {key: c for key, choices in _CHOICES.items() if key in LEAVES for c in choices
               if c is not None and f"`{c}`" not in meaning[key]}
    assert missing == {}


def test_the_readme_names_real_keys_and_every_status():
    keys = [k for cells in _table_rows(README, "| key | meaning |") for k in re.findall(r"`([\w.]+)`", cells[0])]
    assert keys and [k for k in keys if k not in LEAVES] == []
    assert [s for s in STATUSES if f"`{s}`" not in README.split("## Where the rest lives")[0]] == []


def _arrow_type(text: str) -> str:
    return text.replace("item: ", "").replace(" ", "")


def test_the_output_table_is_the_column_contract_with_its_types():
    documented = {re.sub(r"`", "", name): _arrow_type(t)
                  for name, t, _ in _table_rows(OUTPUT, "| column | type | meaning |")}
    assert documented == {name: _arrow_type(str(t)) for name, (t, _) in ADDED_COLUMNS.items()}


def test_every_status_and_call_type_is_explained():
    assert [s for s in STATUSES + CALL_TYPES if f"`{s}`" not in OUTPUT] == []


def _codes_in_source(pattern: str) -> set[str]:
    source = "".join(p.read_text() for p in (REPO / "pipelines").rglob("*.py"))
    return set(re.findall(pattern, source))


@pytest.mark.parametrize("pattern", [r'BadInput\(\s*"(\w+)"', r'Reason\(\s*"(\w+)"'])
def test_every_reason_code_the_code_emits_is_documented(pattern):
    codes = _codes_in_source(pattern)
    documented = OUTPUT + "".join((REPO / "docs" / page).read_text()
                                  for page in ("recipe.md", "judge-and-compare.md", "execution.md"))
    assert codes and [c for c in sorted(codes) if f"`{c}`" not in documented] == []


def test_every_schema_check_code_is_documented():
    from pipelines.core.validation import SCHEMA_KEYWORD_CODES, TYPE_MISMATCH

    codes = {*SCHEMA_KEYWORD_CODES.values(), TYPE_MISMATCH}
    assert [c for c in sorted(codes) if f"| `{c}` | invalid_call |" not in OUTPUT] == []


def test_the_gpu_sizing_table_is_the_one_bench_gpu_sizing_prints():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_sizing", REPO / "bench" / "gpu_sizing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.markdown() in (REPO / "docs" / "gpu.md").read_text()
    assert module.side_by_side() in (REPO / "docs" / "gpu.md").read_text()


def test_every_link_between_the_docs_resolves():
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)\)", page.read_text()):
            if not target.startswith("http") and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []


def test_the_stage_contracts_in_the_design_notes_are_the_stages_declarations():
    from pipelines import engines
    from pipelines.label.stages import PromptStage

    rows = {cells[0]: cells for cells in _table_rows((REPO / "docs" / "design.md").read_text(),
                                                     "| stage | reads | writes |")}

    def names(cell):
        return re.findall(r"`(\w+)`", cell)

    assert names(rows["`PromptStage`"][1])[:len(PromptStage.CONTRACT.reads)] == list(PromptStage.CONTRACT.reads)
    assert names(rows["`PromptStage`"][2]) == list(PromptStage.CONTRACT.writes)
    assert names(rows["`EngineKind.generate`"][1]) == [*engines.READS, engines.PROMPT_TOKENS_COL, engines.MESSAGES_COL,
                                                   engines.TOOLS_REQUEST_COL]
    assert names(rows["`EngineKind.generate`"][2])[:len(engines.WRITES)] == list(engines.WRITES)


JUDGE_PAGE = (REPO / "docs" / "judge-and-compare.md").read_text()


def test_the_judge_page_documents_every_judge_key_with_the_schemas_default():
    from pipelines.judge.config import JUDGE_CONF_DIR, JudgeConfig

    rows = _table_rows(JUDGE_PAGE, "| key | default | meaning |")
    wildcards = [k[:-1] for cells in rows for k in re.findall(r"`([\w.]+\.\*)`", cells[0])]
    named = {k for cells in rows for k in re.findall(r"`([\w.]+)`", cells[0])}
    leaves = list(_leaf_keys(JudgeConfig))
    assert [k for k in leaves if k not in named and not any(k.startswith(w) for w in wildcards)] == []
    effective = OmegaConf.merge(OmegaConf.structured(JudgeConfig), OmegaConf.load(JUDGE_CONF_DIR / "base.yaml"))
    wrong = {}
    for key, written in _documented_defaults(JUDGE_PAGE).items():
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(effective, parent)
        expected = "required" if OmegaConf.is_missing(node, leaf) else _spelled(OmegaConf.to_container(node)[leaf])
        if written != expected:
            wrong[key] = (written, expected)
    assert wrong == {}


def test_the_judge_and_compare_column_tables_are_their_contracts():
    from pipelines.core.judging import VERDICTS
    from pipelines.judge.stages import JUDGE_COLUMNS
    from pipelines.recipe.compare import COMPARE_COLUMNS

    tables = [{re.sub(r"`", "", name): _arrow_type(t) for name, t, _ in rows}
              for rows in _all_tables(JUDGE_PAGE, "| column | type | meaning |")]
    assert tables[0] == {name: _arrow_type(str(t)) for name, (t, _) in JUDGE_COLUMNS.items()}
    compare = {k: v for k, v in tables[1].items() if not k.startswith("id,")}
    assert compare == {name: _arrow_type(str(t)) for name, (t, _) in COMPARE_COLUMNS.items()}
    assert [v for v in VERDICTS if f"`{v}`" not in JUDGE_PAGE] == []


def _all_tables(text: str, header: str):
    """Every markdown table whose header line starts with `header`."""
    parts = text.split(header)
    return [_table_rows(header + part, header) for part in parts[1:]]


EXECUTION_PAGE = (REPO / "docs" / "execution.md").read_text()


def test_the_execution_page_documents_every_key_column_and_status():
    from pipelines.core.reasons import EXEC_STATUSES
    from pipelines.execution.job import EXECUTE_CONF_DIR, ExecuteConfig
    from pipelines.execution.stage import EXEC_COLUMNS

    rows = _table_rows(EXECUTION_PAGE, "| key | default | meaning |")
    wildcards = [k[:-1] for cells in rows for k in re.findall(r"`([\w.]+\.\*)`", cells[0])]
    named = {k for cells in rows for k in re.findall(r"`([\w.]+)`", cells[0])}
    assert [k for k in _leaf_keys(ExecuteConfig) if k not in named and not any(k.startswith(w) for w in wildcards)] == []
    effective = OmegaConf.merge(OmegaConf.structured(ExecuteConfig), OmegaConf.load(EXECUTE_CONF_DIR / "base.yaml"))
    for key, written in _documented_defaults(EXECUTION_PAGE).items():
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(effective, parent) if parent else effective
        assert written == ("required" if OmegaConf.is_missing(node, leaf) else _spelled(node[leaf])), key
    columns = {re.sub(r"`", "", name): _arrow_type(t) for name, t, _ in _table_rows(EXECUTION_PAGE, "| column | type | meaning |")}
    assert columns == {name: _arrow_type(str(t)) for name, (t, _) in EXEC_COLUMNS.items()}
    assert [s for s in EXEC_STATUSES if f"`{s}`" not in EXECUTION_PAGE] == []
