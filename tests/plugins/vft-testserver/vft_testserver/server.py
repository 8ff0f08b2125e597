"""The HTTP server itself, standard library only, so it starts in a fraction of a second.

Knobs for tests of the process supervisor: `--delay` (seconds before /health says 200),
`--never-ready`, `--exit-after S --exit-code N` (die on its own, as a crashed engine
would), `--ignore-sigterm` (so a supervisor must escalate to SIGKILL). `--headless
--head-address A` is a non-head node of a multi-node server: it binds nothing, waits
until the head's /health answers 200 (so a cluster test sees node addresses resolve), and
runs until stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vft_testserver", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--model", default="vft-tiny", help="the id /v1/models lists")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before /health is 200")
    p.add_argument("--never-ready", action="store_true", help="/health stays 503")
    p.add_argument("--exit-after", type=float, default=None, help="exit on its own after S s")
    p.add_argument("--exit-code", type=int, default=1, help="the code --exit-after exits with")
    p.add_argument("--ignore-sigterm", action="store_true", help="only SIGKILL stops it")
    p.add_argument("--headless", action="store_true", help="no HTTP API: wait on the head")
    p.add_argument("--head-address", default="127.0.0.1", help="the head node (with --headless)")
    return p.parse_args(argv)


def wait_for_head(url: str, stop: threading.Event) -> None:
    """Poll the head's /health until it answers 200, saying so once."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    say(f"head is ready at {url}")
                    return
        except OSError:
            pass
        stop.wait(0.5)


def say(text: str) -> None:
    print(f"testserver[{os.getpid()}]: {text}", flush=True)


def make_handler(model: str, ready_at: float | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                ready = ready_at is not None and time.monotonic() >= ready_at
                self._send(200 if ready else 503, {"status": "ok" if ready else "loading"})
            elif self.path == "/v1/models":
                card = {"id": model, "object": "model", "owned_by": "vft-testserver"}
                self._send(200, {"object": "list", "data": [card]})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            if self.path != "/health":  # readiness polls would drown the log
                say(format % args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: say("SIGTERM ignored"))
    else:  # exit cleanly (code 0) on SIGTERM, as vLLM does
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.exit_after is not None:

        def die() -> None:
            say(f"exiting with code {args.exit_code} as asked")
            os._exit(args.exit_code)

        killer = threading.Timer(args.exit_after, die)
        killer.daemon = True
        killer.start()
    if args.headless:
        stop = threading.Event()
        url = f"http://{args.head_address}:{args.port}/health"
        say(f"headless: serving no API; waiting for the head at {url}")
        try:
            wait_for_head(url, stop)
            while True:
                time.sleep(3600)
        finally:
            stop.set()
            say("stopped")
    ready_at = None if args.never_ready else time.monotonic() + args.delay
    # like vLLM, the port is bound before the engine is ready
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.model, ready_at))
    server.daemon_threads = True
    say(f"listening on {args.host}:{server.server_address[1]} model={args.model}")
    if ready_at is not None:
        timer = threading.Timer(args.delay, say, ["ready"])
        timer.daemon = True
        timer.start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        say("stopped")
    return 0
