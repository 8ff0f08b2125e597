"""Continuation quality as a Verifiers environment: `environment.id = "continuation_quality"`."""

from .taskset import ContinuationQualityTaskset

__all__ = ["ContinuationQualityTaskset"]
