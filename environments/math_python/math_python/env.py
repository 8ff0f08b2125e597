"""The tool loop: code blocks in the model's reply are run, their output is the next turn.

A reply with a ```python block is a tool call; a reply without one is the final answer.
The loop ends at the answer or after `max_turns` model turns.
"""

from __future__ import annotations

import asyncio
import re

import verifiers.v1 as vf

from math_python.tool import run_python

CODE = re.compile(r"```(?:python|py)\s*\n(.*?)```", re.DOTALL)


def code_block(reply: str) -> str | None:
    m = CODE.search(reply)
    return m.group(1) if m else None


class MathPythonEnvConfig(vf.EnvConfig):
    solver: vf.AgentConfig = vf.AgentConfig()
    max_turns: int = 5
    code_timeout_s: float = 10.0


class MathPythonEnv(vf.Env[MathPythonEnvConfig]):
    async def run(self, task, agents) -> None:
        config = self.config
        async with agents.solver.interaction(task) as interaction:
            segment = await interaction.turn()
            turns = 1
            while not segment.terminated and turns < config.max_turns:
                code = code_block(segment.last_reply)
                if code is None:
                    break  # the final answer
                output = await asyncio.to_thread(run_python, code, config.code_timeout_s)
                segment = await interaction.turn(f"Output:\n{output}")
                turns += 1
