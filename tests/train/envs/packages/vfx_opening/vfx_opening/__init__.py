"""A classic MultiTurnEnv whose dataset carries no prompt: the environment opens.

Each row has only an `info.word`; at turn 0 the environment writes the opening message
("spell WORD backwards") itself, then asks once more. Reward: `reversed_word` (1.0).
Each opening appends a line to `$VFX_MARKERS/vfx_opening.log`.
"""

import os

import verifiers as vf
from datasets import Dataset

WORDS = ["stone", "river", "light", "paper", "cloud", "table", "green", "north"]


class OpeningEnv(vf.MultiTurnEnv):
    async def get_prompt_messages(self, state):
        if not state["trajectory"]:
            word = state["info"]["word"]
            folder = os.environ.get("VFX_MARKERS")
            if folder:
                with open(os.path.join(folder, "vfx_opening.log"), "a") as f:
                    f.write(f"opened {word}\n")
            opening = [vf.UserMessage(content=f"spell {word} backwards")]
            state["prompt"] = opening
            return opening
        return await super().get_prompt_messages(state)

    async def env_response(self, messages, state, **kwargs):
        return [vf.UserMessage(content="once more")]


def reversed_word(completion, info) -> float:
    for m in completion:
        role = m["role"] if isinstance(m, dict) else m.role
        text = (m["content"] if isinstance(m, dict) else m.content) or ""
        if role == "assistant" and info["word"][::-1] in text:
            return 1.0
    return 0.0


def load_environment(max_turns: int = 2):
    rows = [{"prompt": [], "info": {"word": w}} for w in WORDS]
    return OpeningEnv(
        dataset=Dataset.from_list(rows),
        rubric=vf.Rubric(funcs=[reversed_word], weights=[1.0]),
        max_turns=max_turns,
    )
