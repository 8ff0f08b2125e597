"""The Wordle game: feedback for a guess, and the environment's turn loop.

The environment plays the user: the model moves first (the rules are the prompt), each
guess gets feedback as the next user turn, and the exchange ends when the word is found
or the guesses run out. Scoring replays the transcript (see `taskset.py`), so a
finished conversation can be scored anywhere, by anyone.
"""

from __future__ import annotations

import re

import verifiers.v1 as vf

MAX_GUESSES = 6
GUESS = re.compile(r"\[\s*([a-zA-Z]{5})\s*\]")


def parse_guess(reply: str) -> str | None:
    """The first [xxxxx] in the reply, lowercased; None when there is none."""
    m = GUESS.search(reply)
    return m.group(1).lower() if m else None


def feedback(guess: str, secret: str) -> str:
    """G (right place), Y (in the word elsewhere), X (not in the word), duplicates counted."""
    marks = ["X"] * 5
    left: dict[str, int] = {}
    for i, (g, s) in enumerate(zip(guess, secret, strict=True)):
        if g == s:
            marks[i] = "G"
        else:
            left[s] = left.get(s, 0) + 1
    for i, g in enumerate(guess):
        if marks[i] == "X" and left.get(g, 0) > 0:
            marks[i] = "Y"
            left[g] -= 1
    return "".join(marks)


def turn_message(guess: str | None, secret: str, remaining: int) -> str:
    if guess is None:
        return f"No valid guess found. Reply with a five-letter word in brackets, like [crane]. {remaining} guesses left."
    return f"{guess.upper()}: {' '.join(feedback(guess, secret))}. {remaining} guesses left."


class WordleEnvConfig(vf.EnvConfig):
    player: vf.AgentConfig = vf.AgentConfig()


class WordleEnv(vf.Env[WordleEnvConfig]):
    async def run(self, task, agents) -> None:
        secret = task.data.secret
        async with agents.player.interaction(task) as interaction:
            segment = await interaction.turn()
            guesses = 0
            while not segment.terminated:
                guess = parse_guess(segment.last_reply)
                guesses += 1
                if guess == secret or guesses >= MAX_GUESSES:
                    break
                segment = await interaction.turn(turn_message(guess, secret, MAX_GUESSES - guesses))
