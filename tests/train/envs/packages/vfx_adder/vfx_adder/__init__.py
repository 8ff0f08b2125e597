"""Add two numbers with a tool: a `verifiers.v1` taskset with a toolset.

Rewards: `correct` (1.0, the final <answer>), `used_tool` (0.5, runtime-dependent: it
reads the file the tool wrote in the rollout's runtime); metric: `tool_calls` (from the
state the tool server shares with the task).
"""

from .taskset import AdderTaskset

__all__ = ["AdderTaskset"]
