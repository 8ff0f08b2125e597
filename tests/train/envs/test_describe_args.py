"""`python -m vft.train.envs.describe` checks `environment.args` against the signature of
a classic environment's `load_environment()` before calling it: an unknown key is one line
naming `environment.args` (exit 2), as the planner says it, and so is a key a v1
taskset's config forbids; any other TypeError the environment raises is still reported
as the environment's own error (exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verifiers")

ROOT = Path(__file__).resolve().parents[3]

KWARGS_ENV = """
import verifiers as vf
from datasets import Dataset


def load_environment(num_examples: int = 2, **kwargs):
    if not isinstance(num_examples, int):
        raise TypeError("num_examples must be an int")
    rows = [{"question": "1 + 1?", "answer": "2"}] * num_examples
    rubric = vf.Rubric(funcs=[lambda completion, answer: 1.0], weights=[1.0])
    return vf.SingleTurnEnv(dataset=Dataset.from_list(rows), rubric=rubric)
"""


def describe(*argv: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = [str(path)] if path else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*extra, str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "vft.train.envs.describe", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_an_unknown_argument_is_named_before_the_environment_loads():
    done = describe("gsm8k", "--args", '{"foo": 1, "split": "train"}')
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().splitlines() == [
        "environment.args: 'gsm8k' does not accept 'foo' (accepted: dataset, split, "
        "eval_split, num_examples, num_eval_examples, system_prompt)"
    ]


def test_a_kwargs_signature_accepts_anything_and_other_type_errors_stay_the_environments(
    tmp_path,
):
    (tmp_path / "vfx_kwargs_env.py").write_text(KWARGS_ENV)
    ok = describe("vfx_kwargs_env", "--args", '{"anything": 1}', path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = describe("vfx_kwargs_env", "--args", '{"num_examples": "two"}', path=tmp_path)
    assert bad.returncode == 1
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith(
        "environment vfx_kwargs_env: TypeError: num_examples must be an int (at "
    ), line
    assert line.endswith("vfx_kwargs_env.py:8)")


def test_vft_envs_reports_an_unknown_listing_argument_as_its_error_line():
    """The list form (`describe ID1 ID2 ...`) gives the same line as the entry's error."""
    import json

    done = describe("gsm8k", "wordle", "--args", '{"gsm8k": {"foo": 1}}')
    assert done.returncode == 0, done.stderr
    gsm8k, wordle = json.loads(done.stdout)
    assert gsm8k == {
        "id": "gsm8k",
        "error": "environment.args: 'gsm8k' does not accept 'foo' (accepted: dataset, split, "
        "eval_split, num_examples, num_eval_examples, system_prompt)",
    }
    assert wordle["api"] == "legacy" and "error" not in wordle


def test_a_v1_taskset_refusing_an_unknown_key_is_the_same_one_line():
    """reverse_text (verifiers.v1): its taskset's pydantic config forbids extra keys; the
    answer names `environment.args` and the keys, not pydantic's multi-line report."""
    done = describe("reverse_text", "--args", '{"foo": 1, "zeta": 2}')
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.strip().splitlines() == [
        "environment.args: 'reverse_text' does not accept 'foo', 'zeta' (its taskset's "
        "config forbids keys it does not declare)"
    ]
    assert describe("reverse_text", "--args", "{}").returncode == 0
