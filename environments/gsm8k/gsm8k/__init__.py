"""GSM8K as a classic Verifiers environment: `environment.id = "gsm8k"`."""

from .env import load_environment

__all__ = ["load_environment"]
