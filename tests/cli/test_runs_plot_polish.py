"""`vft runs` keeps a run's name whole at any width (users copy it into `vft status`), and
`vft plot -m` answers a mistyped or unlogged metric in one line that says what to type;
on run folders written here as a run leaves them."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from vft.core.runs.folders import run_folder
from vft.testing import plan_of, run_vft

T0 = time.time() - 3600
LONG = "gsm8k-qwen3-0.6b-lora-lr3e-6-beta0.04-seed1"


def make_attempt(out: Path, name: str, *, beta: float = 0.0, kl: bool = False) -> None:
    """A finished run with two steps of metrics; `kl` as a run with trainer.beta > 0 logs."""
    plan = plan_of(name=name)
    training = replace(plan.trainer.training, beta=beta)
    plan = replace(plan, trainer=replace(plan.trainer, training=training))
    attempt = run_folder(out, name).new_attempt(plan, "local")
    attempt.update(status="succeeded", started_at=T0, ended_at=T0 + 60, exit_code=0)
    rows = [
        {"step": s, "time": T0 + s, "reward": 0.5, "reward_std": 0.1, "loss": 0.01}
        | {"grad_norm": 1.0, "entropy": 0.7}
        | ({"kl": 0.001} if kl else {})
        for s in (1, 2)
    ]
    (attempt.path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def runs_at(out: Path, columns: int) -> list[str]:
    got = run_vft("runs", "--output-dir", out, env={"COLUMNS": str(columns)})
    assert got.returncode == 0, got.stderr
    return got.stdout.splitlines()


def test_runs_at_80_columns_keeps_the_name_whole_and_fits(tmp_path: Path) -> None:
    make_attempt(tmp_path, LONG)
    make_attempt(tmp_path, "smoke")
    lines = runs_at(tmp_path, 80)
    row = next(line for line in lines if LONG in line)  # on one line, not cut or wrapped
    assert "succeeded" in row
    assert all(len(line.rstrip()) <= 80 for line in lines), lines
    assert "…" not in "".join(lines)
    assert lines[-1].strip() == "(narrow terminal: backend, started not shown)"


def test_runs_on_a_wide_terminal_shows_every_column(tmp_path: Path) -> None:
    make_attempt(tmp_path, LONG)
    lines = runs_at(tmp_path, 160)
    header = next(line for line in lines if " run " in line)
    assert header.split("┃")[1:-1] == [
        f" {'run':<{len(LONG)}} ",
        " status    ",
        " backend ",
        " attempt ",
        " started             ",
        " exit code ",
    ]
    assert not any("narrow terminal" in line for line in lines)


def test_runs_on_a_terminal_narrower_than_the_name_still_prints_it_whole(
    tmp_path: Path,
) -> None:
    make_attempt(tmp_path, LONG)
    row = next(line for line in runs_at(tmp_path, 40) if LONG in line)
    assert "succeeded" in row  # the line runs over rather than lose the name's end


def test_an_unknown_metric_is_one_short_line_with_the_closest_name(tmp_path: Path) -> None:
    make_attempt(tmp_path, "smoke")
    got = run_vft("plot", "smoke", "-m", "rewardd", "--output-dir", tmp_path)
    assert got.returncode == 2 and got.stdout == ""
    assert got.stderr.strip() == (
        "vft: error: --metric: unknown metric 'rewardd': did you mean 'reward'? "
        "(others: reward_std, loss; all 5: vft plot smoke --list-metrics)"
    )
    listed = run_vft("plot", "smoke", "--list-metrics", "--output-dir", tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["entropy", "grad_norm", "loss", "reward", "reward_std"]


def test_kl_of_a_run_without_a_kl_term_says_why_it_is_not_there(tmp_path: Path) -> None:
    make_attempt(tmp_path, "smoke", beta=0.0)
    got = run_vft("plot", "smoke", "-m", "kl", "--output-dir", tmp_path)
    assert got.returncode == 2 and got.stdout == ""
    assert got.stderr.strip() == (
        "vft: error: --metric: kl: not logged by this run "
        "(trainer.beta = 0: no KL term; set trainer.beta > 0 to log it)"
    )


def test_kl_of_a_run_with_a_kl_term_is_plotted_or_unknown(tmp_path: Path) -> None:
    make_attempt(tmp_path, "logged", beta=0.04, kl=True)
    got = run_vft("plot", "logged", "-m", "kl", "--height", "3", "--output-dir", tmp_path)
    assert got.returncode == 0 and got.stdout.startswith("kl  (last value: 0.001)")
    make_attempt(tmp_path, "missing", beta=0.04)
    got = run_vft("plot", "missing", "-m", "kl", "--output-dir", tmp_path)
    assert got.returncode == 2
    assert "unknown metric 'kl'" in got.stderr and "trainer.beta" not in got.stderr
