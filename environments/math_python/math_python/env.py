"""Math problems solved with a Python tool: a classic Verifiers `MultiTurnEnv`.

A reply with a ```python block is a tool call: the environment runs it in an isolated
interpreter (`tool.py`) and the output is the next user turn. A reply without one is
the final answer, checked with math-verify (`correct_answer`, weight 1.0). The tool
protocol is plain text, so any chat model can use it (no tool-call parser needed).
Metric: `tool_calls` (code blocks run).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import verifiers as vf
from datasets import Dataset

from .tool import run_python

FIXTURE = Path(__file__).with_name("fixture.json")
CODE = re.compile(r"```(?:python|py)\s*\n(.*?)```", re.DOTALL)
SYSTEM_PROMPT = (
    "Solve the problem. You may run Python: write one ```python code block per reply and "
    "you will get its output. When you are done, reply without code and give the final "
    "answer in \\boxed{}."
)


def code_block(reply: str) -> str | None:
    m = CODE.search(reply or "")
    return m.group(1) if m else None


def _assistant_texts(completion: Any) -> list[str]:
    out = []
    for m in completion or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role == "assistant":
            out.append(content if isinstance(content, str) else "")
    return out


def correct_answer(completion: Any, answer: str) -> float:
    replies = _assistant_texts(completion)
    if not replies:
        return 0.0
    from math_verify import parse, verify

    reply = replies[-1]
    if "\\boxed{" not in reply:
        return 0.0
    try:
        return float(verify(parse(f"${answer}$"), parse(reply)))
    except Exception:  # math-verify gives up on some inputs: no credit
        return 0.0


def tool_calls(completion: Any) -> float:
    return float(sum(code_block(r) is not None for r in _assistant_texts(completion)))


class MathPythonEnv(vf.MultiTurnEnv):
    def __init__(self, code_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.code_timeout_s = code_timeout_s

    @vf.stop
    async def answered(self, state: vf.State) -> bool:
        """A reply without code is the final answer."""
        if not state["trajectory"]:
            return False
        replies = _assistant_texts(state["trajectory"][-1]["completion"])
        return bool(replies) and code_block(replies[-1]) is None

    async def env_response(
        self, messages: vf.Messages, state: vf.State, **kwargs: Any
    ) -> vf.Messages:
        replies = _assistant_texts(messages)
        code = code_block(replies[-1]) if replies else None
        output = await asyncio.to_thread(run_python, code or "", self.code_timeout_s)
        return [vf.UserMessage(content=f"Output:\n{output}")]


def load_environment(
    dataset: str = "fixture",
    split: str = "train",
    num_examples: int | None = None,
    num_eval_examples: int | None = None,
    max_turns: int = 5,
    code_timeout_s: float = 10.0,
) -> vf.Environment:
    """`dataset`: "fixture" (the problems shipped here; also the eval split) or a hub
    dataset with `question`/`answer` columns."""
    if dataset == "fixture":
        rows = json.loads(FIXTURE.read_text())
        evals = list(rows)
    else:
        from datasets import load_dataset

        hub = load_dataset(dataset, split=split)
        rows = [{"question": r["question"], "answer": str(r["answer"])} for r in hub]
        evals = []
    rows = rows[:num_examples] if num_examples and num_examples > 0 else rows
    evals = evals[:num_eval_examples] if num_eval_examples and num_eval_examples > 0 else evals
    rubric = vf.Rubric(funcs=[correct_answer, tool_calls], weights=[1.0, 0.0])
    return MathPythonEnv(
        dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(evals) if evals else None,
        system_prompt=SYSTEM_PROMPT,
        rubric=rubric,
        max_turns=max_turns,
        code_timeout_s=code_timeout_s,
    )
