"""Continuation quality as a Verifiers environment: `environment.id = "continuation_quality"`."""

from continuation_quality.taskset import ContinuationQualityTaskset

__all__ = ["ContinuationQualityTaskset"]
