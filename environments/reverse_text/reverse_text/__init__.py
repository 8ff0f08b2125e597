"""Reverse text as a Verifiers environment: `environment.id = "reverse_text"`."""

from reverse_text.taskset import ReverseTextTaskset

__all__ = ["ReverseTextTaskset"]
