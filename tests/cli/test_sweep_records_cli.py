"""`vft runs --sweep` over a sweep's launches and over points whose folder is remote.

A sweep run again under its name is a new launch: `--sweep NAME` shows the latest, and the
earlier launches stay readable as `NAME/launch-N` (also by `vft plot --sweep`). A Modal
point's reward is read off its Volume by the route `vft status` takes; one that cannot be
read is marked, and why is said under the table. Modal's servers cannot be reached from a
test: the fake is at Modal's client only (`modal.Volume`, answering with Modal's own entry
objects and exceptions); everything above it (vft's outputs code, the backend, the table)
is the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vft.cli import cli
from vft.core.runs.folders import Attempt
from vft.core.sweeps.record import PointRecord, SweepRecord, new_launch
from vft.testing import run_vft

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "examples" / "recipes" / "smoke.toml")


def metrics(*rewards: float) -> str:
    return "".join(
        json.dumps({"step": i + 1, "reward": r, "loss": 0.1}) + "\n" for i, r in enumerate(rewards)
    )


def point_run(out: Path, name: str, attempt: int, backend: str, **fields) -> Attempt:
    """A finished point's attempt folder as its run leaves it (run.json)."""
    found = Attempt(out / name / f"attempt-{attempt}")
    found.update(name=name, attempt=attempt, backend=backend, status="succeeded", **fields)
    return found


def sweep(out: Path, backend: str, attempt: int, seeds: tuple[int, ...]) -> SweepRecord:
    """A launch of sweep `smoke` over trainer.seed, its points at `attempt`, ended."""
    points = [
        PointRecord(f"smoke-seed{s}", {"trainer.seed": s}, attempt, "succeeded", 0) for s in seeds
    ]
    axes = [{"key": "trainer.seed", "values": list(seeds)}]
    record = SweepRecord("smoke", SMOKE, backend, axes, [], 1, points, status="succeeded")
    new_launch(record, out)
    return record


def table_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0]:
                rows[cells[0]] = cells[1:]
    return rows


def runs_sweep(ref: str, out: Path, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "250")
    shown = CliRunner().invoke(cli, ["runs", "--sweep", ref, "--output-dir", str(out)])
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_a_rerun_sweep_shows_its_latest_launch_and_keeps_the_earlier(tmp_path, monkeypatch):
    out = tmp_path / "outputs"
    for s, rewards in ((1, (0.1, 0.4)), (2, (0.2, 0.3))):
        (point_run(out, f"smoke-seed{s}", 1, "local").path / "metrics.jsonl").write_text(
            metrics(*rewards)
        )
    sweep(out, "local", 1, (1, 2))
    (point_run(out, "smoke-seed1", 2, "local").path / "metrics.jsonl").write_text(
        metrics(0.5, 0.9, 0.6)
    )
    sweep(out, "local", 2, (1,))  # the same name again: launch 2, the point's attempt-2

    latest = runs_sweep("smoke", out, monkeypatch)
    assert "sweep smoke, launch 2 of 2 (succeeded): 1 points" in latest
    assert table_rows(latest) == {
        "smoke-seed1": ["1", "succeeded (attempt-2)", "3", "0.600", "0.900"],
    }
    assert "other launches: smoke/launch-1 (vft runs --sweep NAME/launch-N)" in latest

    first = runs_sweep("smoke/launch-1", out, monkeypatch)
    assert "sweep smoke, launch 1 of 2 (succeeded): 2 points" in first
    rows = table_rows(first)
    assert rows["smoke-seed1"] == ["1", "succeeded", "2", "0.400", "0.400"]
    assert rows["smoke-seed2"] == ["2", "succeeded", "2", "0.300", "0.300"]
    assert "other launches: smoke/launch-2" in first

    plotted = run_vft("plot", "--sweep", "smoke/launch-1", "--output-dir", out, "-m", "reward")
    assert plotted.returncode == 0, plotted.stderr
    assert "smoke-seed1 0.4" in plotted.stdout and "smoke-seed2 0.3" in plotted.stdout
    missing = run_vft("runs", "--sweep", "smoke/launch-3", "--output-dir", out)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "vft: error: sweep 'smoke' has no launch-3 (launches: smoke/launch-1, smoke/launch-2)"
    )


