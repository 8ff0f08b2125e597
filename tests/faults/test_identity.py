"""Identity before signals: a recycled pid is never signalled; two runs started together
never choose the same port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from click.testing import CliRunner

from tests import reliability
from vft.backends.local.backend import LocalBackend
from vft.testing import TOKEN_VAR, free_port


def cli(*args: str, output_dir):
    from vft.cli import cli as vft_cli

    return CliRunner().invoke(
        vft_cli, [*args, "--output-dir", str(output_dir)], catch_exceptions=False
    )


def test_a_pid_whose_start_time_does_not_match_is_never_signalled(
    make_plan, new_attempt, no_leftovers, output_dir
):
    """A record naming a pid that is now some other process (here: the test's own `sleep`)
    with a wrong start time, or none: neither `vft stop` nor a status touches it."""
    bystander = subprocess.Popen(
        ["sleep", "60"], start_new_session=True, env={**os.environ, TOKEN_VAR: no_leftovers}
    )
    try:
        for name, created in (("missing", None), ("wrong", time.time() - 3600)):
            attempt = new_attempt(make_plan(name=name))
            attempt.update(
                status="running", supervisor_pid=bystander.pid, supervisor_create_time=created
            )
            info = {"pid": bystander.pid, "pgid": bystander.pid, "create_time": created}
            attempt.write_node(0, {"rank": 0, "processes": {"trainer": {**info, "role": "t"}}})
            assert LocalBackend().status(attempt)["status"] == "lost"
            cli("stop", name, output_dir=output_dir)
            LocalBackend().stop(attempt)  # the backend itself, whatever the CLI decides
            time.sleep(0.2)
            alive = bystander.poll() is None
            reliability.case(records_lost=0 if alive else 1)
            assert alive, f"a pid recorded with a {name} start time was signalled"
    finally:
        bystander.kill()
        bystander.wait()


CHOOSER = """
import json, sys, time
from vft.backends.local.backend import LocalBackend
from vft.core.plan import Ports
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # all choose at the same moment
p = int(sys.argv[1])
chosen = LocalBackend().choose_ports(Ports(p, p + 1, p + 2, 13345, 29400))
print(json.dumps(chosen.as_dict()), flush=True)
sys.stdin.read()  # a run holds its ports while it lives
"""


def test_runs_started_together_choose_different_ports(tmp_path):
    base = free_port()
    start = time.time() + 1.5  # past every chooser's start-up
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    choosers = [
        subprocess.Popen(
            [sys.executable, "-c", CHOOSER, str(base), repr(start)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    try:
        chosen = [json.loads(c.stdout.readline()) for c in choosers]
    finally:
        for c in choosers:
            c.stdin.close()
            c.wait(timeout=10)
    bound = [(c["inference"], c["weight_sync"], c["rendezvous"]) for c in chosen]
    ports = [p for triple in bound for p in triple]
    reliability.case()
    assert len(set(ports)) == len(ports), f"two runs chose the same port: {bound}"
    assert base in [b[0] for b in bound]  # the first keeps what it asked for
    # once their owners have ended, the ports are free to choose again
    again = subprocess.run(
        [sys.executable, "-c", CHOOSER, str(base), "0"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert json.loads(again.stdout)["inference"] == base
