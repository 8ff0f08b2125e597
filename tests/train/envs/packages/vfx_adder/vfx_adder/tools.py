import os

import verifiers.v1 as vf


class AdderState(vf.State):
    """Rollout state shared by the tool server (writes) and the task's signals (read)."""

    calls: int = 0


class AdderToolset(vf.Toolset[vf.ToolsetConfig, AdderState]):
    TOOL_PREFIX = "calc"

    @vf.tool
    def add(self, a: int, b: int) -> int:
        """Add two integers."""
        self.state.calls += 1
        with open("calls.txt", "a") as f:  # the rollout's runtime folder
            f.write(f"{a}+{b}\n")
        marker = os.environ.get("VFX_MARKERS")
        if marker:
            with open(os.path.join(marker, "vfx_adder.log"), "a") as f:
                f.write(f"add({a}, {b})\n")
        return a + b


if __name__ == "__main__":  # the tool server process: `python -m vfx_adder.tools`
    AdderToolset.run()
