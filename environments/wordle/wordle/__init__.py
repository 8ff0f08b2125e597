"""Wordle as a classic multi-turn Verifiers environment: `environment.id = "wordle"`."""

from .env import WordleEnv, load_environment

__all__ = ["WordleEnv", "load_environment"]
