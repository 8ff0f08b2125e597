"""Guess a number from 1 to 9: a classic MultiTurnEnv; the environment says higher/lower.

Every answer the environment gives appends a line to `$VFX_MARKERS/vfx_guess.log`, so a
test can tell that its turn loop ran. Each turn is capped at 4 tokens. Rewards: `solved` (1.0), `efficiency` (0.5).
"""

import os
import re

import verifiers as vf
from datasets import Dataset

DIGIT = re.compile(r"[1-9]")


def _mark(line: str) -> None:
    folder = os.environ.get("VFX_MARKERS")
    if folder:
        with open(os.path.join(folder, "vfx_guess.log"), "a") as f:
            f.write(line + "\n")


def _guesses(messages) -> list[int | None]:
    out = []
    for m in messages:
        role = m["role"] if isinstance(m, dict) else m.role
        if role == "assistant":
            text = (m["content"] if isinstance(m, dict) else m.content) or ""
            d = DIGIT.search(text)
            out.append(int(d.group()) if d else None)
    return out


class GuessEnv(vf.MultiTurnEnv):
    async def env_response(self, messages, state, **kwargs):
        guess = _guesses(messages)[-1]
        target = int(state["answer"])
        _mark(f"guess={guess} target={target}")
        if guess == target:
            state["final_env_response"] = [vf.UserMessage(content="correct")]
            return state["final_env_response"]
        if guess is None:
            return [vf.UserMessage(content="say one digit")]
        return [vf.UserMessage(content="higher" if guess < target else "lower")]


def solved(completion, answer) -> float:
    return float(int(answer) in _guesses(completion))


def efficiency(completion) -> float:
    return 1.0 / max(1, len(_guesses(completion)))


def load_environment(num_examples: int = 8, max_turns: int = 3):
    rows = [
        {"question": "guess my digit", "answer": str(1 + (7 * i) % 9)} for i in range(num_examples)
    ]
    return GuessEnv(
        dataset=Dataset.from_list(rows),
        system_prompt="Guess the secret digit (1-9). Reply with one digit.",
        rubric=vf.Rubric(funcs=[solved, efficiency], weights=[1.0, 0.5]),
        max_turns=max_turns,
        sampling_args={"max_tokens": 4},  # a short answer per turn: several turns fit an episode
    )
