"""Inside the Modal container: write the plan, run this node under the supervisor, commit.

The Modal Function (one container per node, `retry.run_node_restarting`) does its work
in `run_in_volume`, which takes the Volume as a folder and `commit` as a callable, so
it runs unchanged on a laptop against a temporary folder (that is how it is tested).

Modal's own GRPO examples never commit the output Volume; a container that dies before
its end then loses every checkpoint. Here a background thread commits each checkpoint
once it is complete (vft's trainer marks it, `vft-checkpoint.json` written last; an
unmarked one, from a `trainer.script`, once its files stop changing), logs are committed
every few minutes, and a last commit runs however the node ends (a budget stop too).
Tested at that boundary only: a folder stands in for the Volume and a fake `commit`
copies it (tests/backends/modal/test_modal_container.py, test_modal_checkpoint_commit.py);
Modal's own `Volume.commit()` is not reached from the tests.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vft.core.plan import NodeContext, Plan
from vft.core.runs.folders import CHECKPOINT_MARKER, Attempt

CHECKPOINT_GLOBS = ("checkpoint-*", "*/checkpoint-*", "*/*/checkpoint-*")
POLL_S = 10.0  # how often the committer looks for new checkpoints
COMMIT_EVERY_S = 300.0  # logs reach the Volume at least this often
RunNode = Callable[[Plan, Attempt, NodeContext], int]


class RunFailed(Exception):
    """A node ended with a non-zero exit code; Modal marks the call failed and keeps the code."""

    def __init__(self, exit_code: int, message: str = "") -> None:
        super().__init__(exit_code, message)  # both in args, so the exception pickles

    @property
    def exit_code(self) -> int:
        return int(self.args[0])

    def __str__(self) -> str:
        return str(self.args[1]) or f"exit code {self.exit_code}"


def say(text: str) -> None:
    print(f"vft: {text}", file=sys.stdout, flush=True)


class CheckpointCommitter:
    """Commits the Volume when a checkpoint folder is complete, and every `every_s` seconds.

    A checkpoint counts as complete at the first look that finds its marker (written last,
    once every process wrote its part), or, without one, once its files (count, size,
    newest mtime) are the same on two looks `poll_s` apart. A failed commit is retried at
    the next look.
    """

    def __init__(
        self,
        run_dir: Path,
        commit: Callable[[], None],
        *,
        poll_s: float = POLL_S,
        every_s: float = COMMIT_EVERY_S,
    ) -> None:
        self.run_dir = run_dir
        self._commit = commit
        self.poll_s = poll_s
        self.every_s = every_s
        self.committed: dict[str, tuple[int, int, int]] = {}  # checkpoint -> what was committed
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="vft-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll_s + 60)

    def commit(self, why: str) -> bool:
        """Commit now; False (and a warning line) if Modal refused, e.g. files still open."""
        with self._lock:
            try:
                self._commit()
            except Exception as exc:
                say(f"volume commit ({why}) failed: {type(exc).__name__}: {exc}; will retry")
                return False
            self._last = time.monotonic()
            return True

    def look(self) -> list[str]:
        """One look: commit for every checkpoint that became complete; returns their names."""
        done: list[str] = []
        for path in self._checkpoints():
            key = str(path.relative_to(self.run_dir))
            sig = _signature(path)
            marked = (path / CHECKPOINT_MARKER).is_file()
            stable = sig[0] > 0 and (marked or self._seen.get(key) == sig)
            self._seen[key] = sig
            if stable and self.committed.get(key) != sig:
                done.append(key)
        if done and self.commit(", ".join(done)):
            for key in done:
                self.committed[key] = self._seen[key]
            say(f"committed {', '.join(done)} to the volume")
            return done
        if time.monotonic() - self._last >= self.every_s:
            self.commit("periodic")
        return []

    def _checkpoints(self) -> list[Path]:
        found = {p for g in CHECKPOINT_GLOBS for p in self.run_dir.glob(g) if p.is_dir()}
        return sorted(found)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.look()
            except Exception as exc:  # the watcher must never take the run down
                say(f"checkpoint watcher: {type(exc).__name__}: {exc}")


def _signature(folder: Path) -> tuple[int, int, int]:
    files = size = newest = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except FileNotFoundError:  # rotated away while we looked
                continue
            files += 1
            size += st.st_size
            newest = max(newest, st.st_mtime_ns)
    return files, size, newest


def run_in_volume(
    plan: Plan,
    outputs: Path,
    run_dir: str,
    rank: int,
    addresses: tuple[str, ...],
    *,
    commit: Callable[[], None],
    run_node: RunNode | None = None,
    poll_s: float = POLL_S,
    every_s: float = COMMIT_EVERY_S,
) -> int:
    """Run node `rank` of `plan` with its attempt folder at `outputs/run_dir`; the exit code.

    Every node writes the plan's files itself: a node sees the others' writes only after
    they commit. Only node 0 writes run.json, so nodes never overwrite each other's record.
    """
    if run_node is None:
        from vft.core.node.entry import start_node

        def run_node(p: Plan, a: Attempt, c: NodeContext) -> int:
            return start_node(a.path, c.rank, c.addresses)

    attempt = Attempt(outputs / run_dir)
    attempt.path.mkdir(parents=True, exist_ok=True)
    attempt.write_plan(plan)
    if rank == 0:  # the supervisor adds status, times and the exit code
        attempt.update(name=plan.name, attempt=attempt.number, backend="modal", nodes=plan.nodes)
    ctx = NodeContext.here(rank, tuple(addresses), str(attempt.path))
    committer = CheckpointCommitter(attempt.path, commit, poll_s=poll_s, every_s=every_s)
    committer.start()
    say(f"node {rank} of {plan.nodes} for {plan.name} in {attempt.path}")
    code = 1
    try:
        code = run_node(plan, attempt, ctx)
        return code
    finally:
        committer.stop()
        # every process has ended: whatever it wrote is final, checkpoints included
        committer.commit("end of run")
        say(f"node {rank} finished with exit code {code}; outputs committed to the volume")


def cluster_context(nodes: int) -> tuple[int, tuple[str, ...]]:
    """(this container's rank, every container's address) from Modal's cluster context."""
    if nodes <= 1:
        return 0, ("127.0.0.1",)
    import modal

    cluster = modal.Cluster.from_context()
    rank = cluster.container_rank()
    addresses = cluster.container_ips(family="ipv4")
    if len(addresses) != nodes:
        # only IPv6 is known: fine for NCCL and vLLM's data-parallel address, but URLs in
        # the plan would need brackets; say so in the log, where a failure would show
        say("Modal gave no IPv4 cluster addresses; using IPv6")
        addresses = cluster.container_ips()
    return rank, tuple(addresses)
