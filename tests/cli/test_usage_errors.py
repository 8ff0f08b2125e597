"""A mistake on the command line is one line and exit code 2, as every other mistake is:
click's own four-line usage block (Usage, Try, blank, Error) is not what vft prints."""

from __future__ import annotations

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
