"""Continue a passage; the reward scores the continuation on measurable qualities.

The tutorial's version asks an LLM judge. Offline, with no judge to call, the reward is
the product of three checks a judge would also make: a length in the asked range, fresh
wording (few repeated words), and no copying of the passage back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import verifiers.v1 as vf

SYSTEM_PROMPT = (
    "Continue the passage with the next two or three sentences. Write only the continuation."
)
FIXTURE = Path(__file__).with_name("fixture.json")
WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def length_score(n: int, lo: int, hi: int) -> float:
    """1 inside [lo, hi], falling linearly to 0 at no words or 2*hi."""
    if lo <= n <= hi:
        return 1.0
    if n < lo:
        return n / lo
    return max(0.0, 1 - (n - hi) / hi)


def distinct_score(ws: list[str]) -> float:
    return len(set(ws)) / len(ws) if ws else 0.0


def copy_penalty(reply: str, passage: str, n: int = 4) -> float:
    """Share of the reply's word 4-grams already in the passage (0: nothing copied)."""
    r, p = words(reply), words(passage)
    grams = {tuple(r[i : i + n]) for i in range(len(r) - n + 1)}
    if not grams:
        return 0.0
    seen = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    return len(grams & seen) / len(grams)


def quality(reply: str, passage: str, lo: int, hi: int) -> float:
    ws = words(reply)
    return length_score(len(ws), lo, hi) * distinct_score(ws) * (1 - copy_penalty(reply, passage))


class ContinuationData(vf.TaskData):
    passage: str


class ContinuationTaskConfig(vf.TaskConfig):
    min_words: int = 20
    max_words: int = 80


class ContinuationTask(vf.Task[ContinuationData, vf.State, ContinuationTaskConfig]):
    @vf.reward(weight=1.0)
    async def continuation_quality(self, trace: vf.Trace) -> float:
        c = self.config
        return quality(trace.last_reply, self.data.passage, c.min_words, c.max_words)


class ContinuationQualityConfig(vf.TasksetConfig):
    task: ContinuationTaskConfig = ContinuationTaskConfig()
    dataset: str = "fixture"
    """"fixture" (the passages shipped here) or a hub dataset with a `text` column."""
    num_examples: int | None = None


class ContinuationQualityTaskset(vf.Taskset[ContinuationTask, ContinuationQualityConfig]):
    def load(self) -> list[ContinuationTask]:
        c = self.config
        if c.dataset == "fixture":
            passages = json.loads(FIXTURE.read_text())
        else:
            from datasets import load_dataset

            passages = [r["text"] for r in load_dataset(c.dataset, split="train")]
        passages = passages[: c.num_examples] if c.num_examples else passages
        return [
            ContinuationTask(
                ContinuationData(prompt=p, system_prompt=SYSTEM_PROMPT, passage=p), c.task
            )
            for p in passages
        ]
