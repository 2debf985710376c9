import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.run.lease import Lease
from pipelines.run.output import (committed_coverage, count, differences, fingerprint, merge_ranges, open_output,
                                    piece_name, safe_name, skip_mask, to_ranges, write_piece)
from pipelines.run.progress import ErrorRateExceeded, Progress
from pipelines.storage import OutputError, Shards, find_bad_ids, hidden, list_shards

FS = fsspec.filesystem("file")


def test_ranges():
    assert to_ranges([5, 1, 2, 3, 9, 2]) == [[1, 4], [5, 6], [9, 10]]
    assert merge_ranges([[0, 2]], [[2, 5], [7, 8]], [[1, 3]]) == [[0, 5], [7, 8]]
    assert count([[0, 5], [7, 8]]) == 6
    assert skip_mask([[1, 3], [6, 9]], 2, 5) == [True, False, False, False, True]


@pytest.mark.parametrize("shard", ["../../etc/passwd", "/abs/x.parquet", "a/b c/ü.parquet", ".hidden", "..", "",
                                   "émissions.parquet", "日本.parquet", "_side.parquet", "-x.parquet"])
def test_piece_names_never_leave_the_output_folder_nor_hide_in_it(shard):
    name = piece_name({shard: [[0, 1]]})
    assert "/" not in name and not name.startswith((".", "_")) and name.endswith(".parquet")
    assert not hidden(name, "")  # what resume and the summary read
    assert set(safe_name(shard)) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert safe_name(shard) and not safe_name(shard).startswith(".")


def test_safe_names_by_hand():
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("a/b c/ü.parquet") == "a_b_c_u.parquet"
    assert safe_name("émissions") == "emissions" and safe_name("日本") == "shard"
    assert safe_name("..") == "shard" and safe_name("") == "shard"


def test_piece_names_are_deterministic_and_distinct():
    assert piece_name({"s.parquet": [[0, 8]]}) == piece_name({"s.parquet": [[0, 8]]})
    assert piece_name({"s.parquet": [[0, 8]]}) != piece_name({"s.parquet": [[0, 9]]})


def _fingerprint(**generation):
    settings = {"model": "m", "prompt_format": "hammer1", "generation": {"max_tokens": 8, **generation},
                "engine_kwargs": {}, "validation": {"lenient": False, "version": "2"},
                "mask": {"names": False, "seed": 0}}
    return fingerprint(settings, [("s.parquet", 10)], "generate")


def test_differences_name_what_changed():
    assert differences(_fingerprint(), _fingerprint()) == []
    assert differences(_fingerprint(), _fingerprint(max_tokens=9)) == ["generation.max_tokens: 8 -> 9"]


def _lease_token(root: str) -> str:
    lease = Lease(FS, root, "test-run")
    lease.acquire()
    return lease.token


def test_open_output_fresh_resume_refuse_and_overwrite(tmp_path):
    root = str(tmp_path / "out")
    token = _lease_token(root)
    assert open_output(FS, root, _fingerprint(), "auto") == {}
    write_piece(FS, root, pa.table({"x": [1, 2]}), {"s.parquet": [[0, 2]]}, token)
    (tmp_path / "out" / "_tmp").mkdir(exist_ok=True)
    (tmp_path / "out" / "_tmp" / "half-written").write_text("x")
    assert open_output(FS, root, _fingerprint(), "auto") == {"s.parquet": [[0, 2]]}
    assert not (tmp_path / "out" / "_tmp").exists()
    with pytest.raises(OutputError, match=r"generation.max_tokens: 8 -> 9.*resume=overwrite"):
        open_output(FS, root, _fingerprint(max_tokens=9), "auto")
    assert open_output(FS, root, _fingerprint(max_tokens=9), "overwrite") == {}
    # Overwriting keeps this run's lease (the record and its local lock file).
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_lease.json", "_lease.json.lock", "_manifest.json"]


def test_open_output_never_deletes_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    for mode in ("auto", "overwrite"):
        with pytest.raises(OutputError, match="not an output of this job"):
            open_output(FS, str(tmp_path), _fingerprint(), mode)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_committed_coverage_ignores_other_files(tmp_path):
    token = _lease_token(str(tmp_path))
    write_piece(FS, str(tmp_path), pa.table({"x": [1]}), {"a.parquet": [[3, 4]]}, token)
    write_piece(FS, str(tmp_path), pa.table({"x": [1]}), {"a.parquet": [[4, 5]], "b.parquet": [[0, 1]]}, token)
    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    assert committed_coverage(FS, str(tmp_path)) == {"a.parquet": [[3, 5]], "b.parquet": [[0, 1]]}


def test_find_bad_ids(tmp_path):
    pq.write_table(pa.table({"id": [1, 2, 3]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [4, 2, None]}), tmp_path / "b.parquet")
    shards = Shards([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], ["a.parquet", "b.parquet"],
                    pa.schema([("id", pa.int64())]), [3, 3])
    assert find_bad_ids(FS, shards) == ["2 at a.parquet:1, b.parquet:1", "None at b.parquet:2"]
    shards.paths, shards.names, shards.rows = shards.paths[:1], shards.names[:1], [3]
    assert find_bad_ids(FS, shards) == []


def test_progress_line_and_error_rate():
    now = [0.0]
    progress = Progress(total_rows=300, already_done=100, interval_s=10, clock=lambda: now[0])
    progress.add_batch({"rows": [50], "statuses": [json.dumps({"ok": 45, "engine_error": 5})],
                        "reasons": [json.dumps({"engine_error": 5})]})
    now[0] = 10.0
    assert progress.due() and not progress.due()
    assert progress.line() == ("progress: 150/300 rows (50.0%), 5.00 rows/s this run, ETA 0.5 min; "
                               "statuses this run: ok 45, engine_error 5")
    progress.check_error_rate(0.05)  # 50 rows: too few to judge
    progress.add(50, {"ok": 40, "bad_input": 10}, {"tools_not_json": 10})
    progress.check_error_rate(0.2)
    with pytest.raises(ErrorRateExceeded, match=r"15 of 100 rows \(15.0%\).*tools_not_json 10, engine_error 5"):
        progress.check_error_rate(0.1)


@pytest.mark.parametrize("manifest, what", [('{"fingerprint": {"mode": "gen', "JSONDecodeError"),
                                            ('{"written_by": "someone"}', "KeyError"),
                                            ('{"fingerprint": 3}', "TypeError")])
def test_a_corrupt_manifest_is_named_with_what_to_do(tmp_path, manifest, what):
    (tmp_path / "_manifest.json").write_text(manifest)
    with pytest.raises(OutputError, match=rf"_manifest.json cannot be read \({what}.*resume=overwrite"):
        open_output(FS, str(tmp_path), _fingerprint(), "auto")


def test_an_output_folder_inside_the_input_is_left_out_of_the_listing(tmp_path):
    pq.write_table(pa.table({"query": ["q"], "tools": ["[]"]}), tmp_path / "a.parquet")
    (tmp_path / "labels").mkdir()
    pq.write_table(pa.table({"query": ["q"], "tools": ["[]"], "status": ["ok"]}), tmp_path / "labels" / "p.parquet")
    assert list_shards(FS, str(tmp_path)).names == ["a.parquet", "labels/p.parquet"]
    assert list_shards(FS, str(tmp_path), exclude=str(tmp_path / "labels")).names == ["a.parquet"]
