"""How the nodes of a multi-node plan tell each other that training ended.

A node that only serves inference has no trainer of its own to wait for: without word
from the trainer nodes it would serve forever (and a Slurm step or a Modal cluster with
it). Each serve-only node listens on `ports["control"] + rank`; when a trainer node's
supervisor ends, it POSTs its exit code there. A serve-only node ends once every trainer
node has reported success, or as soon as one reports a failure (with that code).
Plain HTTP on the cluster network, so it works without a shared filesystem (Modal).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vft.core.plan import NodeContext, Plan, Role

ANNOUNCE_TIMEOUT_S = 15.0


def trainer_nodes(plan: Plan) -> list[int]:
    return sorted({p.node for p in plan.processes if p.role == Role.TRAINER})


def serve_only_nodes(plan: Plan) -> list[int]:
    trainers = set(trainer_nodes(plan))
    return sorted({p.node for p in plan.processes if p.node not in trainers})


def control_port(plan: Plan, rank: int) -> int:
    return plan.ports.control + rank


class FinishListener:
    """On a serve-only node: collects the trainer nodes' exit codes."""

    def __init__(self, plan: Plan, rank: int, wake: threading.Event) -> None:
        self.expected = set(trainer_nodes(plan))
        self.codes: dict[int, int] = {}
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    node, code = int(body["rank"]), int(body["code"])
                except (ValueError, KeyError, TypeError):
                    self.send_response(400)
                    self.end_headers()
                    return
                with listener._lock:
                    listener.codes[node] = code
                wake.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:  # no stderr chatter
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", control_port(plan, rank)), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def outcome(self) -> tuple[int, int] | None:
        """(node, code) of the first failed trainer node, (-1, 0) when all succeeded, else None."""
        with self._lock:
            failed = [(n, c) for n, c in self.codes.items() if c != 0]
            if failed:
                return failed[0]
            if self.expected and self.expected <= set(self.codes):
                return (-1, 0)
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def announce(
    plan: Plan, ctx: NodeContext, code: int, timeout: float = ANNOUNCE_TIMEOUT_S
) -> list[int]:
    """From a trainer node: tell every serve-only node how training ended here.

    Returns the nodes that could not be told (they may have ended already).
    """
    pending = set(serve_only_nodes(plan))
    body = json.dumps({"rank": ctx.rank, "code": code}).encode()
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for node in sorted(pending):
            host = ctx.fill(f"{{{{node_host:{node}}}}}")
            url = f"http://{host}:{control_port(plan, node)}/finished"
            request = urllib.request.Request(url, data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=2):
                    pending.discard(node)
            except OSError:
                continue
        if pending:
            time.sleep(0.3)
    return sorted(pending)
