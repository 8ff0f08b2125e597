"""The `testserver` engine (pip-installed tests/plugins/vft-testserver): a real HTTP server.

Other tests (the supervisor's, a cluster's) rely on it behaving like vLLM where it matters:
port bound at once, /health 503 then 200, clean exit on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.packages import install
from vft.core.engines.base import ServerPart
from vft.core.recipe.schema import Inference

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    install("vft-testserver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        get(url)
        return True
    except OSError:
        return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """`serve(*args)` starts a server; its output goes to `proc.log` (a file, read any time)."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        log = tmp_path / f"server-{len(started)}.log"
        with log.open("w") as out:
            p = subprocess.Popen(
                [sys.executable, "-m", "vft_testserver", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        p.log = log  # type: ignore[attr-defined]
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_health_turns_200_after_the_delay_and_models_lists_the_model(serve):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve("--port", str(port), "--model", "my/model", "--delay", "1.5")
    wait_until(lambda: answers(base + "/health"))
    begun = time.monotonic()
    assert get(base + "/health") == (503, {"status": "loading"})  # bound, not ready
    assert get(base + "/v1/models")[1]["data"][0]["id"] == "my/model"
    wait_until(lambda: get(base + "/health")[0] == 200)
    assert time.monotonic() - begun > 0.5
    assert get(base + "/nothing")[0] == 404
    server.send_signal(signal.SIGTERM)
    assert server.wait(10) == 0
    out = server.log.read_text()
    assert "ready" in out and "GET /v1/models" in out and "stopped" in out


def test_never_ready(serve):
    port = free_port()
    serve("--port", str(port), "--never-ready")
    url = f"http://127.0.0.1:{port}/health"
    wait_until(lambda: answers(url))
    time.sleep(0.5)
    assert get(url)[0] == 503


def test_exits_on_its_own_with_the_code_asked(serve):
    server = serve("--port", str(free_port()), "--exit-after", "0.5", "--exit-code", "7")
    assert server.wait(10) == 7


def test_ignore_sigterm_needs_sigkill(serve):
    port = free_port()
    server = serve("--port", str(port), "--ignore-sigterm")
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/health"))
    server.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        server.wait(1)
    server.kill()
    assert server.wait(5) == -signal.SIGKILL


def test_headless_binds_nothing_and_waits_for_the_head(serve):
    port = free_port()
    worker = serve("--port", str(port), "--headless", "--head-address", "127.0.0.1")
    time.sleep(1.0)
    assert worker.poll() is None
    assert not answers(f"http://127.0.0.1:{port}/health")  # no API of its own
    serve("--port", str(port))  # the head, on the same port: nothing else holds it
    wait_until(lambda: "head is ready at" in worker.log.read_text())
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert "stopped" in worker.log.read_text()


def test_command_from_a_server_part():
    from vft_testserver import TestServer

    part = ServerPart(
        model="m",
        port=8123,
        data_parallel=2,
        tensor_parallel=1,
        local_data_parallel=1,
        start_rank=1,
        head_address="{{node_addr:0}}",
        rpc_port=13345,
        headless=True,
        options=Inference(extra_args=["--delay", "3"]),
    )
    assert TestServer().command(part) == [
        "python", "-m", "vft_testserver", "--host", "0.0.0.0", "--port", "8123", "--model", "m",
        "--headless", "--head-address", "{{node_addr:0}}", "--delay", "3",
    ]  # fmt: skip