def test_a_modal_points_reward_comes_off_its_volume_or_is_marked_unreadable(tmp_path, monkeypatch):
    """Fake at Modal's client only: `_volume` (vft's one call of `modal.Volume.from_name`)
    answers with a Volume double holding the files, raising Modal's own ConnectionError
    for one point's run folder and a plain error for another's."""
    pytest.importorskip("modal")
    from modal.exception import ConnectionError as ModalConnectionError
    from modal.exception import NotFoundError
    from modal.volume import FileEntry, FileEntryType

    from vft.backends.modal import outputs

    files = {"smoke-seed1/attempt-1/metrics.jsonl": metrics(0.25, 0.75, 0.5).encode()}
    asked: list[str] = []

    class Volume:
        def listdir(self, path: str, *, recursive: bool = False) -> list[FileEntry]:
            asked.append(path)
            if path.startswith("smoke-seed2/"):
                raise ModalConnectionError("connection refused")
            found = [p for p in files if p.startswith(path.strip("/") + "/")]
            if not found:
                raise NotFoundError(path)
            return [FileEntry(p, FileEntryType.FILE, 0, len(files[p])) for p in found]

        def read_file(self, path: str):
            if path.startswith("smoke-seed3/"):
                raise RuntimeError("stream reset")
            yield files[path]

    files["smoke-seed3/attempt-1/metrics.jsonl"] = metrics(0.1).encode()
    monkeypatch.setattr(outputs, "_volume", lambda record: Volume())
    out = tmp_path / "outputs"
    for s in (1, 2, 3):
        modal = {"volume": "vft-runs", "run_dir": f"smoke-seed{s}/attempt-1", "app_id": "ap-1"}
        point_run(out, f"smoke-seed{s}", 1, "modal", modal=modal)
    sweep(out, "modal", 1, (1, 2, 3))

    shown = runs_sweep("smoke", out, monkeypatch)
    rows = table_rows(shown)
    assert rows["smoke-seed1"] == ["1", "succeeded", "3", "0.500", "0.750"]
    assert rows["smoke-seed2"] == ["2", "succeeded", "?", "?", "?"]
    assert rows["smoke-seed3"] == ["3", "succeeded", "?", "?", "?"]
    assert "? smoke-seed2: metrics: cannot reach Modal: connection refused" in shown
    assert "? smoke-seed3: metrics: RuntimeError: stream reset" in shown
    assert {path.split("/")[0] for path in asked} == {f"smoke-seed{s}" for s in (1, 2, 3)}
    assert not list(out.glob("*/attempt-1/metrics.jsonl"))  # nothing left behind


@pytest.mark.slow  # two real one-step sweeps of the smoke recipe (~35 s)
def test_vft_sweep_run_twice_under_one_name_keeps_both_launches(tmp_path):
    pytest.importorskip("trl")
    out = tmp_path / "outputs"
    argv = ["sweep", SMOKE, "--grid", "trainer.seed=1"]
    small = (
        "trainer.max_steps=1",
        "environment.args.num_examples=8",
        "trainer.per_device_train_batch_size=2",
        "trainer.num_generations=2",
        f"run.output_dir={json.dumps(str(out))}",
    )
    argv += [arg for item in small for arg in ("--set", item)]
    first = run_vft(*argv, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_vft(*argv, cwd=tmp_path, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "sweep smoke: launch 2, record outputs/smoke.sweep.json (kept: smoke/launch-1)" in (
        second.stderr
    )
    stored = json.loads((out / "smoke.sweep.json").read_text())
    assert (stored["launch"], stored["points"][0]["attempt"]) == (2, 2)
    assert [(e["launch"], e["status"]) for e in stored["earlier"]] == [(1, "succeeded")]
    assert stored["earlier"][0]["points"][0]["attempt"] == 1
    listed = run_vft("runs", "--sweep", "smoke/launch-1", "--output-dir", out)
    row = table_rows(listed.stdout)["smoke-seed1"]
    assert row[1] == "succeeded" and row[2] == "1"  # attempt-1's status and its one step
