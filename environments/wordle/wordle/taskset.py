"""Wordle tasks (a secret word each) and their rewards, computed from the transcript."""

from __future__ import annotations

import json
import random
from pathlib import Path

import verifiers.v1 as vf

from wordle.game import MAX_GUESSES, parse_guess

WORDS = Path(__file__).with_name("words.json")
RULES = (
    "Let's play Wordle. Guess the secret five-letter English word in at most "
    f"{MAX_GUESSES} guesses. After each guess you get one mark per letter: G (right letter, "
    "right place), Y (in the word, elsewhere), X (not in the word). Think briefly, then "
    "give your guess as a five-letter word in square brackets, e.g. [crane]."
)


def guesses(trace: vf.Trace) -> list[str | None]:
    return [parse_guess(m.content or "") for m in trace.assistant_messages]


class WordleData(vf.TaskData):
    secret: str


class WordleTask(vf.Task[WordleData]):
    @vf.reward(weight=1.0)
    async def solved(self, trace: vf.Trace) -> float:
        return float(self.data.secret in guesses(trace))

    @vf.reward(weight=0.5)
    async def few_guesses(self, trace: vf.Trace) -> float:
        """1 for a first-guess win, down to 1/6 for a sixth-guess win; 0 unsolved."""
        g = guesses(trace)
        if self.data.secret not in g:
            return 0.0
        return (MAX_GUESSES - g.index(self.data.secret)) / MAX_GUESSES

    @vf.reward(weight=0.2)
    async def valid_format(self, trace: vf.Trace) -> float:
        g = guesses(trace)
        return sum(x is not None for x in g) / len(g) if g else 0.0


class WordleConfig(vf.TasksetConfig):
    num_examples: int = 40
    seed: int = 0


class WordleTaskset(vf.Taskset[WordleTask, WordleConfig]):
    def load(self) -> list[WordleTask]:
        c = self.config
        words = json.loads(WORDS.read_text())
        rng = random.Random(c.seed)
        picks = [rng.choice(words) for _ in range(c.num_examples)]
        return [
            WordleTask(WordleData(prompt=RULES, secret=w, name=f"wordle-{i}"), c.task)
            for i, w in enumerate(picks)
        ]
