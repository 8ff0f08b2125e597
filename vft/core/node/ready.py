"""Readiness: poll health URLs until each answers 200, without ever hanging on one request.

vLLM binds its port long before the engine is up, so a connect that succeeds means
nothing: only a 200 counts. Requests go straight over http.client (no proxy from the
environment can intercept a 127.0.0.1 health check).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from vft.core.plan import NodeContext, Plan, Process, Role, TrainerStart

INTERVAL_S = 0.2
REQUEST_TIMEOUT_S = 0.5


def probe(url: str, timeout: float = REQUEST_TIMEOUT_S) -> bool:
    """True when `url` answers HTTP 200 within `timeout` seconds."""
    parts = urlsplit(url)
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class ReadyWatch:
    """A background poller of several URLs; `ready_at` is set once every one has answered 200."""

    def __init__(
        self, urls: list[str], wake: threading.Event, interval: float = INTERVAL_S
    ) -> None:
        self.urls = list(urls)
        self.interval = interval
        self.ready_at: float | None = None
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vft-ready", daemon=True)

    def start(self) -> ReadyWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        pending = list(self.urls)
        while pending and not self._stop.is_set():
            started = time.monotonic()
            pending = [u for u in pending if not probe(u)]
            if not pending:
                break
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        if not pending:
            self.ready_at = time.time()
            self._wake.set()


def ready_urls(
    plan: Plan, procs: Sequence[Process], ctx: NodeContext, trainer_start: str
) -> list[str]:
    """What this node waits on: its own servers' ready_url, and on a trainer-only node of a
    multi-node plan started "after_ready", the head node's /health."""
    urls = [p.ready_url for p in procs if p.ready_url]
    inf = plan.inference
    trainer_only = any(p.role == Role.TRAINER for p in procs) and not any(
        p.role == Role.INFERENCE for p in procs
    )
    served = inf.engine and inf.port  # a colocated plan has no server to wait on
    if trainer_only and served and plan.nodes > 1 and trainer_start == TrainerStart.AFTER_READY:
        head = inf.head_node or 0
        urls.append(f"http://{ctx.addresses[head]}:{inf.port}/health")
    return urls
