import json

import pytest

from pipelines.config import ConfigError, redact, to_yaml
from pipelines.label.config import config_hash, label_settings, load_config
from pipelines.run.output import differences, fingerprint


def test_local_profile_is_the_default():
    config = load_config([])
    assert config.input.path == "data/sample" and config.model.source == "built:smollm2-135m-instruct"
    assert config.generation.constrained and config.engine.device == "cpu"
    assert config.prompt.format == "hammer1" and config.run.id


def test_overrides_win_and_are_typed():
    config = load_config(["conf=local", "generation.max_tokens=32", "dry_run=true", "engine.engine_kwargs.seed=3"])
    assert config.generation.max_tokens == 32 and config.dry_run is True
    assert config.engine.engine_kwargs == {"enforce_eager": True, "dtype": "float32", "seed": 3}  # merged into the profile's


@pytest.mark.parametrize("args, words", [
    (["inputs.path=x"], ["unknown config key 'inputs'", "allowed here", "input"]),
    (["input.pathh=x"], ["unknown config key 'input.pathh'", "path"]),
    (["generation.max_tokens=lots"], ["generation.max_tokens"]),
    (["dry_run=maybe"], ["dry_run"]),
    (["conf=nope"], ["conf=nope", "local", "prod"]),
    (["conf=prod"], ["input.path", "output.path", "required"]),
    (["engine.device=tpu"], ["engine.device", "gpu, cpu"]),
    (["prompt.format=hammer-v9"], ["prompt.format", "hammer1"]),
    (["generation.max_tokens=5000"], ["generation.max_tokens", "max_model_len"]),
    (["engine.replicas=0"], ["engine.replicas", "positive"]),
    (["oops"], ["key=value"]),
    (["input.path=s3://b/dt=${run.date}/"], ["input.path use ${run.date}", "run.date is not set"]),
    (["run.date=../up"], ["run.date", "one path segment"]),
    (["run.date=2026/11/24"], ["run.date", "one path segment"]),
    (["scoring.rules=leaderboard"], ["scoring.rules", "auto, schema, bfcl"]),
    (["generation.json_whitespace=false", "engine.structured_outputs_backend=outlines"],
     ["engine.structured_outputs_backend=outlines", "generation.json_whitespace=true"]),
])
def test_bad_config_names_the_key(args, words):
    with pytest.raises(ConfigError) as e:
        load_config(args)
    for word in words:
        assert word in str(e.value)


def test_secrets_are_redacted_in_the_printed_config():
    config = load_config(["s3.secret_access_key=PLANTED-SECRET", "s3.access_key_id=AKIAPLANTED",
                          "engine.engine_kwargs.hf_token=hf_PLANTED"])
    text = to_yaml(config)
    assert "PLANTED" not in text and text.count("***") == 3
    assert f"max_tokens: {config.generation.max_tokens}" in text  # "token" in a name is not enough to hide it
    assert redact({"a": {"api_key": None}}) == {"a": {"api_key": None}}


def test_config_hash_tracks_labels_not_paths():
    base = config_hash(load_config([]), "m")
    assert base == config_hash(load_config(["output.path=elsewhere", "engine.replicas=3", "engine.max_num_seqs=64",
                                            "run.id=another"]), "m")
    for changed in (["generation.max_tokens=65"], ["mask.names=true"], ["seed=1"], ["prompt.format=hammer2.1"],
                    ["validation.lenient=true"], ["engine.engine_kwargs.dtype=bfloat16"]):
        assert config_hash(load_config(changed), "m") != base, changed
    assert config_hash(load_config([]), "other-model") != base


def test_the_manifest_fingerprint_is_the_label_settings_plus_mode_and_input():
    config = load_config([])
    settings = label_settings(config, "m")
    assert fingerprint(settings, [("s.parquet", 3)], "generate") == {**settings, "mode": "generate",
                                                                      "input": [["s.parquet", 3]]}
    # mask.names and seed change the labels, so a rerun with another value refuses to resume.
    for changed in (["mask.names=true"], ["seed=7"]):
        assert differences(fingerprint(settings, [], "generate"),
                           fingerprint(label_settings(load_config(changed), "m"), [], "generate"))


def test_joining_a_cluster_without_naming_a_profile_is_refused(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match=r"joins the Ray cluster at auto but names no profile: pass conf=prod"):
        load_config(["ray.address=auto"])
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    with pytest.raises(ConfigError, match=r"joins the Ray cluster at http://head:8265 .* conf=local to run the demo"):
        load_config([])
    assert load_config(["conf=local"]).model.source.startswith("built:")  # named on purpose: allowed


def test_name_masking_and_its_seed_change_the_labels_hash_and_a_rerun_refuses(tmp_path):
    import fsspec

    from pipelines.run.lease import Lease
    from pipelines.run.output import open_output
    from pipelines.storage import OutputError

    def settings(*args):
        return label_settings(load_config(["conf=local", *args]), "m")

    plain, masked, reseeded = settings(), settings("mask.names=true"), settings("mask.names=true", "seed=1")
    assert len({json.dumps(s, sort_keys=True) for s in (plain, masked, reseeded)}) == 3
    assert len({config_hash(load_config(["conf=local", *a]), "m") for a in ([], ["mask.names=true"], ["seed=1"])}) == 3
    fs, root = fsspec.filesystem("file"), str(tmp_path / "out")
    lease = Lease(fs, root, "test-run")
    lease.acquire()
    open_output(fs, root, fingerprint(masked, [("s.parquet", 1)], "generate"), "auto")
    with pytest.raises(OutputError, match=r"mask.seed: 0 -> 1"):
        open_output(fs, root, fingerprint(reseeded, [("s.parquet", 1)], "generate"), "auto")
    with pytest.raises(OutputError, match=r"mask.names: true -> false"):
        open_output(fs, root, fingerprint(plain, [("s.parquet", 1)], "generate"), "auto")


def test_the_judges_compact_json_is_checked_as_the_labels_is():
    from pipelines.judge.config import load_judge_config

    with pytest.raises(ConfigError, match=r"judge.engine.structured_outputs_backend=outlines .* judge.generation.json_whitespace=true"):
        load_judge_config(["conf=local", "judge.generation.constrained=true", "judge.generation.json_whitespace=false",
                           "judge.engine.structured_outputs_backend=outlines"])
