"""The Python tool: run a snippet in a separate, isolated interpreter with a time limit.

`python -I` ignores the environment and user site; the snippet gets a scratch folder
as its working directory and no stdin. Output is cut to keep turns short.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

MAX_OUTPUT = 2000


def run_python(code: str, timeout_s: float = 10.0) -> str:
    with tempfile.TemporaryDirectory(prefix="vft-math-python-") as scratch:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", code],
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return f"Error: the code ran longer than {timeout_s:g} s and was stopped."
    out = done.stdout + (f"\n{done.stderr}" if done.returncode else "")
    out = out.strip() or "(no output; print() what you want to see)"
    return out if len(out) <= MAX_OUTPUT else out[:MAX_OUTPUT] + "\n... (output cut)"
