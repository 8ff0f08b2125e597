"""Math with a Python tool, a multi-turn Verifiers environment: `environment.id = "math_python"`."""

from math_python.env import MathPythonEnv
from math_python.taskset import MathPythonTaskset

__all__ = ["MathPythonEnv", "MathPythonTaskset"]
