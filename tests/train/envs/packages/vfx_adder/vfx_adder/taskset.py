import re

import verifiers.v1 as vf

from .tools import AdderState, AdderToolset


class AdderData(vf.TaskData):
    a: int
    b: int


class AdderTaskConfig(vf.TaskConfig):
    # colocated: the tool server runs in the rollout's own runtime, where `used_tool` looks
    tools: vf.ToolsetConfig = vf.ToolsetConfig(colocated=True)


class AdderTask(vf.Task[AdderData, AdderState, AdderTaskConfig]):
    @classmethod
    def toolsets(cls, config: AdderTaskConfig) -> list[vf.Toolset]:
        return [AdderToolset(config.tools)]

    @vf.reward(weight=1.0)
    async def correct(self, trace: vf.Trace) -> float:
        m = re.search(r"<answer>\s*(-?\d+)\s*</answer>", trace.last_reply or "")
        return float(m is not None and int(m.group(1)) == self.data.a + self.data.b)

    @vf.reward(weight=0.5)
    async def used_tool(self, trace: vf.Trace, runtime: vf.Runtime) -> float:
        try:
            calls = (await runtime.read("calls.txt")).decode()
        except Exception:
            return 0.0
        return float(bool(calls.strip()))

    @vf.metric
    async def tool_calls(self, trace: vf.Trace) -> float:
        return float(trace.state.calls)


class AdderConfig(vf.TasksetConfig):
    num_tasks: int = 8
    task: AdderTaskConfig = AdderTaskConfig()


class AdderTaskset(vf.Taskset[AdderTask, AdderConfig]):
    def load(self) -> list[AdderTask]:
        return [
            AdderTask(
                AdderData(
                    idx=i,
                    a=10 * i + 3,
                    b=i + 4,
                    prompt=f"Use the add tool on {10 * i + 3} and {i + 4}, then reply <answer>N</answer>.",
                ),
                self.config.task,
            )
            for i in range(self.config.num_tasks)
        ]
