"""`vft_smoke`: the built-in environment of the CPU smoke run, a Verifiers taskset.

Each task names a class of characters ("Reply using only uppercase letters.", "... only
digits."); the reward is the fraction of the reply's characters in that class. A
random-weight model with the character-level `vft-tiny` tokenizer scores about 0.2 and
varies within every group of generations, so GRPO has a gradient from the first step; a
few dozen steps visibly raise the reward (one class alone: faster; both: the model must
also read the prompt).
"""

from __future__ import annotations

import random
import string
from typing import Literal

import verifiers.v1 as vf

SYSTEM_PROMPT = "You are a terse assistant. Follow the format exactly."

CharClass = Literal["uppercase letters", "lowercase letters", "digits"]
CLASSES: dict[str, str] = {
    "uppercase letters": string.ascii_uppercase,
    "lowercase letters": string.ascii_lowercase,
    "digits": string.digits,
}


class SmokeData(vf.TaskData):
    char_class: CharClass
    """The class of characters a good reply is made of (a key of `CLASSES`)."""


class SmokeTask(vf.Task[SmokeData]):
    @vf.reward(weight=1.0)
    async def class_fraction(self, trace: vf.Trace) -> float:
        return class_score(trace.last_reply, CLASSES[self.data.char_class])


def class_score(reply: str, chars: str) -> float:
    """Fraction of the reply's characters (spaces included) that are among `chars`."""
    if not reply:
        return 0.0
    return sum(c in chars for c in reply) / len(reply)


class SmokeConfig(vf.TasksetConfig):
    num_examples: int = 64
    """How many tasks to build (deterministically, from `seed`)."""
    seed: int = 0
    """Shuffles the order of the tasks."""
    classes: list[CharClass] = ["uppercase letters", "digits"]
    """The character classes asked for, in equal shares (round-robin, then shuffled)."""


class SmokeTaskset(vf.Taskset[SmokeTask, SmokeConfig]):
    def load(self) -> list[SmokeTask]:
        classes = list(self.config.classes)
        if not classes:
            raise ValueError("vft_smoke: `classes` names no character class")
        names = [classes[i % len(classes)] for i in range(self.config.num_examples)]
        random.Random(self.config.seed).shuffle(names)
        return [
            SmokeTask(
                SmokeData(
                    prompt=f"Reply using only {name}.",
                    system_prompt=SYSTEM_PROMPT,
                    char_class=name,
                ),
                self.config.task,
            )
            for name in names
        ]


__all__ = ["SmokeTaskset"]
