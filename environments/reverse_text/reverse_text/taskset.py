"""Reverse a text character by character; the reward is the similarity to the exact reverse.

The similarity (difflib's ratio, 0..1) gives partial credit, so small models get a
gradient long before they reverse whole sentences. Texts are built in code from a fixed
word list and seed: no download.
"""

from __future__ import annotations

import difflib
import random
import re

import verifiers.v1 as vf

SYSTEM_PROMPT = (
    "Reverse the text the user gives you, character by character. "
    "Put only the reversed text between <reversed> and </reversed>."
)
WORDS = [
    "river",
    "stone",
    "light",
    "garden",
    "window",
    "orange",
    "quiet",
    "paper",
    "morning",
    "silver",
    "forest",
    "little",
    "yellow",
    "bridge",
    "candle",
    "winter",
    "music",
    "open",
    "table",
    "green",
    "cloud",
    "simple",
    "north",
    "market",
    "travel",
    "people",
    "summer",
    "ocean",
    "pencil",
    "coffee",
]
TAG = re.compile(r"<reversed>(.*?)</reversed>", re.DOTALL)


def extract(reply: str) -> str:
    """The text inside <reversed>...</reversed>, or the whole reply without tags."""
    m = TAG.search(reply)
    return (m.group(1) if m else reply).strip()


def similarity(reply: str, text: str) -> float:
    return difflib.SequenceMatcher(None, extract(reply), text[::-1]).ratio()


class ReverseTextData(vf.TaskData):
    text: str
    """The text to reverse."""


class ReverseTextTask(vf.Task[ReverseTextData]):
    @vf.reward(weight=1.0)
    async def reversed_similarity(self, trace: vf.Trace) -> float:
        return similarity(trace.last_reply, self.data.text)

    @vf.metric
    async def uses_tags(self, trace: vf.Trace) -> float:
        return float(TAG.search(trace.last_reply) is not None)


class ReverseTextConfig(vf.TasksetConfig):
    num_examples: int = 200
    min_words: int = 2
    max_words: int = 6
    seed: int = 0


class ReverseTextTaskset(vf.Taskset[ReverseTextTask, ReverseTextConfig]):
    def load(self) -> list[ReverseTextTask]:
        c = self.config
        rng = random.Random(c.seed)
        tasks = []
        for _ in range(c.num_examples):
            text = " ".join(rng.choices(WORDS, k=rng.randint(c.min_words, c.max_words)))
            tasks.append(
                ReverseTextTask(
                    ReverseTextData(prompt=text, system_prompt=SYSTEM_PROMPT, text=text), c.task
                )
            )
        return tasks
