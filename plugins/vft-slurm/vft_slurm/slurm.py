"""Slurm's own commands (sbatch, scontrol, scancel), called with argv lists and parsed.

No accounting database is assumed: a job's state comes from `scontrol show job` while
slurmctld remembers it (MinJobAge), then from the job-completion log (jobcomp/filetxt)
when the cluster keeps one.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vft.plugin import PreflightError, UserError

TIMEOUT_S = 60
# `Key=value` fields of `scontrol -o` and jobcomp lines; values may hold spaces
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w/:]*)=(.*?)(?=\s[A-Za-z][\w/:]*=|\s*$)")

# Slurm job states, as vft statuses
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}
STATUS = {
    "PENDING": "queued",
    "REQUEUED": "queued",
    "CONFIGURING": "starting",
    "RUNNING": "running",
    "COMPLETING": "running",  # processes still being cleaned up on some node
    "SUSPENDED": "suspended",
    "COMPLETED": "succeeded",
    "CANCELLED": "stopped",
    "PREEMPTED": "stopped",
}


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a Slurm command; a missing command or a refusal is a one-line UserError."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        raise PreflightError(
            f"slurm: {argv[0]!r} not found; run vft where Slurm's commands are (a login node)"
        ) from None
    except subprocess.TimeoutExpired:
        raise PreflightError(
            f"slurm: {argv[0]} did not answer in {TIMEOUT_S} s; is slurmctld up? (scontrol ping)"
        ) from None
    if check and out.returncode != 0:
        raise UserError(f"slurm: {argv[0]} failed: {one_line(out.stderr + out.stdout)}")
    return out


def one_line(text: str) -> str:
    """Slurm's messages on one line, without the repeated `sbatch: error:` prefixes."""
    lines = [re.sub(r"^\w+: (error: )?", "", x).strip() for x in text.splitlines()]
    seen: list[str] = []
    for line in lines:
        if line and line not in seen:
            seen.append(line)
    return "; ".join(seen) or "no message"


def fields(line: str) -> dict[str, str]:
    return {m[1]: m[2] for m in _FIELD.finditer(line)}


def submit(script: Path) -> str:
    """sbatch the script; return the job id."""
    out = run("sbatch", "--parsable", str(script), check=False)
    if out.returncode != 0:
        raise UserError(f"slurm: sbatch refused the job: {one_line(out.stderr + out.stdout)}")
    return out.stdout.strip().split(";")[0]


def test_only(script: Path) -> str:
    """`sbatch --test-only`: Slurm's own verdict on whether the cluster can ever run the job."""
    out = run("sbatch", "--test-only", str(script), check=False)
    text = one_line(out.stderr + out.stdout)
    if out.returncode != 0:
        raise PreflightError(f"slurm: the cluster cannot run this job: {text}")
    # "Job 37 to start at ...": 37 is a number sbatch will not use; keep the when and where
    return re.sub(r"^Job \d+ to start", "sbatch --test-only: the job would start", text)


@dataclass(frozen=True)
class JobInfo:
    """What Slurm says about a job; `source` is 'scontrol' or 'jobcomp'."""

    job_id: str
    state: str  # Slurm's word: RUNNING, FAILED, CANCELLED, ...
    exit_code: int | None
    reason: str
    nodes: str
    source: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def status(self) -> str:
        return STATUS.get(self.state, "failed")


def _info(job_id: str, f: dict[str, str], source: str) -> JobInfo:
    state = f.get("JobState", "UNKNOWN").split()[0]
    code, _, sig = f.get("ExitCode", "").partition(":")
    exit_code = None
    if code.isdigit():
        # "0:15": killed by signal 15, as a shell reports it
        exit_code = 128 + int(sig) if int(code) == 0 and sig.isdigit() and int(sig) else int(code)
    reason = f.get("Reason", "None")
    return JobInfo(job_id, state, exit_code, "" if reason == "None" else reason,
                   f.get("NodeList", ""), source)  # fmt: skip


def job(job_id: str) -> JobInfo | None:
    """The job from slurmctld's memory, or None once it has forgotten it."""
    out = run("scontrol", "show", "job", "-o", job_id, check=False)
    if out.returncode != 0:
        if "Invalid job id" in out.stderr + out.stdout:
            return None
        raise UserError(f"slurm: scontrol show job {job_id}: {one_line(out.stderr)}")
    return _info(job_id, fields(out.stdout.strip()), "scontrol")


def jobcomp_path() -> Path | None:
    """The job-completion log, when the cluster writes one to a file (jobcomp/filetxt)."""
    out = run("scontrol", "show", "config", check=False)
    conf = dict(
        (k.strip(), v.strip()) for k, _, v in (x.partition("=") for x in out.stdout.splitlines())
    )
    if conf.get("JobCompType") != "jobcomp/filetxt" or not conf.get("JobCompLoc"):
        return None
    return Path(conf["JobCompLoc"])


def completed(job_id: str) -> JobInfo | None:
    """The job's line in the job-completion log (the last one: a requeued job has several)."""
    path = jobcomp_path()
    if path is None or not path.is_file():
        return None
    found = None
    with path.open() as f:
        for line in f:
            if line.startswith(f"JobId={job_id} "):
                found = line
    return _info(job_id, fields(found.strip()), "jobcomp") if found else None


def lookup(job_id: str) -> JobInfo | None:
    return job(job_id) or completed(job_id)


def cancel(job_id: str) -> None:
    """scancel: Slurm signals every process of every step on every node, then kills them."""
    run("scancel", job_id)


def kill_wait_s() -> float:
    """How long Slurm waits between SIGTERM and SIGKILL (KillWait), for stop's wait."""
    out = run("scontrol", "show", "config", check=False)
    m = re.search(r"^KillWait\s*=\s*(\d+)", out.stdout, re.M)
    return float(m[1]) if m else 30.0
