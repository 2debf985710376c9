"""A page as a person sees it: headless Chromium (Debian's `chromium`, installed by make setup),
driven over the DevTools protocol (aiohttp's websocket client): load a file, collect what its console
and its scripts reported, read the DOM as rendered, take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

IMAGES = "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"


@dataclass
class Seen:
    title: str
    text: str  # document.body.innerText: the page's text as laid out
    images: list  # [complete, naturalWidth, naturalHeight] per <img>
    errors: list = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    screenshot: bytes = b""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: make setup installs Debian's chromium package"
    return path


def open_page(path: Path, width: int = 1200, height: int = 2000) -> Seen:
    # Chromium's helper processes (renderer, crash handler) may still be leaving files in the profile
    # as it is removed: what the browser leaves behind is not what these tests look at.
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                    "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                    f"--window-size={width},{height}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = _port(Path(profile) / "DevToolsActivePort", process)
            return asyncio.run(_load(port, path.resolve().as_uri()))
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the browser and every helper it started
            process.wait()


def _port(file: Path, process, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"chromium exited {process.returncode}"
        if file.exists() and file.read_text().strip():
            return int(file.read_text().split()[0])
        time.sleep(0.1)
    raise AssertionError("chromium opened no DevTools port")


async def _load(port: int, url: str) -> Seen:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            calls, errors, loaded, ids = {}, [], asyncio.Event(), itertools.count(1)

            async def listen():
                async for message in ws:
                    event = json.loads(message.data)
                    if "id" in event:
                        calls.pop(event["id"]).set_result(event)
                    elif event["method"] == "Page.loadEventFired":
                        loaded.set()
                    elif event["method"] == "Runtime.exceptionThrown":
                        errors.append(event["params"]["exceptionDetails"].get("text"))
                    elif event["method"] == "Runtime.consoleAPICalled" and event["params"]["type"] == "error":
                        errors.append(str(event["params"]["args"]))
                    elif event["method"] == "Log.entryAdded" and event["params"]["entry"]["level"] == "error":
                        errors.append(event["params"]["entry"].get("text"))

            async def send(method, **params):
                call_id = next(ids)
                calls[call_id] = asyncio.get_running_loop().create_future()
                await ws.send_json({"id": call_id, "method": method, "params": params})
                reply = await asyncio.wait_for(calls[call_id], 60)
                assert "error" not in reply, reply
                return reply["result"]

            listener = asyncio.create_task(listen())
            for domain in ("Page", "Runtime", "Log"):
                await send(f"{domain}.enable")
            await send("Page.navigate", url=url)
            await asyncio.wait_for(loaded.wait(), 60)

            async def evaluate(expression):
                return (await send("Runtime.evaluate", expression=expression, returnByValue=True))["result"]["value"]

            seen = Seen(title=await evaluate("document.title"), text=await evaluate("document.body.innerText"),
                        images=await evaluate(IMAGES), errors=errors)
            shot = await send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            seen.screenshot = base64.b64decode(shot["data"])
            listener.cancel()
            return seen
