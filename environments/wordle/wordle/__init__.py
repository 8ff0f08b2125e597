"""Wordle as a multi-turn Verifiers environment: `environment.id = "wordle"`."""

from wordle.game import WordleEnv
from wordle.taskset import WordleTaskset

__all__ = ["WordleEnv", "WordleTaskset"]
