import pytest

from pipelines.config import ConfigError, config_hash, load_config, redact, to_yaml


def test_local_profile_is_the_default():
    config = load_config([])
    assert config.input.path == "data/sample" and config.model.build_tiny and config.engine.device == "cpu"
    assert config.prompt.format == "hammer1" and config.run.id


def test_overrides_win_and_are_typed():
    config = load_config(["conf=local", "generation.max_tokens=32", "dry_run=true", "engine.engine_kwargs.seed=3"])
    assert config.generation.max_tokens == 32 and config.dry_run is True
    assert config.engine.engine_kwargs == {"seed": 3}


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
    assert "max_tokens: 64" in text  # "token" in a name is not enough to hide it
    assert redact({"a": {"api_key": None}}) == {"a": {"api_key": None}}


def test_config_hash_tracks_labels_not_paths():
    base = load_config([])
    assert config_hash(base) == config_hash(load_config(["output.path=elsewhere", "engine.replicas=3"]))
    assert config_hash(base) != config_hash(load_config(["generation.max_tokens=65"]))
