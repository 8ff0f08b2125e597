"""A `verifiers.v1` multi-turn episode whose tasks have no prompt (`prompt=None`).

The environment's own `Env.run()` opens the conversation ("spell WORD backwards"), then
asks once more; each opening appends a line to `$VFX_MARKERS/vfx_v1_opening.log`.
Reward: `reversed_word` (1.0); metric: `reply_chars`.
"""

import os

import verifiers.v1 as vf

WORDS = ["stone", "river", "light", "paper", "cloud", "table", "green", "north"]


class OpeningData(vf.TaskData):
    word: str


class OpeningTask(vf.Task[OpeningData]):
    @vf.reward(weight=1.0)
    async def reversed_word(self, trace: vf.Trace) -> float:
        return float(
            any(self.data.word[::-1] in (m.content or "") for m in trace.assistant_messages)
        )

    @vf.metric
    async def reply_chars(self, trace: vf.Trace) -> float:
        return float(sum(len(m.content or "") for m in trace.assistant_messages))


class OpeningConfig(vf.TasksetConfig):
    num_tasks: int = 8


class OpeningTaskset(vf.Taskset[OpeningTask, OpeningConfig]):
    def load(self) -> list[OpeningTask]:
        words = (WORDS * 4)[: self.config.num_tasks]
        return [OpeningTask(OpeningData(word=w), self.config.task) for w in words]  # no prompt


class OpeningEnvConfig(vf.EnvConfig):
    player: vf.AgentConfig = vf.AgentConfig()


class OpeningEnv(vf.Env[OpeningEnvConfig]):
    async def run(self, task, agents) -> None:
        folder = os.environ.get("VFX_MARKERS")
        if folder:
            with open(os.path.join(folder, "vfx_v1_opening.log"), "a") as f:
                f.write(f"opened {task.data.word}\n")
        async with agents.player.interaction(task) as interaction:
            segment = await interaction.turn(f"spell {task.data.word} backwards")
            if not segment.terminated:
                await interaction.turn("once more")


__all__ = ["OpeningEnv", "OpeningTaskset"]
