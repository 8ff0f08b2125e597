"""A mistake on the command line is one line and exit code 2, as every other mistake is:
click's own four-line usage block (Usage, Try, blank, Error) is not what vft prints."""

from __future__ import annotations

import json

import pytest

from vft.testing import run_vft


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["plan", "r.toml", "--sett", "x=1"],
            "vft: error: No such option '--sett'. Did you mean '--set'? (see `vft plan --help`)",
        ),
        (
            ["run", "--dryrun"],
            "vft: error: No such option '--dryrun'. Did you mean '--dry-run'? "
            "(see `vft run --help`)",
        ),
        (["plann"], "vft: error: No such command 'plann'. Did you mean 'plan'? (see `vft --help`)"),
        (["plan"], "vft: error: Missing argument 'RECIPE'. (see `vft plan --help`)"),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_2(args: list[str], line: str, tmp_path) -> None:
    out = run_vft(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [line]
    assert out.stdout == ""


def test_an_example_named_outside_the_checkout_points_at_the_shipped_copy(tmp_path) -> None:
    """`vft --help`'s examples name examples/recipes/...: from any other folder (a wheel
    install) the one line says where vft's own copy is, and that path plans."""
    out = run_vft("plan", "examples/recipes/gsm8k.toml", cwd=tmp_path)
    assert out.returncode == 2
    line = out.stderr.strip()
    assert line.startswith("vft: error: recipe file 'examples/recipes/gsm8k.toml' does not exist")
    assert "name it alone ('gsm8k') to use vft's copy, " in line
    shipped = line.split("to use vft's copy, ", 1)[1].rstrip(")")
    assert run_vft("plan", shipped, "--json", cwd=tmp_path).returncode == 0
    assert "vft ships" not in run_vft("plan", "nope.toml", cwd=tmp_path).stderr


def test_an_examples_bare_name_is_vfts_copy_run_from_here(tmp_path) -> None:
    """`vft plan gsm8k` from any folder plans vft's example; its processes (and the
    outputs of a run) start in the current folder, as the smoke run without a RECIPE does.
    A file of that name here wins."""
    out = run_vft("plan", "gsm8k", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["name"] == "gsm8k-qwen3-0.6b" and plan["run"]["workdir"] == str(tmp_path)
    assert json.loads(run_vft("plan", "smoke.toml", "--json", cwd=tmp_path).stdout)["name"]
    here = run_vft("plan", "./gsm8k.toml", cwd=tmp_path)  # a file here, by its own words
    assert here.returncode == 2 and "Traceback" not in here.stderr
    assert here.stderr.startswith("vft: error: recipe file 'gsm8k.toml' does not exist")
    assert "name it alone ('gsm8k') to use vft's copy" in here.stderr
    (tmp_path / "gsm8k").write_text(
        'name = "mine"\n[model]\nname = "Qwen/Qwen3-0.6B"\n'
        '[environment]\nid = "gsm8k"\n[resources]\ngpus = "A100-80GB:2"\n'
    )
    mine = run_vft("plan", "gsm8k", "--json", cwd=tmp_path)
    assert mine.returncode == 0, mine.stderr
    assert json.loads(mine.stdout)["name"] == "mine"
    # `smoke` beside an edited smoke.toml is that file, never vft's copy
    (tmp_path / "gsm8k").rename(tmp_path / "smoke.toml")
    edited = run_vft("plan", "smoke", "--json", cwd=tmp_path)
    assert edited.returncode == 0 and json.loads(edited.stdout)["name"] == "mine"
    # an example that names files of its own (custom-script's script) only by its path
    out = run_vft("plan", "custom-script", cwd=tmp_path)
    assert out.returncode == 2 and "name it alone" not in out.stderr
    assert "vft ships the example 'custom-script', which names files beside it" in out.stderr
    assert "give its path, " in out.stderr


@pytest.mark.parametrize("args", [(), ("outputs",)], ids=["vft", "vft outputs"])
def test_a_group_without_its_command_shows_its_help_not_an_error(tmp_path, args):
    out = run_vft(*args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"Usage: vft {' '.join(args)}".rstrip() + " [OPTIONS] COMMAND")
    assert "error" not in out.stderr.splitlines()[0] and "Commands:" in out.stderr
