"""What a node's supervisor writes about itself: `nodes/node-<rank>.json`, and on node 0
the run-wide fields of `run.json`. Everything goes through the redactor first.

A record that cannot be written (disk full) never stops the run: the failure is said once
through `on_error`, and the next write tries again.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import psutil

from vft.core.plan import NodeContext
from vft.core.runs.folders import Attempt, RunStatus
from vft.core.secrets import Redactor


class NodeRecord:
    """This node's record; each node writes only its own file, node 0 also owns run.json."""

    def __init__(
        self,
        attempt: Attempt,
        ctx: NodeContext,
        redactor: Redactor,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.attempt, self.ctx, self.redactor = attempt, ctx, redactor
        self.data: dict[str, Any] = {}
        self.processes: dict[str, dict[str, Any]] = {}
        self.on_error = on_error
        self.failed = False

    def start(self, started_at: float, trainer_start: str, **extra: Any) -> None:
        me = psutil.Process()
        host = socket.gethostname()
        self.data = {
            "rank": self.ctx.rank,
            "host": host,
            "address": self.ctx.addresses[self.ctx.rank] if self.ctx.addresses else None,
            "supervisor_pid": me.pid,
            "supervisor_create_time": me.create_time(),
            "status": "running",
            "started_at": started_at,
            "trainer_start": trainer_start,
            **extra,
        }
        self.write()
        if self.ctx.rank == 0:
            self._update_run(
                status=RunStatus.RUNNING,
                started_at=started_at,
                supervisor_pid=me.pid,
                supervisor_create_time=me.create_time(),
                host=host,
            )

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.write()

    def end(self, status: str, code: int, failed: dict[str, Any] | None) -> None:
        ended = time.time()
        self.update(status=status, ended_at=ended, exit_code=code, failed=failed)
        if self.ctx.rank == 0:
            self._update_run(
                status=status, ended_at=ended, exit_code=code, failed=self.redactor.obj(failed)
            )

    def write(self) -> None:
        self.data["processes"] = self.processes
        self._guarded(self.attempt.write_node, self.ctx.rank, self.redactor.obj(self.data))

    def _update_run(self, **fields: Any) -> None:
        self._guarded(self.attempt.update, **fields)

    def _guarded(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            write(*args, **kwargs)
        except OSError as exc:
            if not self.failed and self.on_error is not None:
                self.on_error(
                    f"records: cannot write {exc.filename or 'a record'} ({exc.strerror})"
                    " — run continues"
                )
            self.failed = True
