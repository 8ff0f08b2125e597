"""`vft status` with progress (step, reward, ETA, cost), its live view (`-f`), and
`vft plot`: on run folders built here, and on one real short GRPO run with TensorBoard on."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from vft.core.plan import Cost
from vft.core.runs.folders import Attempt, run_folder
from vft.testing import plan_of, run_vft

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"
T0 = time.time() - 3600
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row(step: int, t: float, reward: float) -> dict:
    return {
        "step": step,
        "time": t,
        "reward": reward,
        "reward_std": 0.1,
        "reward/correct": round(reward * 0.75, 4),
        "reward/correct/std": 0.05,
        "reward/format": round(reward * 0.25, 4),
        "loss": 0.01 * step,
        "kl": 0.002 * step,
        "tokens_per_s": 812.0,
    }


def make_run(
    out: Path,
    name: str,
    rows: list[dict],
    *,
    status: str = "succeeded",
    price: float = 0.0,
    max_steps: int = 10,
    supervisor: subprocess.Popen | None = None,
    tail: str = "",
) -> Attempt:
    """A run folder as a run leaves it: plan.json (price, max_steps), run.json, metrics."""
    plan = plan_of(name=name)
    training = replace(plan.trainer.training, max_steps=max_steps)
    plan = replace(plan, cost=Cost(price), trainer=replace(plan.trainer, training=training))
    attempt = run_folder(out, name).new_attempt(plan, "local")
    fields: dict = {"status": status, "started_at": T0}
    if status == "succeeded":
        fields |= {"ended_at": T0 + 1800, "exit_code": 0}
    if supervisor is not None:
        proc = psutil.Process(supervisor.pid)
        fields |= {"supervisor_pid": proc.pid, "supervisor_create_time": proc.create_time()}
    attempt.update(**fields)
    if rows or tail:
        text = "".join(json.dumps(r) + "\n" for r in rows) + tail
        (attempt.path / "metrics.jsonl").write_text(text)
    return attempt


@pytest.fixture
def supervisor():
    """A live process standing in for a running run's supervisor (`vft status` checks it)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def status_json(out: Path, *args: str) -> dict:
    got = run_vft("status", *args, "--output-dir", out, "--json")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


# -- vft status ---------------------------------------------------------------------------


def test_status_shows_step_reward_components_loss_kl_speed_and_cost(tmp_path):
    rows = [row(s, T0 + 360 * s, 0.1 * s) for s in range(1, 5)]
    make_run(tmp_path, "paid", rows, price=2.5)
    got = run_vft("status", "paid", "--output-dir", tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0].startswith("paid attempt-1 [local]: succeeded, exit code 0")
    assert lines[1] == (
        "  step 4/10 | reward 0.400 ± 0.100 (correct 0.300, format 0.100) | loss 0.04 "
        "| KL 0.008 | 812 tok/s"
    )
    assert lines[2] == "  elapsed 30m00s | $1.25 so far ($2.50/h)"  # finished: no ETA
    assert lines[3].startswith("  reward ") and lines[3].endswith("0.100 → 0.400")

    metrics = status_json(tmp_path, "paid")["metrics"]
    assert metrics["step"] == 4 and metrics["max_steps"] == 10
    assert metrics["components"] == {"correct": 0.3, "format": 0.1}
    assert metrics["usd_so_far"] == 1.25 and metrics["usd_projected"] == 1.25
    assert metrics["elapsed_s"] == 1800.0 and metrics["eta_s"] is None


def test_status_of_a_running_run_has_an_eta_and_own_hardware_shows_no_dollars(tmp_path, supervisor):
    now = time.time()
    rows = [row(s, now - 10 * (5 - s), 0.5) for s in range(1, 6)]  # 10 s per step, just now
    make_run(tmp_path, "mine", rows, status="running", max_steps=20, supervisor=supervisor)
    data = status_json(tmp_path, "mine")
    assert data["status"] == "running"
    m = data["metrics"]
    assert m["step"] == 5 and m["s_per_step"] == pytest.approx(10.0, abs=0.01)
    assert 100 < m["eta_s"] <= 150  # 15 steps left at 10 s, less the time since the last row
    assert m["usd_per_hour"] is None and m["usd_so_far"] is None
    text = run_vft("status", "mine", "--output-dir", tmp_path).stdout
    assert "ETA " in text and "$" not in text


