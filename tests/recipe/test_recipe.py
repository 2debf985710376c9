"""Hammer's data recipe end to end, as a user runs it: local JSON -> jobs/prepare.py -> jobs/augment.py
-> jobs/label.py mask.names=true, on a local Ray with vLLM on the CPU and the tiny model."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.masking import MaskMap, unmask_row
from pipelines.core.scoring import load_gold
from pipelines.core.tools import load_tools
from pipelines.core.validation import validate_calls
from tests.conftest import REPO

pytestmark = pytest.mark.integration
SOURCE = REPO / "data" / "sources" / "xlam.json"


def _job(script, *args):
    proc = subprocess.run([sys.executable, f"jobs/{script}", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _rows(path):
    return sorted(pq.read_table(path).to_pylist(), key=lambda r: r["id"])


@pytest.fixture(scope="module")
def augmented(tmp_path_factory, cluster):
    root = tmp_path_factory.mktemp("recipe")
    for size in (25, 7):  # two shardings of the same rows: other blocks, other tasks
        _job("prepare.py", "conf=local", f"input.path={SOURCE}", f"output.path={root / f'shards-{size}'}", f"output.rows_per_shard={size}")
        _job("augment.py", "conf=local", f"input.path={root / f'shards-{size}'}", f"output.path={root / f'augmented-{size}'}",
             "seed=11", f"ray.address={cluster[0].address}")
    return root


def test_the_same_command_writes_the_same_rows_whatever_the_blocks(augmented):
    assert _rows(augmented / "augmented-25") == _rows(augmented / "augmented-7")


def test_augmented_rows_follow_the_recipe(augmented):
    rows = _rows(augmented / "augmented-25")
    source = {str(r["id"]): r for r in json.loads(SOURCE.read_text())}
    summary = json.loads((augmented / "augmented-25" / "_summary.json").read_text())
    origins = [r["origin"] for r in rows]
    assert summary["rows"] == len(rows) == len(source) + origins.count("irrelevance")
    assert summary["origin"] == {o: origins.count(o) for o in ("original", "irrelevance", "masked")}
    assert 0 < origins.count("masked") < len(source) and origins.count("irrelevance") > 0
    for row in rows:
        if row["origin"] == "masked":
            tools, answers = load_tools(row["tools"]), load_gold(row["answers"])
            assert validate_calls(answers, tools)[0] == []
            query, original_tools, original_answers = unmask_row(row["query"], tools, answers,
                                                                 MaskMap.from_json(row["mask_map"]))
            raw = source[row["id"]]
            assert (query, original_tools, original_answers) == (raw["query"], load_tools(raw["tools"]),
                                                                load_gold(raw["answers"]))
        elif row["origin"] == "irrelevance":
            raw = source[row["id"].split("#")[0]]
            called = {c["name"] for c in load_gold(raw["answers"])}
            assert row["answers"] == "[]" and not called & {t.name for t in load_tools(row["tools"])}
        else:
            assert row["mask_map"] is None and row["tools"] == source[row["id"]]["tools"]


@pytest.fixture(scope="module")
def masked_labels(augmented, tiny_model):
    out = augmented / "labels"
    _job("label.py", "conf=local", f"input.path={augmented / 'augmented-25'}", f"output.path={out}",
         f"model.source={tiny_model}", "generation.constrained=false", "mask.names=true", "generation.max_tokens=16", "ray.num_cpus=4")
    return out


def test_labeling_with_masked_names(masked_labels, augmented):
    summary = json.loads((masked_labels / "_summary.json").read_text())
    labeled = _rows(masked_labels)
    assert summary["mask_names"] is True and summary["rows"] == len(labeled) == len(_rows(augmented / "augmented-25"))
    for row in labeled:
        mapping = MaskMap.from_json(row["name_map"])
        names = {t.name for t in load_tools(row["tools"])}
        assert set(mapping.functions.values()) == names
        assert not any(f'"name": "{name}"' in row["prompt"] for name in names)  # the prompt shows masked names only
        assert all(f'"name": "{masked}"' in row["prompt"] for masked in mapping.functions)
        assert row["origin"] in ("original", "irrelevance", "masked")


def test_calls_made_with_masked_names_come_back_in_the_original_names(masked_labels, tmp_path):
    # The random model seldom writes a call, so give every row an answer whose content is known: a
    # call to each of its masked functions, with its masked parameter names, as the model would see them.
    rows = _rows(masked_labels)
    expected = {}
    for row in rows:
        mapping = MaskMap.from_json(row["name_map"])
        params = mapping.parameters  # masked function -> masked parameter -> original
        calls = [{"name": masked, "arguments": {m: "x" for m in params.get(masked, {})}} for masked in mapping.functions]
        row["raw_output"] = json.dumps(calls)
        expected[row["id"]] = [(mapping.functions[c["name"]], sorted(params.get(c["name"], {}).values()))
                               for c in calls]
    given = tmp_path / "given"
    given.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), given / "rows.parquet")
    _job("validate.py", f"input.path={given}", f"output.path={tmp_path / 'revalidated'}", "ray.num_cpus=4")
    revalidated = _rows(tmp_path / "revalidated")
    assert len(revalidated) == len(rows) and all(expected[r["id"]] for r in revalidated)
    for row in revalidated:
        got = [(c["name"], sorted(json.loads(c["arguments"]))) for c in row["calls"]]
        assert got == expected[row["id"]], row["id"]  # every call, every argument, in the original names
