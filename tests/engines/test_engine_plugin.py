"""An engine's processes end with the process that started them (pipelines/engines/vllm/plugin.py)."""

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.conftest import REPO

PARENT = textwrap.dedent("""
    import multiprocessing, sys, time

    def child(watch, ready):
        if watch:
            from pipelines.engines.vllm.plugin import die_with_parent
            die_with_parent()
        ready.set()
        time.sleep(600)

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[2])
        ready = context.Event()
        process = context.Process(target=child, args=(sys.argv[1] == "watch", ready))
        process.start()
        ready.wait(60)
        print(process.pid, flush=True)
        time.sleep(600)
""")


def _orphan(watch: bool, tmp_path, method: str = "spawn") -> psutil.Process:
    """Starts a parent that starts a child (as vLLM starts its EngineCore: multiprocessing, fork or
    spawn by VLLM_WORKER_MULTIPROC_METHOD), SIGKILLs the parent; returns the child, once it runs."""
    script = tmp_path / "parent.py"  # a file: a spawned child imports its target from the parent's main module
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), "watch" if watch else "plain", method], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    child = psutil.Process(int(parent.stdout.readline()))
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return child


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_started_process_dies_with_its_killed_parent(tmp_path, method):
    child = _orphan(True, tmp_path, method)
    _, alive = psutil.wait_procs([child], timeout=30)
    assert not alive


def test_without_the_watch_the_child_outlives_its_parent(tmp_path):  # what the watch is for
    child = _orphan(False, tmp_path)
    try:
        _, alive = psutil.wait_procs([child], timeout=3)
        assert alive == [child]
    finally:
        child.kill()


@pytest.mark.parametrize("parent_process", [None])
def test_a_process_not_started_by_multiprocessing_is_not_watched(parent_process, monkeypatch):
    import pipelines.engines.vllm.plugin as plugin

    monkeypatch.setattr(plugin, "_watching", False)
    monkeypatch.setattr(plugin.multiprocessing, "parent_process", lambda: parent_process)
    plugin.die_with_parent()
    assert plugin._watching is False  # a Ray worker (the actor itself) or the driver
