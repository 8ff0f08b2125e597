"""Reverse text as a Verifiers environment: `environment.id = "reverse_text"`."""

from .taskset import ReverseTextTaskset

__all__ = ["ReverseTextTaskset"]
