"""The README stays true: every config key and every added output column is documented."""

import dataclasses

from pipelines.core.reasons import STATUSES
from pipelines.core.validation import CALL_TYPES
from pipelines.label.config import LabelConfig
from pipelines.label.schema import ADDED_COLUMNS
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _leaf_keys(cls, prefix=""):
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from _leaf_keys(type(default), key + ".")
        else:
            yield key


def test_every_config_key_is_in_the_readme():
    missing = [k for k in _leaf_keys(LabelConfig) if f"`{k}`" not in README]
    assert not missing


def test_every_output_column_status_and_call_type_is_in_the_readme():
    assert [c for c in ADDED_COLUMNS if f"| `{c}` |" not in README] == []
    assert [s for s in STATUSES + CALL_TYPES if f"`{s}`" not in README] == []


def test_every_bad_input_reason_code_is_in_the_readme():
    import re

    source = "".join(p.read_text() for p in (REPO / "pipelines").rglob("*.py"))
    codes = set(re.findall(r'BadInput\(\s*"(\w+)"', source))
    assert codes and [c for c in sorted(codes) if f"`{c}`" not in README] == []


def test_the_gpu_sizing_table_is_the_one_bench_gpu_sizing_prints():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_sizing", REPO / "bench" / "gpu_sizing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.markdown() in (REPO / "docs" / "gpu.md").read_text()
