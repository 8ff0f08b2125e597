"""SlurmBackend: a Plan as one batch job, one vft supervisor per node, the run folder shared.

The attempt folder lives on the cluster's shared filesystem: the job writes its records
and logs there, and `vft status/logs/stop/outputs` read it from the login node, asking
Slurm only for what the folder cannot know (queued? cancelled? out of time?).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vft.plugin import FINISHED, Attempt, Backend, Capabilities, PreflightError, UserError
from vft_slurm import slurm
from vft_slurm.script import JobSpec, render

if TYPE_CHECKING:
    from vft.plugin import Plan

POLL_S = 1.0
STOP_EXTRA_S = 60.0  # beyond Slurm's KillWait, for slurmctld to mark the job done
SCRIPT = "job.sbatch"
# why a job ended, in the user's words, for the states that are not a process's exit
REASONS = {
    "TIMEOUT": "the job reached its time limit (backend.slurm.time_limit)",
    "NODE_FAIL": "a node of the job failed",
    "OUT_OF_MEMORY": "a node ran out of memory (backend.slurm.mem_per_node)",
    "BOOT_FAIL": "a node failed to boot",
    "DEADLINE": "the job reached its deadline",
    "PREEMPTED": "the job was preempted",
    "CANCELLED": "the job was cancelled",
}


class SlurmBackend(Backend):
    name = "slurm"
    options_model = "vft_slurm.options:SlurmOptions"  # imported when a recipe uses slurm
    capabilities = Capabilities(
        multi_node=True,
        detach=True,
        outputs=True,
        cpu=True,
        # any type: the cluster decides, and sbatch --test-only refuses what it lacks
        gpu_types=None,
    )

    # -- before launch ---------------------------------------------------------------------
    def describe(self, plan: Plan) -> list[tuple[str, str]]:
        run_dir = Path(plan.run.output_dir).resolve() / plan.name / "attempt-N"
        return [("batch script", "\n" + self.script(plan, str(run_dir)))]

    def script(self, plan: Plan, run_dir: str) -> str:
        from vft_slurm.options import SlurmOptions

        options = SlurmOptions.model_validate(plan.backend_options or {})
        return render(plan, options, JobSpec(run_dir=run_dir, workdir=os.getcwd()))

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        """Slurm's own verdict (sbatch --test-only): can this cluster ever run the job?"""
        run_dir = Path(plan.run.output_dir).resolve() / plan.name / "attempt-0"
        with tempfile.TemporaryDirectory(prefix="vft-slurm-") as tmp:
            path = Path(tmp) / SCRIPT
            path.write_text(self.script(plan, str(run_dir)))
            try:
                return [f"slurm: {slurm.test_only(path)}"]
            except PreflightError as exc:
                if not force:
                    raise
                return [f"--force: going on although {exc.line()}"]

    # -- launch ----------------------------------------------------------------------------
    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        attempt = Attempt(attempt.path.resolve())  # the job starts elsewhere: no relative paths
        attempt.logs_dir.mkdir(parents=True, exist_ok=True)
        path = attempt.path / SCRIPT
        path.write_text(self.script(plan, str(attempt.path)))
        try:
            job_id = slurm.submit(path)
        except UserError as exc:
            attempt.update(status="failed", ended_at=time.time(), failed={"reason": exc.line()})
            raise
        attempt.update(status="queued", slurm_job_id=job_id, submitted_at=time.time())
        print(
            f"vft: submitted Slurm job {job_id} ({plan.nodes} node(s)); batch script "
            f"{path}, Slurm's output {attempt.path}/slurm-{job_id}.out",
            file=sys.stderr,
        )
        if detach:
            return 0
        try:
            for line in self.logs(attempt, follow=True, process=None):
                print(line, flush=True)
        except KeyboardInterrupt:
            print(f"vft: cancelling Slurm job {job_id}", file=sys.stderr)
            self.stop(attempt)
            return 130
        return int(self.status(attempt).get("exit_code") or 0)

    # -- after launch ----------------------------------------------------------------------
    def status(self, attempt: Attempt) -> dict[str, Any]:
        """run.json, with status and exit code from Slurm until the job's end is recorded."""
        record = attempt.record()
        job_id = record.get("slurm_job_id")
        if not job_id or record.get("settled"):  # settled: the job's end is recorded here
            return self._with_nodes(attempt, record)
        info = slurm.lookup(str(job_id))
        if info is None:
            if record.get("status") in FINISHED:  # the job wrote its outcome before it ended
                return self._with_nodes(attempt, attempt.update(settled=True))
            gone = {"status": "lost", "reason": f"Slurm no longer knows job {job_id} and keeps no "
                    "job-completion log (jobcomp/filetxt)"}  # fmt: skip
            return self._with_nodes(attempt, {**record, **gone})
        live = {"slurm_state": info.state, "slurm_nodes": info.nodes, "reason": info.reason}
        if info.active:
            return self._with_nodes(attempt, {**record, **live, "status": info.status})
        return self._with_nodes(attempt, attempt.update(**{**live, **self._ending(attempt, info)}))

    def _ending(self, attempt: Attempt, info: slurm.JobInfo) -> dict[str, Any]:
        from vft_slurm.verdict import outcome

        end = {"settled": True, "ended_at": attempt.record().get("ended_at") or time.time()}
        if info.state in ("COMPLETED", "FAILED"):
            return {**end, **outcome(attempt, info.exit_code or 0)}
        reason = REASONS.get(info.state, f"Slurm ended the job as {info.state}")
        status = "stopped" if info.status == "stopped" else "failed"
        return {**end, "status": status, "exit_code": info.exit_code, "reason": reason}

    @staticmethod
    def _with_nodes(attempt: Attempt, record: dict[str, Any]) -> dict[str, Any]:
        nodes = attempt.nodes()
        processes = {
            name: info
            for node in nodes.values()
            for name, info in (node.get("processes") or {}).items()
        }
        return {**record, "processes": processes, "nodes": nodes}

    def stop(self, attempt: Attempt) -> None:
        """scancel, then wait until Slurm has ended every process of the job on every node."""
        job_id = attempt.record().get("slurm_job_id")
        if not job_id:
            raise UserError(f"run {attempt.run_name} has no Slurm job (it was never submitted)")
        info = slurm.lookup(str(job_id))
        if info is None or not info.active:
            return
        slurm.cancel(str(job_id))
        deadline = time.monotonic() + slurm.kill_wait_s() + STOP_EXTRA_S
        while (info := slurm.lookup(str(job_id))) is not None and info.active:
            if time.monotonic() > deadline:
                raise UserError(
                    f"slurm: job {job_id} is still {info.state} after scancel; "
                    f"check the nodes with: scontrol show job {job_id}"
                )
            time.sleep(POLL_S / 2)
        self.status(attempt)  # records the end: stopped, with Slurm's exit code
