"""A classic ToolEnv with a Python tool: `calculate(expression)` evaluates Python.

Each call appends a line to `$VFX_MARKERS/vfx_calc_tool.log`. Reward: `correct` (1.0,
the <answer> equals the expected number), `used_calculator` (0.3).
"""

import os

import verifiers as vf
from datasets import Dataset


def calculate(expression: str) -> str:
    """Evaluate a Python arithmetic expression and return the result.

    Args:
        expression: e.g. "3 * (4 + 5)"
    """
    folder = os.environ.get("VFX_MARKERS")
    if folder:
        with open(os.path.join(folder, "vfx_calc_tool.log"), "a") as f:
            f.write(f"calculate({expression!r})\n")
    return str(eval(expression, {"__builtins__": {}}, {}))


def load_environment(max_turns: int = 3):
    rows = [
        {"question": f"Use the calculator: what is {a} * 7?", "answer": str(a * 7)}
        for a in range(2, 10)
    ]
    parser = vf.XMLParser(fields=["answer"], answer_field="answer")

    def correct(completion, answer, parser) -> float:
        return 1.0 if (parser.parse_answer(completion) or "").strip() == answer else 0.0

    def used_calculator(completion) -> float:
        for m in completion:
            role = m["role"] if isinstance(m, dict) else m.role
            if role == "tool":
                return 1.0
        return 0.0

    return vf.ToolEnv(
        dataset=Dataset.from_list(rows),
        tools=[calculate],
        max_turns=max_turns,
        system_prompt="Use tools, then reply <answer>N</answer>.",
        parser=parser,
        rubric=vf.Rubric(funcs=[correct, used_calculator], weights=[1.0, 0.3], parser=parser),
        sampling_args={"max_tokens": 8},  # short turns: the tool's answer fits the episode
    )
