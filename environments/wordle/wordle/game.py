"""The Wordle game itself: parsing a guess, and the colour feedback for it."""

from __future__ import annotations

import re

MAX_GUESSES = 6
GUESS = re.compile(r"\[\s*([a-zA-Z]{5})\s*\]")


def parse_guess(reply: str) -> str | None:
    """The first [xxxxx] in the reply, lowercased; None when there is none."""
    m = GUESS.search(reply or "")
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
        return (
            "No valid guess found. Reply with a five-letter word in brackets, like [crane]. "
            f"{remaining} guesses left."
        )
    return f"{guess.upper()}: {' '.join(feedback(guess, secret))}. {remaining} guesses left."
