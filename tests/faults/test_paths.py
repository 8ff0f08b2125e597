"""Bad places to write and links out of a run folder: one line, exit 2, nothing made.

`run.output_dir` in /proc or /sys, at a file, or too long for the filesystem; `vft outputs
get` into such a place; a link inside a run folder to /etc/passwd or a folder elsewhere.
Real subprocesses, as a user runs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability import case
from vft.core.runs.folders import Attempt, run_folder
from vft.testing import plan_of, run_vft

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "examples" / "recipes" / "smoke.toml")


def _error_line(out) -> str:
    """The one error line (a note that a busy port was moved may come before it)."""
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("vft: error:")]
    assert len(errors) == 1, out.stderr
    assert len(errors[0]) < 400, errors[0]
    return errors[0]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


OUTPUT_DIRS = {
    "proc": lambda tmp: "/proc/vft-fault-test/outputs",
    "sys": lambda tmp: "/sys/vft-fault-test",
    "a-file": lambda tmp: str(tmp / "a-file"),
    "under-a-file": lambda tmp: str(tmp / "a-file" / "outputs"),
    "name-too-long": lambda tmp: str(tmp / "new" / ("n" * 300)),
    "path-too-long": lambda tmp: str(tmp / "new" / "/".join(["d" * 250] * 17)),
}


@pytest.mark.parametrize("where", OUTPUT_DIRS.values(), ids=OUTPUT_DIRS.keys())
def test_a_bad_output_dir_is_one_line_and_makes_nothing(tmp_path, where):
    (tmp_path / "a-file").write_text("not a folder\n")
    before = _tree(tmp_path)
    out_dir = where(tmp_path)
    out = run_vft("run", SMOKE, "--dry-run", "--set", f"run.output_dir={out_dir}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert _error_line(out).startswith("vft: error: run.output_dir: ")
    assert _tree(tmp_path) == before  # no parent folder left half-made
    assert not Path("/proc/vft-fault-test").exists()
    case()


def _run(root: Path) -> Attempt:
    attempt = run_folder(root / "outputs", "r").new_attempt(plan_of(name="r"), "local")
    (attempt.path / "checkpoints").mkdir()
    (attempt.path / "checkpoints" / "weights.bin").write_bytes(b"w" * 10)
    return attempt


DESTS = {
    "a-file": lambda tmp: tmp / "a-file",
    "under-a-file": lambda tmp: tmp / "a-file" / "dest",
    "proc": lambda tmp: Path("/proc/vft-fault-test"),
    "proc-itself": lambda tmp: Path("/proc"),
    "name-too-long": lambda tmp: tmp / "new" / ("n" * 300),
}


@pytest.mark.parametrize("dest", DESTS.values(), ids=DESTS.keys())
def test_outputs_get_into_a_bad_dest_is_one_line_and_makes_nothing(tmp_path, dest):
    attempt = _run(tmp_path)
    (tmp_path / "a-file").write_text("not a folder\n")
    record = attempt.record_path.read_bytes()
    before = _tree(tmp_path)
    out = run_vft("outputs", "get", "r", dest(tmp_path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert _error_line(out).startswith("vft: error: DEST: ")
    assert _tree(tmp_path) == before
    assert not Path("/proc/vft-fault-test").exists()
    case(records_lost=int(attempt.record_path.read_bytes() != record))


@pytest.fixture
def leaky_run(tmp_path: Path) -> Attempt:
    """A run folder with links to /etc/passwd, to a folder elsewhere, and one inside."""
    attempt = _run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("not the run's\n")
    (attempt.path / "passwd").symlink_to("/etc/passwd")
    (attempt.path / "checkpoints" / "other").symlink_to(elsewhere)
    (attempt.path / "plan-again.json").symlink_to("plan.json")  # inside: fine
    return attempt


def test_outputs_ls_skips_links_out_and_get_copies_what_stays_inside(tmp_path, leaky_run):
    out = run_vft("outputs", "ls", "r", cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    listed = [line.split()[-1] for line in out.stdout.splitlines()]
    assert "passwd" not in listed and not any("secret" in p for p in listed)
    assert "plan-again.json" in listed and "checkpoints/weights.bin" in listed
    notes = [line for line in out.stderr.splitlines() if line.startswith("vft: skipped")]
    assert sorted(notes) == [
        "vft: skipped checkpoints/other: it links outside the run folder "
        f"(to {tmp_path / 'elsewhere'})",
        "vft: skipped passwd: it links outside the run folder (to /etc/passwd)",
    ]
    dest = tmp_path / "dest"
    got = run_vft("outputs", "get", "r", dest, "--prefix", "plan", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["plan-again.json", "plan.json"]
    assert not (dest / "plan-again.json").is_symlink()  # the file's content, not the link
    assert json.loads((dest / "plan-again.json").read_text())["name"] == "r"
    case()


@pytest.mark.parametrize("prefix", ["", "passwd", "checkpoints/", "checkpoints/other/"])
def test_outputs_get_refuses_links_out_of_the_run_folder(tmp_path, leaky_run, prefix):
    dest = tmp_path / "dest"
    out = run_vft("outputs", "get", "r", dest, "--prefix", prefix, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    line = _error_line(out)
    assert "links outside the run folder" in line and "nothing copied" in line
    assert not dest.exists()  # refused before anything was written
    case()
