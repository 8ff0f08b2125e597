"""A vLLM tool-call parser for tests: `--tool-parser-plugin THIS_FILE --tool-call-parser
vft_first_tool`.

A random-weight model never writes a well-formed tool call, so a tool environment's loop
would stop at its first turn. This parser reads the first model turn of a conversation
that offers tools as a call of the first tool (arguments filled from its JSON schema:
numbers 2, strings "6*7"), and every later turn as plain text. The model's tokens are
untouched; only their interpretation is scripted.
"""

import json

from vllm.entrypoints.chat_utils import make_tool_call_id
from vllm.entrypoints.generate.base.protocol import (
    DeltaMessage,
    ExtractedToolCallInformation,
    FunctionCall,
    ToolCall,
)
from vllm.tool_parsers.abstract_tool_parser import ToolParser, ToolParserManager


def _arguments(parameters):
    props = (parameters or {}).get("properties") or {}
    return {k: 2 if v.get("type") in ("integer", "number") else "6*7" for k, v in props.items()}


def _role(m):
    return m.get("role") if isinstance(m, dict) else getattr(m, "role", None)


class FirstToolParser(ToolParser):
    supports_required_and_named = False

    def extract_tool_calls(self, model_output, request):
        tools = getattr(request, "tools", None) or []
        called = any(_role(m) == "tool" for m in getattr(request, "messages", None) or [])
        if not tools or called:
            return ExtractedToolCallInformation(
                tools_called=False, tool_calls=[], content=model_output
            )
        fn = tools[0].function
        call = ToolCall(
            id=make_tool_call_id(),
            type="function",
            function=FunctionCall(name=fn.name, arguments=json.dumps(_arguments(fn.parameters))),
        )
        return ExtractedToolCallInformation(
            tools_called=True, tool_calls=[call], content=model_output or None
        )

    def extract_tool_calls_streaming(
        self, previous_text, current_text, delta_text, *args, **kwargs
    ):
        return DeltaMessage(content=delta_text)


ToolParserManager.register_module("vft_first_tool", module=FirstToolParser)
