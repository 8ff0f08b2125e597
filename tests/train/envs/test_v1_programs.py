"""A v1 harness program runs on the trainer's Python: offline, nothing written to $HOME.

verifiers.v1 would install uv (pip --user, else curl from astral.sh) and resolve the
program's PEP 723 dependencies from the network; these tests run the real runtime with
vft's replacement and check what it runs, and that an unmet dependency is one line.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from vft.train.envs.v1_programs import declared, program_file, run_programs_here, unmet

PROGRAM = """\
# /// script
# requires-python = ">=3.11"
# dependencies = ["httpx", "tenacity>=1"]
# ///
import httpx, tenacity
print("ran", httpx.__name__, tenacity.__name__)
"""


def test_declared_reads_the_pep723_block():
    assert declared(PROGRAM) == {
        "requires-python": ">=3.11",
        "dependencies": ["httpx", "tenacity>=1"],
    }
    assert declared("print('no block')\n") == {}


def test_unmet_names_each_missing_or_mismatched_requirement():
    assert unmet(PROGRAM) == []
    text = PROGRAM.replace('"tenacity>=1"', '"tenacity>=999", "no-such-dist-vft"')
    missing = unmet(text)
    assert missing[0].startswith("tenacity>=999 (installed: ")
    assert missing[1] == "no-such-dist-vft"
    assert unmet(PROGRAM.replace(">=3.11", ">=9.0"))[0].startswith("python>=9.0 (this is 3.")
    # a marker that does not apply here is not a requirement here
    assert unmet(PROGRAM.replace('"httpx"', "\"no-such-dist-vft; python_version < '3'\"")) == []


def test_program_file_is_named_by_content_and_written_once(tmp_path):
    first = program_file(tmp_path, b"print(1)\n")
    assert first.read_bytes() == b"print(1)\n" and first.parent == tmp_path
    mtime = first.stat().st_mtime_ns
    assert program_file(tmp_path, b"print(1)\n") == first
    assert first.stat().st_mtime_ns == mtime
    assert program_file(tmp_path, b"print(2)\n") != first


def test_the_local_runtime_runs_a_program_on_this_python(tmp_path, monkeypatch):
    pytest.importorskip("verifiers.v1")
    from verifiers.v1.runtimes import SubprocessConfig, SubprocessRuntime

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(SubprocessRuntime, "scripts_dir", str(tmp_path / "scripts"))
    run_programs_here()
    run_programs_here()  # idempotent

    async def go():
        runtime = SubprocessRuntime(SubprocessConfig(), name="vft-test")
        argv = await runtime.prepare_uv_script(PROGRAM)
        await runtime.start()
        try:
            result = await runtime.run(argv, {})
            with pytest.raises(RuntimeError) as err:
                await runtime.prepare_uv_script(PROGRAM.replace('"httpx"', '"no-such-dist-vft"'))
            return argv, result, str(err.value)
        finally:
            await runtime.stop()

    argv, result, error = asyncio.run(go())
    assert argv[0] == sys.executable and Path(argv[1]).parent == tmp_path / "scripts"
    assert result.exit_code == 0 and "ran httpx tenacity" in result.stdout
    assert "no-such-dist-vft" in error and "\n" not in error and "pip install" in error
    assert not (tmp_path / "home" / ".local").exists()  # no uv was installed
