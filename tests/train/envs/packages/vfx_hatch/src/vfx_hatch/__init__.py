"""Echo the word: a classic SingleTurnEnv, packaged with hatchling (src layout).

Rewards: `echoed` (1.0, the reply contains the word), `brevity` (0.5, shorter is better).
"""

import verifiers as vf
from datasets import Dataset

WORDS = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"]


def _text(completion) -> str:
    m = completion[-1]
    return (m["content"] if isinstance(m, dict) else m.content) or ""


def echoed(completion, answer) -> float:
    return float(answer in _text(completion))


def brevity(completion) -> float:
    return 1.0 / (1 + len(_text(completion)))


def load_environment(num_examples: int = 8):
    rows = [{"question": f"Say {w}", "answer": w} for w in (WORDS * 4)[:num_examples]]
    return vf.SingleTurnEnv(
        dataset=Dataset.from_list(rows),
        rubric=vf.Rubric(funcs=[echoed, brevity], weights=[1.0, 0.5]),
    )
