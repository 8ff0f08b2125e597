"""Helpers for planning recipes in tests without touching the file system."""

from __future__ import annotations

import copy
from typing import Any

from vft.core.engines.vllm import VllmServer
from vft.core.plan import Plan
from vft.core.planning.capabilities import Capabilities
from vft.core.planning.planner import Target, plan
from vft.core.recipe.schema import recipe_from_dict
from vft.core.resources import accelerate_templates

BASE: dict[str, Any] = {
    "name": "t",
    "model": {"name": "willcb/Qwen3-0.6B"},
    "environment": {"id": "gsm8k"},
    "resources": {"gpus": "A100-80GB:2"},
}
UNLIMITED = Capabilities(multi_node=True)
MODAL_LIKE = Capabilities(multi_node=True, max_gpus_per_node=8)
SINGLE_NODE = Capabilities(multi_node=False, limits={"multi_node": "one machine"})


def recipe_dict(**sections: Any) -> dict[str, Any]:
    """BASE with sections merged in (`resources={"gpus": "H100:8"}` updates that table)."""
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


def make_plan(caps: Capabilities = UNLIMITED, backend: str = "test", **sections: Any) -> Plan:
    recipe = recipe_from_dict(recipe_dict(**sections))
    target = Target(
        backend=backend, capabilities=caps, server=VllmServer(), templates=accelerate_templates()
    )
    return plan(recipe, target)