def test_status_without_metrics_or_with_a_half_written_line_still_answers(tmp_path):
    make_run(tmp_path, "fresh", [])
    got = run_vft("status", "fresh", "--output-dir", tmp_path)
    assert got.returncode == 0 and "step" not in got.stdout and "folder:" in got.stdout
    make_run(tmp_path, "torn", [row(1, T0 + 10, 0.2)], tail='{"step": 2, "rew')
    assert status_json(tmp_path, "torn")["metrics"]["step"] == 1


def test_status_without_run_shows_the_running_runs_only(tmp_path, supervisor):
    make_run(tmp_path, "done", [row(1, T0 + 10, 0.2)])
    make_run(tmp_path, "going", [row(1, time.time(), 0.2)], status="running", supervisor=supervisor)
    got = run_vft("status", "--output-dir", tmp_path)
    assert got.returncode == 0, got.stderr
    assert "going attempt-1 [local]: running" in got.stdout and "done" not in got.stdout
    supervisor.kill()
    supervisor.wait()
    got = run_vft("status", "--output-dir", tmp_path)  # its supervisor died: lost, not running
    assert got.stdout.strip() == f"no running run under {tmp_path}/ (vft runs lists them all)"


def test_status_follow_and_json_together_is_one_line(tmp_path):
    make_run(tmp_path, "r", [])
    got = run_vft("status", "r", "-f", "--json", "--output-dir", tmp_path)
    assert got.returncode == 2
    assert (
        got.stderr.strip() == "vft: error: --json and -f: give one (--json prints the record once)"
    )


# -- the live view ------------------------------------------------------------------------


class Terminal:
    """`vft ARGS` on a pseudo-terminal, as a user watches it; `wait_for` reads its screen."""

    def __init__(self, *args: str | Path) -> None:
        master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vft", *map(str, args)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        self.fd, self.seen = master, ""

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                self.seen += os.read(self.fd, 65536).decode(errors="replace")
            except OSError:  # the program exited and closed its side
                time.sleep(timeout)

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen and time.monotonic() < deadline:
            self.read(0.2)
        assert text in self.seen, f"{text!r} not shown; screen:\n{self.seen[-2000:]}"

    def wait_exit(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.2)
        self.read(0.2)
        assert self.proc.poll() is not None, f"still running; screen:\n{self.seen[-2000:]}"
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


def test_live_view_follows_a_growing_metrics_file_until_the_run_ends(tmp_path, supervisor):
    attempt = make_run(
        tmp_path,
        "live",
        [row(1, time.time(), 0.1)],
        status="running",
        max_steps=3,
        supervisor=supervisor,
    )
    term = Terminal("status", "-f", "live", "--output-dir", tmp_path, "--interval", "0.2")
    try:
        term.wait_for("step 1/3")
        assert "live attempt-1 [local]: running" in term.seen
        with (attempt.path / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(row(2, time.time(), 0.2)) + "\n")
        term.wait_for("step 2/3")
        with (attempt.path / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(row(3, time.time(), 0.3)) + "\n")
        term.wait_for("step 3/3")
        assert term.proc.poll() is None  # still running: the view waits for the run's end
        attempt.update(status="succeeded", exit_code=0, ended_at=time.time())
        assert term.wait_exit() == 0
        assert "live attempt-1 [local]: succeeded, exit code 0" in term.seen
        last = term.seen[term.seen.rindex("succeeded, exit code 0") :]
        assert "step 3/3" in last and "Ctrl-C" not in last  # the last frame: no way out to tell
    finally:
        term.close()


def test_ctrl_c_leaves_the_live_view_and_the_run_goes_on(tmp_path, supervisor):
    attempt = make_run(
        tmp_path, "long", [row(1, time.time(), 0.1)], status="running", supervisor=supervisor
    )
    term = Terminal("status", "-f", "--output-dir", tmp_path, "--interval", "0.2")  # no RUN
    try:
        term.wait_for("step 1/10")
        term.proc.send_signal(signal.SIGINT)
        assert term.wait_exit(timeout=30) == 0  # a loaded 2-core CI machine is slow to exit
        assert "left the live view; the runs go on" in term.seen
        assert "Traceback" not in term.seen
        assert supervisor.poll() is None and attempt.record()["status"] == "running"
    finally:
        term.close()


