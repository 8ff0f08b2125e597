"""Math with a Python tool, a classic multi-turn Verifiers environment:
`environment.id = "math_python"`."""

from .env import MathPythonEnv, load_environment

__all__ = ["MathPythonEnv", "load_environment"]
