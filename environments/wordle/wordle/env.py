"""Wordle, a classic Verifiers `MultiTurnEnv`: the environment plays the user.

The model moves first (the rules are the prompt); each guess gets colour feedback as the
next user turn; the game ends at the right word or after six guesses. Rewards, from the
transcript: `solved` (1.0), `few_guesses` (0.5: 1 for a first-guess win down to 1/6 for
a sixth), `valid_format` (0.2: the share of replies with a [guess]).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import verifiers as vf
from datasets import Dataset

from .game import MAX_GUESSES, parse_guess, turn_message

WORDS = Path(__file__).with_name("words.json")
RULES = (
    "Let's play Wordle. Guess the secret five-letter English word in at most "
    f"{MAX_GUESSES} guesses. After each guess you get one mark per letter: G (right letter, "
    "right place), Y (in the word, elsewhere), X (not in the word). Think briefly, then "
    "give your guess as a five-letter word in square brackets, e.g. [crane]."
)


def _text(m: Any) -> str:
    content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
    return content if isinstance(content, str) else ""


def _role(m: Any) -> str | None:
    return m.get("role") if isinstance(m, dict) else getattr(m, "role", None)


def guesses(completion: Any) -> list[str | None]:
    return [parse_guess(_text(m)) for m in completion or [] if _role(m) == "assistant"]


def solved(completion: Any, answer: str) -> float:
    return float(answer in guesses(completion))


def few_guesses(completion: Any, answer: str) -> float:
    """1 for a first-guess win, down to 1/6 for a sixth-guess win; 0 unsolved."""
    g = guesses(completion)
    if answer not in g:
        return 0.0
    return (MAX_GUESSES - g.index(answer)) / MAX_GUESSES


def valid_format(completion: Any) -> float:
    g = guesses(completion)
    return sum(x is not None for x in g) / len(g) if g else 0.0


class WordleEnv(vf.MultiTurnEnv):
    async def env_response(
        self, messages: vf.Messages, state: vf.State, **kwargs: Any
    ) -> vf.Messages:
        secret = state["answer"]
        played = guesses(messages)
        guess = played[-1] if played else None
        if guess == secret:
            state["final_env_response"] = [
                vf.UserMessage(content=f"Correct, the word is {secret}!")
            ]
            return state["final_env_response"]
        remaining = MAX_GUESSES - len(played)
        reply = turn_message(guess, secret, remaining)
        if remaining <= 0:
            state["final_env_response"] = [
                vf.UserMessage(content=f"{reply} The word was {secret}.")
            ]
            return state["final_env_response"]
        return [vf.UserMessage(content=reply)]


def load_environment(
    num_examples: int = 40, num_eval_examples: int = 20, seed: int = 0
) -> vf.Environment:
    words = json.loads(WORDS.read_text())
    rng = random.Random(seed)
    train = [{"question": RULES, "answer": rng.choice(words)} for _ in range(num_examples)]
    evals = [{"question": RULES, "answer": rng.choice(words)} for _ in range(num_eval_examples)]
    rubric = vf.Rubric(funcs=[solved, few_guesses, valid_format], weights=[1.0, 0.5, 0.2])
    return WordleEnv(
        dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(evals) if evals else None,
        rubric=rubric,
        max_turns=MAX_GUESSES,
    )