# -- vft plot -----------------------------------------------------------------------------


def two_runs(out: Path) -> None:
    make_run(out, "a", [row(s, T0 + s, 0.1 * s) for s in range(1, 9)])
    make_run(out, "b", [row(s, T0 + s, 0.8 - 0.05 * s) for s in range(1, 9)])


def test_plot_in_the_terminal_overlays_runs_for_reward_components_loss_and_kl(tmp_path):
    two_runs(tmp_path)
    got = run_vft("plot", "a", "b", "--output-dir", tmp_path)
    assert got.returncode == 0, got.stderr
    out = got.stdout
    assert out.splitlines()[0].split() == ["━", "a", "━", "b"]  # the legend
    titles = [line.split("  (")[0] for line in out.splitlines() if "  (last value: " in line]
    assert titles == ["reward", "reward/correct", "reward/format", "loss", "kl"]
    assert "reward  (last value: a 0.8, b 0.4)" in out
    braille = [line for line in out.splitlines() if any("\u2801" <= ch <= "\u28ff" for ch in line)]
    assert len(braille) >= 5 * 4  # every chart has its curve drawn
    assert "step 1" in out


def test_plot_one_metric_and_an_unknown_metric_names_the_closest_one(tmp_path):
    two_runs(tmp_path)
    got = run_vft("plot", "a", "-m", "tokens_per_s", "--height", "3", "--output-dir", tmp_path)
    assert got.returncode == 0 and got.stdout.startswith("tokens_per_s  (last value: 812)")
    bad = run_vft("plot", "a", "-m", "reward,rewrd", "--output-dir", tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == (
        "vft: error: --metric: unknown metric 'rewrd': did you mean 'reward'? "
        "(others: reward_std, loss, kl; all 8: vft plot a --list-metrics)"
    )


def test_plot_of_runs_without_a_step_and_of_an_unknown_run_are_one_line(tmp_path):
    make_run(tmp_path, "empty", [])
    got = run_vft("plot", "empty", "--output-dir", tmp_path)
    assert got.returncode == 2
    assert got.stderr.strip().splitlines()[-1] == (
        "vft: error: nothing to plot: no run of empty has logged a step yet"
    )
    got = run_vft("plot", "emptty", "--output-dir", tmp_path)
    assert got.returncode == 2 and "did you mean 'empty'?" in got.stderr


def test_plot_to_a_png_file(tmp_path):
    pytest.importorskip("matplotlib")
    two_runs(tmp_path)
    png = tmp_path / "curves.png"
    got = run_vft("plot", "a", "b", "-o", png, "--output-dir", tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"wrote {png} (reward, reward/correct, reward/format, loss, kl)"
    assert_real_png(png)
    bad = run_vft("plot", "a", "-o", tmp_path / "curves.txt", "--output-dir", tmp_path)
    assert bad.returncode == 2 and "-o: 'curves.txt' has no image suffix" in bad.stderr


def test_without_matplotlib_the_terminal_plot_works_and_a_file_is_one_line(tmp_path):
    two_runs(tmp_path)
    block = "import sys; sys.modules['matplotlib'] = None; from vft.cli import main; main()"
    argv = [sys.executable, "-c", block, "plot", "a", "--output-dir", str(tmp_path)]
    shown = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "reward  (last value: 0.8)" in shown.stdout
    wrote = subprocess.run(
        [*argv, "-o", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60
    )
    assert wrote.returncode == 2 and not (tmp_path / "x.png").exists()
    assert wrote.stderr.strip() == (
        "vft: error: -o: writing an image needs matplotlib, which is not installed "
        "(pip install 'vft[plot]')"
    )


def assert_real_png(path: Path) -> None:
    """A PNG with drawn content: the magic bytes, and pixels of more than one colour."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    from matplotlib.image import imread

    pixels = imread(str(path))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    assert pixels[..., :3].std() > 0.05


# -- one real run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """The smoke recipe, 2 real GRPO steps on the CPU, with logging.tensorboard = true."""
    pytest.importorskip("trl")
    pytest.importorskip("tensorboard")
    out = tmp_path_factory.mktemp("real")
    argv = [sys.executable, "-m", "vft", "run", str(SMOKE), "--backend", "local"]
    for o in ("trainer.max_steps=2", "trainer.save_steps=2", "logging.tensorboard=true"):
        argv += ["--set", o]
    argv += ["--set", f"run.output_dir={json.dumps(str(out))}"]
    got = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    return out


@pytest.mark.slow
def test_real_run_status_shows_its_steps_and_reward(real_run):
    data = status_json(real_run, "smoke")
    assert data["status"] == "succeeded"
    m = data["metrics"]
    assert m["step"] == 2 and m["max_steps"] == 2
    assert isinstance(m["reward"], float) and set(m["components"]) == {"class_fraction"}
    assert m["elapsed_s"] > 0 and m["s_per_step"] > 0 and m["eta_s"] is None
    assert m["usd_so_far"] is None  # the CPU has no price
    text = run_vft("status", "smoke", "--output-dir", real_run).stdout
    assert "  step 2/2 | reward " in text and "class_fraction" in text


@pytest.mark.slow
def test_real_run_writes_tensorboard_events_beside_an_unchanged_metrics_file(real_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    attempt = real_run / "smoke" / "attempt-1"
    events = list((attempt / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    board = EventAccumulator(str(attempt / "tensorboard"))
    board.Reload()
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for tag in ("reward", "reward/class_fraction", "loss"):
        scalars = board.Scalars(tag)
        assert [(s.step, round(s.value, 5)) for s in scalars] == [
            (r["step"], round(r[tag], 5)) for r in rows
        ]


@pytest.mark.slow
def test_real_run_plots_to_a_png(real_run, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "smoke.png"
    got = run_vft("plot", "smoke", "-o", png, "--output-dir", real_run)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(
        f"wrote {png} (reward, loss"
    )  # its lone component is the reward: drawn once
    assert_real_png(png)


# -- a run whose folder is remote (Modal) -------------------------------------------------


def test_a_modal_runs_metrics_come_through_its_backend_quietly(tmp_path, monkeypatch, capsys):
    """metrics.jsonl is read off the run's Volume the way `vft outputs get` reads files
    (Modal's client is the boundary: the Volume answers with Modal's own entry objects)."""
    pytest.importorskip("modal")
    from modal.exception import NotFoundError
    from modal.volume import FileEntry, FileEntryType

    from vft.backends.modal import outputs
    from vft.backends.modal.backend import ModalBackend
    from vft.cli.run_metrics import metrics_rows

    text = "".join(json.dumps(row(s, T0 + s, 0.1 * s)) + "\n" for s in (1, 2)) + '{"step": 3'
    files = {"exp/attempt-2/metrics.jsonl": text.encode()}

    class Volume:
        def listdir(self, path: str, *, recursive: bool = False) -> list[FileEntry]:
            found = [p for p in files if p.startswith(path.strip("/") + "/")]
            if not found:
                raise NotFoundError(path)
            return [FileEntry(p, FileEntryType.FILE, 0, len(files[p])) for p in found]

        def read_file(self, path: str):
            yield files[path]

    monkeypatch.setattr(outputs, "_volume", lambda record: Volume())
    attempt = Attempt(tmp_path / "exp" / "attempt-2")
    attempt.update(
        backend="modal", status="running", modal={"volume": "v", "run_dir": "exp/attempt-2"}
    )
    rows, why = metrics_rows(attempt, ModalBackend())
    assert [r["step"] for r in rows] == [1, 2] and why is None
    assert capsys.readouterr().out == ""  # no download progress bar in a status
    assert not (attempt.path / "metrics.jsonl").exists()  # nothing left behind
    files.clear()
    files["exp/attempt-2/run.json"] = b"{}"
    rows, why = metrics_rows(attempt, ModalBackend())
    assert rows == [] and why == (
        "metrics: no files under v:/exp/attempt-2/metrics.jsonl "
        "(outputs are committed at checkpoints)"
    )
