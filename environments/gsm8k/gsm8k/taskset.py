"""GSM8K: a word problem in, a number in \\boxed{} out; exact numeric match is the reward.

`dataset = "fixture"` uses the six rows shipped in `fixture.json` (tests, offline runs);
the default reads `openai/gsm8k` from the hub with `datasets` (the `hub` extra).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import verifiers.v1 as vf

SYSTEM_PROMPT = (
    "Solve the problem step by step. End with the final answer as a number in \\boxed{}."
)
FIXTURE = Path(__file__).with_name("fixture.json")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def parse_number(text: str) -> float | None:
    """The last number in `text` (commas and a leading $ ignored), or None."""
    found = NUMBER.findall(text.replace("$", ""))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def final_answer(reply: str) -> float | None:
    """The number in the reply's last \\boxed{...}; None when there is no box."""
    boxed = vf.extract_boxed_answer(reply, strict=True)
    return parse_number(boxed) if boxed else None


class Gsm8kData(vf.TaskData):
    answer: str
    """The reference answer (a number)."""


class Gsm8kTask(vf.Task[Gsm8kData]):
    @vf.reward(weight=1.0)
    async def correct_answer(self, trace: vf.Trace) -> float:
        got, want = final_answer(trace.last_reply), parse_number(self.data.answer)
        return float(got is not None and want is not None and abs(got - want) < 1e-6)

    @vf.reward(weight=0.2)
    async def boxed_format(self, trace: vf.Trace) -> float:
        return float(final_answer(trace.last_reply) is not None)


class Gsm8kConfig(vf.TasksetConfig):
    dataset: str = "openai/gsm8k"
    """Hub dataset id, or "fixture" for the rows shipped with the package."""
    split: str = "train"
    num_examples: int | None = None
    """Use only the first N rows (all when unset)."""


def _hub_rows(dataset: str, split: str) -> list[dict[str, str]]:
    from datasets import load_dataset

    rows = load_dataset(dataset, "main", split=split)
    # GSM8K answers end with "#### <number>"
    return [
        {"question": r["question"], "answer": r["answer"].split("####")[-1].strip()} for r in rows
    ]


class Gsm8kTaskset(vf.Taskset[Gsm8kTask, Gsm8kConfig]):
    def load(self) -> list[Gsm8kTask]:
        c = self.config
        if c.dataset == "fixture":
            rows = json.loads(FIXTURE.read_text())
        else:
            rows = _hub_rows(c.dataset, c.split)
        rows = rows[: c.num_examples] if c.num_examples else rows
        return [
            Gsm8kTask(
                Gsm8kData(prompt=r["question"], system_prompt=SYSTEM_PROMPT, answer=r["answer"]),
                c.task,
            )
            for r in rows
        ]
