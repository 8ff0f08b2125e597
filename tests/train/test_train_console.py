"""The trainer's console lines (vft/train/console.py) and its start-up cuts: DeepSpeed's
compiled ops cached per environment and announced, the op one process never calls not
built, TRL kept from importing vLLM for a plan without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vft.core.plan import Plan
from vft.train import cpu_stack
from vft.train.console import PREFIX, Phases, marked, parse_ready, say

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "tests" / "fixtures" / "plans"


def test_marked_prefixes_every_line_printed_within_and_only_those(capsys):
    print("before")
    with marked():
        print("step 1/2 | reward 0.5")
        print("two\nlines", end="")
        print(" and the rest of the second")
        print(f"{PREFIX}already marked")
        print()
    print("after")
    assert capsys.readouterr().out.splitlines() == [
        "before",
        f"{PREFIX}step 1/2 | reward 0.5",
        f"{PREFIX}two",
        f"{PREFIX}lines and the rest of the second",
        f"{PREFIX}already marked",
        "",
        "after",
    ]


def test_only_the_main_process_speaks(capsys, monkeypatch):
    say("from rank 0")
    monkeypatch.setenv("RANK", "1")
    say("from rank 1")
    assert capsys.readouterr().out == f"{PREFIX}from rank 0\n"


def test_the_start_up_line_says_each_phase_and_reads_back(capsys):
    phases = Phases()
    phases.start("imports", "loading torch...")
    phases.start("model")
    line = phases.ready()
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{PREFIX}loading torch...", f"{PREFIX}{line}"]
    parsed = parse_ready(out[-1])
    assert parsed is not None and set(parsed) == {"total", "imports", "model"}
    assert parsed["total"] >= parsed["imports"] + parsed["model"] - 0.1
    assert parse_ready("step 1/2 | reward 0.5") is None


def test_compiled_ops_get_a_cache_per_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(cpu_stack.EXTENSIONS_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    here = cpu_stack.extensions_dir()
    assert here is not None and here.is_dir() and here.parent == tmp_path / "vft/torch_extensions"
    assert cpu_stack.extensions_dir() == here  # stable: the next run finds its ops
    monkeypatch.setattr(sys, "prefix", "/another/venv")
    assert cpu_stack.extensions_dir() != here  # another environment never rebuilds over it
    monkeypatch.setenv(cpu_stack.EXTENSIONS_VAR, str(tmp_path / "mine"))
    assert cpu_stack.extensions_dir() == tmp_path / "mine"  # the user's choice wins


def test_ops_to_build_names_what_is_not_cached(tmp_path):
    kw = {"cpu": True, "deepspeed": True, "offload": False, "root": tmp_path}
    assert cpu_stack.ops_to_build(world_size=1, **kw) == []  # one process: skipped
    assert cpu_stack.ops_to_build(world_size=2, **kw) == [cpu_stack.SHM_OP]
    name = cpu_stack.SHM_OP[0]
    (tmp_path / name).mkdir()
    (tmp_path / name / f"{name}.so").write_bytes(b"\x7fELF")
    assert cpu_stack.ops_to_build(world_size=2, **kw) == []  # built by an earlier run
    kw |= {"offload": True}
    assert cpu_stack.ops_to_build(world_size=2, **kw) == [cpu_stack.ADAM_OP]
    assert cpu_stack.ops_to_build(world_size=2, **(kw | {"deepspeed": False})) == []


def test_a_coming_compile_is_announced_as_a_phase_line(tmp_path, monkeypatch, capsys):
    from vft.train.main import prepare_deepspeed

    plan = Plan.from_json((PLANS / "smoke-local.json").read_text())
    assert plan.is_cpu and plan.trainer.zero_stage == 3
    monkeypatch.setenv(cpu_stack.EXTENSIONS_VAR, str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")  # two processes: the op is built, and said so
    prepare_deepspeed(plan)
    line = capsys.readouterr().out.strip()
    assert line == (
        f"{PREFIX}compiling DeepSpeed's CPU communication op, first run only, ~1-2 min; "
        f"cached in {tmp_path}..."
    )
    name = cpu_stack.SHM_OP[0]
    (tmp_path / name).mkdir()
    (tmp_path / name / f"{name}.so").write_bytes(b"\x7fELF")
    prepare_deepspeed(plan)
    assert capsys.readouterr().out == ""


PROBE = """
import json, sys
from vft.train import cpu_stack
from vft.train.main import without_vllm
report = {"two": cpu_stack.skip_unused_shm_op(2)}
ds = sys.modules.get("deepspeed.comm.torch")
report["untouched"] = ds is None or ds.build_shm_op.__module__ == "deepspeed.comm.torch"
report["one"] = cpu_stack.skip_unused_shm_op(1)
report["built"] = sys.modules["deepspeed.comm.torch"].build_shm_op()
report["without_vllm"] = without_vllm()
from trl import GRPOTrainer
report["vllm_imported"] = "vllm" in sys.modules
print(json.dumps(report))
"""


@pytest.mark.slow
def test_one_process_builds_no_shm_op_and_trl_skips_vllm():
    """In a fresh interpreter: what the trainer does before DeepSpeed and TRL start."""
    pytest.importorskip("deepspeed")
    pytest.importorskip("trl")
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "two": False,
        "untouched": True,
        "one": True,
        "built": None,
        "without_vllm": True,
        "vllm_imported": False,
    }
