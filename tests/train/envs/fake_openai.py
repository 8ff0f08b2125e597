"""A scripted OpenAI-compatible chat server on 127.0.0.1 (real HTTP, stdlib only).

It speaks the part of vLLM's API the environments' own loops use: `POST
/v1/chat/completions` (with `tools`), `GET /v1/models`, and vLLM's `return_token_ids`
extension (`prompt_token_ids` on the response, `token_ids` and logprobs on the choice).
The "model" is a Python function `policy(messages, tools) -> (content, tool_calls)`;
tokens are the UTF-8 bytes of a toy append-only chat template, so a conversation's turns
stitch into one token stream exactly as with a real server.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Policy = Callable[
    [list[dict[str, Any]], list[dict[str, Any]]], tuple[str | None, list[dict] | None]
]
END = "<|end|>"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _calls_text(calls: list[dict[str, Any]] | None) -> str:
    return "".join(
        f"<call>{c['function']['name']}{c['function']['arguments']}</call>" for c in calls or []
    )


def render(messages: list[dict[str, Any]]) -> str:
    """The toy chat template: append-only, generation prompt `<|assistant|>`."""
    out = ""
    for m in messages:
        out += (
            f"<|{m.get('role')}|>{_text(m.get('content'))}{_calls_text(m.get('tool_calls'))}{END}"
        )
    return out + "<|assistant|>"


def toks(s: str) -> list[int]:
    return list(s.encode("utf-8"))


class FakeServer:
    """`with FakeServer(policy) as srv:` -> `srv.base_url` (ends in /v1), `srv.requests`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with outer._lock:
                    outer.requests.append(
                        {
                            "path": self.path,
                            "session": self.headers.get("X-Session-ID"),
                            "body": body,
                        }
                    )
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": "not found"})
                    return
                messages = body.get("messages") or []
                content, calls = outer.policy(messages, body.get("tools") or [])
                if calls:
                    calls = [
                        {"id": "call_" + uuid.uuid4().hex[:8], "type": "function", **c}
                        for c in calls
                    ]
                msg: dict[str, Any] = {"role": "assistant", "content": content}
                if calls:
                    msg["tool_calls"] = calls
                p_ids = toks(render(messages))
                c_ids = toks((content or "") + _calls_text(calls) + END)
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": msg,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
                if body.get("logprobs"):
                    choice["logprobs"] = {
                        "content": [
                            {"token": chr(t), "logprob": -0.5, "bytes": [t], "top_logprobs": []}
                            for t in c_ids
                        ]
                    }
                resp: dict[str, Any] = {
                    "id": "chatcmpl-" + uuid.uuid4().hex[:8],
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": len(p_ids),
                        "completion_tokens": len(c_ids),
                        "total_tokens": len(p_ids) + len(c_ids),
                    },
                }
                if body.get("return_token_ids"):
                    choice["token_ids"] = c_ids
                    resp["prompt_token_ids"] = p_ids
                self._send(200, resp)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def tool_args(tool: dict[str, Any], text: str = "6*7") -> str:
    """Arguments for `tool` from its JSON schema: numbers 2, strings `text`."""
    props = ((tool.get("function") or {}).get("parameters") or {}).get("properties") or {}
    args = {
        name: 2 if spec.get("type") in ("integer", "number") else text
        for name, spec in props.items()
    }
    return json.dumps(args)
