"""Add two numbers, answer in <think>/<answer> XML: a classic SingleTurnEnv.

Rewards: `correct_answer` (1.0), the parser's format reward (0.2), `short_reply` (0.1);
metric: `reply_chars` (weight 0). `explode=True` makes `correct_answer` raise on every
reply (for the error-path test).
"""

import verifiers as vf
from datasets import Dataset


def load_environment(num_examples: int = 16, explode: bool = False, format_weight: float = 0.2):
    rows = [
        {"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)}
        for i in range(num_examples)
    ]
    parser = vf.XMLParser(fields=["think", "answer"], answer_field="answer")

    def correct_answer(completion, answer, **kwargs) -> float:
        if explode:
            return 1 / 0
        return 1.0 if (parser.parse_answer(completion) or "").strip() == answer else 0.0

    def short_reply(completion) -> float:
        text = (
            completion[-1]["content"]
            if isinstance(completion[-1], dict)
            else completion[-1].content
        )
        return 1.0 if len(text or "") < 6 else 0.0

    def reply_chars(completion) -> float:
        text = (
            completion[-1]["content"]
            if isinstance(completion[-1], dict)
            else completion[-1].content
        )
        return float(len(text or ""))

    rubric = vf.Rubric(
        funcs=[correct_answer, parser.get_format_reward_func(), short_reply, reply_chars],
        weights=[1.0, format_weight, 0.1, 0.0],
        parser=parser,
    )
    return vf.SingleTurnEnv(
        dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows[:4]),
        system_prompt=f"Answer in this format:\n{parser.get_format_str()}",
        parser=parser,
        rubric=rubric,
    )
