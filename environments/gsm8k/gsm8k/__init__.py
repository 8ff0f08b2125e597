"""GSM8K as a Verifiers environment: `environment.id = "gsm8k"`."""

from gsm8k.taskset import Gsm8kTaskset

__all__ = ["Gsm8kTaskset"]
