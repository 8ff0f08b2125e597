"""The in-container entry point, run here against a temporary folder standing in for the
Modal Volume, with the real supervisor and real child processes.

The boundary we cannot reach is Modal's `Volume.commit()`: it is stood in for by a copy of
the volume folder into a `committed/` folder, which is what another container (or a
download) would see. Everything else is what runs in the container.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vft.backends.modal.container import CheckpointCommitter, RunFailed, run_in_volume
from vft.core.plan import Plan, Process

CKPT_TRAINER = """
import json, os, sys, time
run_dir, steps, pause, code = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for step in range(1, steps + 1):
    ckpt = os.path.join(run_dir, "checkpoints", f"checkpoint-{step}")
    os.makedirs(ckpt)
    with open(os.path.join(ckpt, "model.safetensors"), "wb") as f:
        f.write(os.urandom(4096))
    with open(os.path.join(ckpt, "trainer_state.json"), "w") as f:
        json.dump({"global_step": step}, f)
    print(f"saved checkpoint-{step}", flush=True)
    time.sleep(pause)
sys.exit(code)
"""


class Volume:
    """A folder standing in for the Modal Volume; `commit` snapshots it into `committed/`."""

    def __init__(self, root: Path) -> None:
        self.live = root / "volume"
        self.committed = root / "committed"
        self.live.mkdir(parents=True)
        self.commits: list[tuple[float, set[str]]] = []

    def commit(self) -> None:
        if self.committed.exists():
            shutil.rmtree(self.committed)
        shutil.copytree(self.live, self.committed, ignore=shutil.ignore_patterns(".*.tmp"))
        found = {p.name for p in self.committed.rglob("checkpoint-*") if p.is_dir()}
        self.commits.append((time.monotonic(), found))


def ckpt_trainer(token: str, steps: int = 2, pause: float = 1.0, code: int = 0) -> Process:
    argv = (sys.executable, "-c", CKPT_TRAINER, "{{run_dir}}", str(steps), str(pause), str(code))
    return Process("trainer", "trainer", 0, (), argv, {"VFT_TEST_TOKEN": token})


@pytest.fixture
def volume(tmp_path: Path) -> Volume:
    return Volume(tmp_path)


def with_files(plan: Plan) -> Plan:
    from dataclasses import replace

    return replace(plan, files={"accelerate.yaml": "distributed_type: DEEPSPEED\n"})


def test_node_runs_and_every_checkpoint_is_committed_while_it_trains(
    volume: Volume, make_plan: Callable[..., Plan], no_leftovers: str
) -> None:
    plan = with_files(make_plan(ckpt_trainer(no_leftovers, steps=2, pause=1.5), name="ck"))
    started = time.monotonic()
    code = run_in_volume(
        plan, volume.live, "ck/attempt-3", 0, ("127.0.0.1",), commit=volume.commit, poll_s=0.1
    )
    ended = time.monotonic()
    assert code == 0
    # checkpoint-1 reached the volume while the trainer was still writing checkpoint-2
    early = [found for at, found in volume.commits if at < ended - 0.5]
    assert {"checkpoint-1"} in early
    # the last commit comes after the end and holds everything, the final record included
    last_at, last = volume.commits[-1]
    assert last == {"checkpoint-1", "checkpoint-2"} and last_at >= ended - 0.5
    run = volume.committed / "ck" / "attempt-3"
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "succeeded" and record["exit_code"] == 0
    assert record["backend"] == "modal" and record["attempt"] == 3
    assert json.loads((run / "plan.json").read_text())["name"] == "ck"
    assert (run / "accelerate.yaml").read_text().startswith("distributed_type")
    assert "saved checkpoint-2" in (run / "logs" / "trainer.log").read_text()
    assert (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    assert ended - started < 30


def test_a_failed_node_returns_its_code_and_still_commits(
    volume: Volume, make_plan: Callable[..., Plan], no_leftovers: str
) -> None:
    plan = make_plan(ckpt_trainer(no_leftovers, steps=1, pause=0.1, code=3), name="bad")
    code = run_in_volume(
        plan, volume.live, "bad/attempt-1", 0, ("127.0.0.1",), commit=volume.commit, poll_s=0.1
    )
    assert code == 3
    record = json.loads((volume.committed / "bad" / "attempt-1" / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 3
    assert (volume.committed / "bad" / "attempt-1" / "checkpoints" / "checkpoint-1").is_dir()


def test_server_and_trainer_with_placeholders(
    volume: Volume,
    make_plan: Callable[..., Plan],
    proc: Callable[..., Process],
    port: int,
) -> None:
    server = proc(
        "inference",
        "server.py",
        "--port",
        port,
        "--delay",
        0.3,
        role="inference",
        ready_url=f"http://127.0.0.1:{port}/health",
    )
    trainer = proc("trainer", "trainer.py", "--wait-port", port, "--steps", 2, "{{run_dir}}")
    plan = make_plan(server, trainer, name="pair")
    code = run_in_volume(
        plan, volume.live, "pair/attempt-1", 0, ("127.0.0.1",), commit=volume.commit, poll_s=0.1
    )
    assert code == 0
    run = volume.committed / "pair" / "attempt-1"
    assert "server: healthy" in (run / "logs" / "inference.log").read_text()
    assert "step 2/2" in (run / "logs" / "trainer.log").read_text()
    node = json.loads((run / "nodes" / "node-0.json").read_text())
    assert str(volume.live / "pair" / "attempt-1") in node["processes"]["trainer"]["argv"]


def test_each_node_of_a_cluster_writes_its_own_files(
    tmp_path: Path, make_plan: Callable[..., Plan], no_leftovers: str
) -> None:
    """Two containers, two views of the volume (as on Modal before a reload)."""
    prog = (
        "import sys, pathlib; pathlib.Path(sys.argv[1], f'node-{sys.argv[2]}.txt')"
        ".write_text(sys.argv[3])"
    )
    procs = [
        Process(
            "trainer",
            f"trainer-{rank}",
            rank,
            (),
            (sys.executable, "-c", prog, "{{run_dir}}", "{{node_rank}}", "{{node_addr:0}}"),
            {"VFT_TEST_TOKEN": no_leftovers},
        )
        for rank in (0, 1)
    ]
    plan = with_files(make_plan(*procs, name="two", nodes=2))
    views = [Volume(tmp_path / f"c{rank}") for rank in (0, 1)]
    addresses = ("10.0.0.1", "10.0.0.2")
    codes: dict[int, int] = {}

    def node(rank: int) -> None:
        v = views[rank]
        codes[rank] = run_in_volume(
            plan, v.live, "two/attempt-1", rank, addresses, commit=v.commit, poll_s=0.1
        )

    other = threading.Thread(target=node, args=(1,))
    other.start()
    node(0)
    other.join(60)
    assert codes == {0: 0, 1: 0}
    for rank in (0, 1):
        run = views[rank].committed / "two" / "attempt-1"
        assert (run / f"node-{rank}.txt").read_text() == "10.0.0.1"
        assert (run / "accelerate.yaml").is_file() and (run / "plan.json").is_file()
        assert (run / "nodes" / f"node-{rank}.json").is_file()
    # only node 0 keeps the run's record: nodes never overwrite each other's run.json
    assert json.loads((views[0].committed / "two/attempt-1/run.json").read_text())["status"] == (
        "succeeded"
    )
    assert not (views[1].committed / "two/attempt-1/run.json").exists()


def test_committer_waits_for_a_checkpoint_to_settle_and_retries_a_refused_commit(
    tmp_path: Path,
) -> None:
    calls: list[str] = []
    refuse = [True]

    def commit() -> None:
        if refuse[0]:
            refuse[0] = False
            raise RuntimeError("there are open files preventing the operation")
        calls.append("ok")

    c = CheckpointCommitter(tmp_path, commit, poll_s=0.1, every_s=3600)
    ckpt = tmp_path / "checkpoints" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "a.bin").write_bytes(b"x" * 10)
    assert c.look() == []  # first sight: maybe still being written
    (ckpt / "b.bin").write_bytes(b"y")
    assert c.look() == []  # it changed since: still being written
    assert c.look() == []  # settled, but Modal refused the commit
    assert calls == []
    assert c.look() == ["checkpoints/checkpoint-5"]  # retried
    assert c.look() == [] and calls == ["ok"]  # committed once, not again


def test_periodic_commit_for_logs(tmp_path: Path) -> None:
    calls: list[float] = []
    c = CheckpointCommitter(tmp_path, lambda: calls.append(time.monotonic()), every_s=0.0)
    c.look()
    c.look()
    assert len(calls) == 2


def test_run_failed_keeps_its_exit_code_across_pickling() -> None:
    """Modal pickles the exception in the container and raises it again in vft."""
    back = pickle.loads(pickle.dumps(RunFailed(3, "smoke node 0 exited with code 3")))
    assert isinstance(back, RunFailed) and back.exit_code == 3
    assert str(back) == "smoke node 0 exited with code 3"


def test_the_modal_function_end_to_end(
    tmp_path: Path, make_plan: Callable[..., Plan], no_leftovers: str, monkeypatch
) -> None:
    """`run_node_restarting` as Modal calls it; Volume.from_name is the faked boundary.
    A run's own failure (exit code 4, not transient) is returned: Modal must not retry it."""
    import modal

    from vft.backends.modal import spec
    from vft.backends.modal.retry import run_node_restarting

    vol = Volume(tmp_path)
    names: list[str] = []

    class FakeVolume:
        def commit(self) -> None:
            vol.commit()

    def from_name(name: str, **kw: object) -> FakeVolume:
        names.append(name)
        return FakeVolume()

    monkeypatch.setattr(spec, "OUTPUTS", str(vol.live))
    monkeypatch.setattr(modal.Volume, "from_name", from_name)
    ok = make_plan(ckpt_trainer(no_leftovers, steps=1, pause=0.1), name="fn")
    ok = Plan.from_dict({**ok.to_dict(), "backend_options": {"volume": "my-vol"}})
    assert run_node_restarting(ok.to_json(), "fn/attempt-1") == 0
    assert names == ["my-vol"]
    assert (vol.committed / "fn/attempt-1/checkpoints/checkpoint-1").is_dir()
    bad = make_plan(ckpt_trainer(no_leftovers, steps=1, pause=0.1, code=4), name="fn")
    assert run_node_restarting(bad.to_json(), "fn/attempt-2") == 4
