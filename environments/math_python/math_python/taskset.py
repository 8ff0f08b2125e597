"""Math problems solved with a Python tool; the reward is the final \\boxed{} answer."""

from __future__ import annotations

import json
from pathlib import Path

import verifiers.v1 as vf

from math_python.env import CODE

FIXTURE = Path(__file__).with_name("fixture.json")
SYSTEM_PROMPT = (
    "Solve the problem. You may run Python: write one ```python code block per reply and "
    "you will get its output. When you are done, reply without code and give the final "
    "answer in \\boxed{}."
)


class MathPythonData(vf.TaskData):
    answer: str


class MathPythonTask(vf.Task[MathPythonData]):
    @vf.reward(weight=1.0)
    async def correct_answer(self, trace: vf.Trace) -> float:
        return vf.verify_boxed_math_answer(trace.last_reply, self.data.answer)

    @vf.metric
    async def tool_calls(self, trace: vf.Trace) -> float:
        return float(sum(bool(CODE.search(m.content or "")) for m in trace.assistant_messages))


class MathPythonConfig(vf.TasksetConfig):
    dataset: str = "fixture"
    """"fixture" (the problems shipped here) or a hub dataset with question/answer columns."""
    split: str = "train"
    num_examples: int | None = None


class MathPythonTaskset(vf.Taskset[MathPythonTask, MathPythonConfig]):
    def load(self) -> list[MathPythonTask]:
        c = self.config
        if c.dataset == "fixture":
            rows = json.loads(FIXTURE.read_text())
        else:
            from datasets import load_dataset

            rows = list(load_dataset(c.dataset, split=c.split))
        rows = rows[: c.num_examples] if c.num_examples else rows
        return [
            MathPythonTask(
                MathPythonData(
                    prompt=r["question"], system_prompt=SYSTEM_PROMPT, answer=str(r["answer"])
                ),
                c.task,
            )
            for r in rows
        ]
