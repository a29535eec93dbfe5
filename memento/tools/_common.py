"""Helpers the tools share: cutting text to a budget, and wrapping a function as a LangChain tool."""

from __future__ import annotations

from typing import Any, Callable

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel

from memento.errors import ToolError


def truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut `text` to `max_chars` characters with a note saying how much was left out."""
    if len(text) <= max_chars:
        return text, False
    return f"{text[:max_chars]}\n[truncated: showing {max_chars} of {len(text)} characters]", True


def make_tool(func: Callable[..., Any], *, name: str, description: str,
              args_schema: type[BaseModel], artifacts: bool = False) -> StructuredTool:
    """A LangChain tool over `func` whose ToolErrors reach the model as the tool's answer.

    LangChain turns only `ToolException` into an answer (`handle_tool_error=True`); any other
    exception would end the agent's step, but a bad path or a broken file is something the
    model should read and react to. With `artifacts`, `func` returns (text, artifact): the model
    reads the text, and a caller that invokes the tool with a tool call also gets the artifact.
    """

    def run(**kwargs: Any) -> Any:
        try:
            return func(**kwargs)
        except ToolError as error:
            raise ToolException(f"error: {error}") from error

    return StructuredTool.from_function(run, name=name, description=description, args_schema=args_schema,
                                        handle_tool_error=True,
                                        response_format="content_and_artifact" if artifacts else "content")
