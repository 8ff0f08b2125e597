"""GSM8K: a word problem in, a number in \\boxed{} out; exact numeric match is the reward.

A classic Verifiers `SingleTurnEnv`. `dataset = "fixture"` uses the six rows shipped in
`fixture.json` (tests, offline runs; they are also the eval split); the default reads
`openai/gsm8k` from the hub with `datasets` (train split to train, test split to
evaluate). Rewards: `correct_answer` (1.0) + `boxed_format` (0.2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import verifiers as vf
from datasets import Dataset

SYSTEM_PROMPT = (
    "Solve the problem step by step. End with the final answer as a number in \\boxed{}."
)
FIXTURE = Path(__file__).with_name("fixture.json")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def reply_text(completion: Any) -> str:
    """The last assistant message's text."""
    if isinstance(completion, str):
        return completion
    for m in reversed(completion or []):
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        if role == "assistant":
            content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
            return content if isinstance(content, str) else ""
    return ""


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
    if "\\boxed{" not in reply:
        return None
    boxed = vf.extract_boxed_answer(reply)
    return parse_number(boxed) if boxed else None


def correct_answer(completion: Any, answer: str) -> float:
    got, want = final_answer(reply_text(completion)), parse_number(str(answer))
    return float(got is not None and want is not None and abs(got - want) < 1e-6)


def boxed_format(completion: Any) -> float:
    return float(final_answer(reply_text(completion)) is not None)


def _hub_rows(dataset: str, split: str) -> list[dict[str, str]]:
    from datasets import load_dataset

    rows = load_dataset(dataset, "main", split=split)
    # GSM8K answers end with "#### <number>"
    return [
        {"question": r["question"], "answer": r["answer"].split("####")[-1].strip()} for r in rows
    ]


def load_environment(
    dataset: str = "openai/gsm8k",
    split: str = "train",
    eval_split: str = "test",
    num_examples: int | None = None,
    num_eval_examples: int | None = None,
    system_prompt: str = SYSTEM_PROMPT,
) -> vf.Environment:
    """`dataset`: a hub id or "fixture"; `num_examples` / `num_eval_examples`: use the first N
    rows of each split (all when unset or -1)."""
    if dataset == "fixture":
        train = evals = json.loads(FIXTURE.read_text())
    else:
        train, evals = _hub_rows(dataset, split), _hub_rows(dataset, eval_split)
    if num_examples and num_examples > 0:
        train = train[:num_examples]
    if num_eval_examples and num_eval_examples > 0:
        evals = evals[:num_eval_examples]
    rubric = vf.Rubric(funcs=[correct_answer, boxed_format], weights=[1.0, 0.2])
    return vf.SingleTurnEnv(
        dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(evals),
        system_prompt=system_prompt,
        rubric=rubric,
    )
