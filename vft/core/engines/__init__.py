"""Inference-server engines: the base type and the built-in vLLM plugin."""

from vft.core.engines.base import InferenceServer, ServerPart

__all__ = ["InferenceServer", "ServerPart"]
