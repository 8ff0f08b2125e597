"""ExampleBackend: what a third-party backend looks like, end to end.

"The cluster" here is this machine: `launch` starts the node entry (the supervisor for one
node) in a subprocess of its own session, exactly as a cloud backend would start it in a
container or a scheduler on each node. Everything else (status, logs, stop, outputs)
reads the attempt folder the supervisor writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vft.plugin import FINISHED, Attempt, Backend, Capabilities, Plan, PreflightError, node_argv


class ExampleOptions(BaseModel):
    """The recipe's `[backend.example]` table."""

    model_config = ConfigDict(extra="forbid")
    python: str | None = Field(
        None, description="Interpreter for the node entry; default: this one."
    )
    poll_s: float = Field(0.2, gt=0, description="How often `logs -f` looks for new lines.")


class ExampleBackend(Backend):
    """Runs the plan's single node on this machine, through the node entry in a subprocess."""

    name = "example"
    options_model = ExampleOptions
    capabilities = Capabilities(
        multi_node=False,
        detach=True,
        outputs=True,
        cpu=True,
        gpu_types=frozenset(),
        limits={
            "multi_node": "the example backend has one node: this machine",
            "gpu_types": "the example backend runs CPU-only plans",
        },
    )

    def describe(self, plan: Plan) -> list[tuple[str, str]]:
        return [("node 0", " ".join(node_argv("<run dir>", 0, ["127.0.0.1"])))]

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        if plan.nodes != 1:  # the planner already refused this; a backend may double-check
            raise PreflightError(f"the example backend runs one node, the plan has {plan.nodes}")
        if plan.install:  # a real backend installs these on every node before the node entry
            raise PreflightError(
                f"environment.install: the example backend does not install packages "
                f"({', '.join(plan.install)}); pip install them first and remove the key"
            )
        return [f"the node runs on this machine ({os.uname().nodename})"]

    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        python = plan.backend_options.get("python") or sys.executable
        argv = node_argv(str(attempt.path), 0, ["127.0.0.1"], python=python)
        out = open(attempt.path / "agent.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            # its own session: stopping the run signals the supervisor, not our terminal
            agent = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
        attempt.update(backend_pid=agent.pid, backend_argv=argv)
        if detach:
            return 0
        try:
            return agent.wait()
        except KeyboardInterrupt:  # Ctrl-C: let the supervisor stop its processes in order
            agent.send_signal(signal.SIGTERM)
            return agent.wait()

    def status(self, attempt: Attempt) -> dict[str, Any]:
        record = attempt.record()
        pid = record.get("supervisor_pid") or record.get("backend_pid")
        if record.get("status") not in FINISHED and pid and not _alive(pid):
            record["status"] = "lost"  # the supervisor died without writing its end
        return record

    def logs(self, attempt: Attempt, *, follow: bool, process: str | None) -> Iterator[str]:
        poll = float(attempt.plan().backend_options.get("poll_s", 0.2))
        paths = [attempt.log_path(process)] if process else sorted(attempt.logs_dir.glob("*.log"))
        offsets = dict.fromkeys(paths, 0)
        while True:
            for path in offsets:
                if not path.is_file():
                    continue
                with path.open("rb") as f:
                    f.seek(offsets[path])
                    data = f.read()
                complete = data[: data.rfind(b"\n") + 1]  # a half-written line waits
                offsets[path] += len(complete)
                for line in complete.decode(errors="replace").splitlines():
                    yield line if process else f"{path.stem}: {line}"
            if not follow or self.status(attempt).get("status") in FINISHED:
                return
            time.sleep(poll)

    def stop(self, attempt: Attempt) -> None:
        """SIGTERM the supervisor (it stops every tree it started) and wait for its record."""
        record = attempt.record()
        pid = record.get("supervisor_pid") or record.get("backend_pid")
        if not pid or not _alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + attempt.plan().run.stop_grace_s + 10
        while time.monotonic() < deadline:
            if attempt.record().get("status") in FINISHED or not _alive(pid):
                return
            time.sleep(0.1)

    def list_outputs(self, attempt: Attempt) -> list[tuple[str, int]]:
        files = sorted(p for p in attempt.path.rglob("*") if p.is_file())
        return [(str(p.relative_to(attempt.path)), p.stat().st_size) for p in files]

    def get_outputs(self, attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
        written = []
        for rel, _ in self.list_outputs(attempt):
            if rel.startswith(prefix):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(attempt.path / rel, target)
                written.append(target)
        return written


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
