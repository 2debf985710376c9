"""The production artefacts agree with each other and with the code: image, pins, manifest, configs."""

import re
import shlex
import shutil
import subprocess
import tomllib

import pytest
import yaml

from pipelines.config import load_config, redact
from tests.conftest import REPO

RAY_PIN = re.search(r'"ray\[data\]==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)


def _rayjob() -> dict:
    return yaml.safe_load((REPO / "deploy" / "rayjob.yaml").read_text())


def test_one_ray_version_everywhere():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for extra in project["optional-dependencies"].values() for d in extra if d.startswith("ray[")]
    assert pins and all(p.endswith(f"=={RAY_PIN}") for p in pins)
    assert re.search(rf"^FROM rayproject/ray:{re.escape(RAY_PIN)}-py311-gpu$", (REPO / "Dockerfile").read_text(), re.M)
    assert f"ray=={RAY_PIN}\n" in (REPO / "deploy" / "constraints-gpu.txt").read_text()
    assert _rayjob()["spec"]["rayClusterSpec"]["rayVersion"] == RAY_PIN


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    proc = subprocess.run([hadolint, "--failure-threshold", "info", "Dockerfile"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_runs_as_a_user_and_holds_no_credentials():
    text = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert not re.search(r"AWS_SECRET|AWS_ACCESS|HF_TOKEN=|SECRET=|PASSWORD", text)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".cache", ".git", "out"} <= set(ignored)


def test_rayjob_manifest_is_a_rayjob_whose_entrypoint_loads():
    job = _rayjob()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["backoffLimit"] >= 1
    words = shlex.split(spec["entrypoint"].replace("$(date -u -d yesterday +%F)", "2026-11-24"))
    assert words[:3] == ["python", "jobs/label.py", "conf=prod"]
    config = load_config(words[2:])
    assert config.run.date == "2026-11-24"
    assert config.input.path == "s3://my-bucket/shards/dt=2026-11-24/"
    assert config.output.path == "s3://my-bucket/labels/dt=2026-11-24/"
    # As many GPUs in the worker group as the engines take.
    workers = spec["rayClusterSpec"]["workerGroupSpecs"]
    gpus = sum(int(g["replicas"]) * int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
               for g in workers for c in g["template"]["spec"]["containers"])
    assert gpus == config.engine.replicas * config.engine.tensor_parallel_size
    images = {c["image"] for g in [spec["rayClusterSpec"]["headGroupSpec"], *workers]
              for c in g["template"]["spec"]["containers"]}
    assert len(images) == 1
    assert "secret" not in (REPO / "deploy" / "rayjob.yaml").read_text().lower()


def test_runtime_env_is_valid_for_ray_and_declares_no_credentials():
    from ray.runtime_env import RuntimeEnv

    env = yaml.safe_load((REPO / "deploy" / "runtime_env.yaml").read_text())
    RuntimeEnv(**env)  # raises on an unknown field or a bad value
    assert "pip" not in env and "conda" not in env  # packages come from the image
    assert redact(env) == env  # no key that looks like a credential


@pytest.mark.parametrize("date", ["2026-11-24", "20261124", "dt=2026-11-24", "2026-11-24T02"])
def test_run_date_names_the_partition(date):
    config = load_config(["conf=prod", f"run.date={date}", "input.path=s3://b/shards/dt=${run.date}/",
                          "output.path=s3://b/labels/dt=${run.date}/"])
    assert config.input.path == f"s3://b/shards/dt={date}/" and config.output.path == f"s3://b/labels/dt={date}/"
