"""The project as a package: a wheel installed in a fresh virtual environment gives one command per
job, with the profiles inside it, run from a folder outside the checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

COMMANDS = ["hammer-label", "hammer-validate", "hammer-judge", "hammer-compare", "hammer-prepare", "hammer-augment",
            "hammer-export", "hammer-leaderboard"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed (the dependencies seen through a .pth pointing at this
    checkout's environment, so that nothing is downloaded; the project itself only from the wheel)."""
    root = tmp_path_factory.mktemp("package")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(root / "dist"), str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((root / "dist").glob("hammer_labeling-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(f"{site}/dependencies.pth", "w") as f:  # after the venv's own site-packages: the wheel wins
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], capture_output=True,
                         text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return root, python


def test_the_wheel_holds_the_package_and_its_profiles(installed):
    root, python = installed
    where = subprocess.run([str(python), "-c", "import pipelines, pipelines.config as c; "
                            "print(pipelines.__file__); print(c.CONF_DIR)"],
                           cwd=root, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(root / "venv") in path for path in where), where  # not the checkout
    for command in COMMANDS:
        assert (root / "venv" / "bin" / command).exists(), command


@pytest.mark.parametrize("command, key", [("hammer-label", "generation.max_tokens = 512"),
                                          ("hammer-judge", "judge.prompt.template = \"judge-v1\""),
                                          ("hammer-export", "export.file_format = ")])
def test_help_lists_the_keys_with_defaults_and_meanings(installed, command, key):
    root, _ = installed
    proc = subprocess.run([str(root / "venv" / "bin" / command), "--help"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert key in proc.stdout and "profiles (conf=NAME, default local): local" in proc.stdout


def test_the_label_command_runs_the_sample_outside_the_checkout(installed, tiny_model):
    root, _ = installed
    data = root / "sample"
    shutil.copytree(REPO / "data" / "sample", data)
    proc = subprocess.run([str(root / "venv" / "bin" / "hammer-label"), "conf=local", f"input.path={data}",
                           f"output.path={root / 'out'}", "dry_run=true", f"model.source={tiny_model}",
                           "generation.constrained=false", "ray.num_cpus=2"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((root / "out" / "_summary.json").read_text())
    assert summary["rows"] == summary["input_rows"] == 65 and summary["status"]["dry_run"] == 58
