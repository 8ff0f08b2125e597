"""`vft_smoke`: the built-in environment of the CPU smoke run, a Verifiers taskset.

Each task names a few letters; the reward is the fraction of the reply's characters
drawn from them. A random-weight model scores anywhere between 0 and 1, so every group
of generations has reward variance and GRPO has a gradient from the first step.
"""

from __future__ import annotations

import random
import string

import verifiers.v1 as vf

SYSTEM_PROMPT = "Reply with one short word."


class SmokeData(vf.TaskData):
    letters: str
    """The letters a good reply is made of."""


class SmokeTask(vf.Task[SmokeData]):
    @vf.reward(weight=1.0)
    async def letters_used(self, trace: vf.Trace) -> float:
        return letter_score(trace.last_reply, self.data.letters)


def letter_score(reply: str, letters: str) -> float:
    """Fraction of the reply's non-space characters that are among `letters`."""
    chars = [c for c in reply.lower() if not c.isspace()]
    if not chars:
        return 0.0
    return sum(c in letters for c in chars) / len(chars)


class SmokeConfig(vf.TasksetConfig):
    num_examples: int = 64
    """How many tasks to build (deterministically, from `seed`)."""
    seed: int = 0


class SmokeTaskset(vf.Taskset[SmokeTask, SmokeConfig]):
    def load(self) -> list[SmokeTask]:
        rng = random.Random(self.config.seed)
        tasks = []
        for _ in range(self.config.num_examples):
            letters = "".join(sorted(rng.sample(string.ascii_lowercase, 6)))
            data = SmokeData(
                prompt=f"Write a word using only these letters: {' '.join(letters)}",
                system_prompt=SYSTEM_PROMPT,
                letters=letters,
            )
            tasks.append(SmokeTask(data, self.config.task))
        return tasks


__all__ = ["SmokeTaskset"]
