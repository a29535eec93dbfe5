"""The agent's tools, each a LangChain tool over a plain class or function that does the work.

- `search`: BM25 (and optionally dense, fused) search over a local passage corpus (`CorpusSearch`)
- `python`: Python in a sandboxed child process (`PythonSandbox`)
- `read_file`: attached files as text (`read_file`)
- `web_search`, `fetch_page`: any `WebSearch` service, e.g. a SearxNG instance (`SearxNG`)

Tools from the LangChain ecosystem are `BaseTool`s too, so the agent takes them alongside these.
"""

from __future__ import annotations

import os

from langchain_core.tools import BaseTool

from memento.embedders import Embedder
from memento.tools.files import SUPPORTED as SUPPORTED_FILE_TYPES
from memento.tools.files import read_file, read_file_tool
from memento.tools.sandbox import ExecutionResult, PythonSandbox, SandboxLimits, python_tool
from memento.tools.search import CorpusSearch, Passage, SearchConfig, search_tool
from memento.tools.web import (SearxNG, WebConnectionError, WebError, WebResponseError, WebResult,
                               WebSearch, WebTimeoutError, html_to_text, web_tools)

__all__ = [
    "CorpusSearch", "ExecutionResult", "Passage", "PythonSandbox", "SUPPORTED_FILE_TYPES", "SandboxLimits",
    "SearchConfig", "SearxNG", "WebConnectionError", "WebError", "WebResponseError", "WebResult",
    "WebSearch", "WebTimeoutError", "default_tools", "html_to_text", "python_tool", "read_file",
    "read_file_tool", "search_tool", "web_tools",
]


def default_tools(corpus_path: str | os.PathLike | None = None, *, embedder: Embedder | None = None,
                  search_cache_dir: str | os.PathLike | None = None, sandbox_limits: SandboxLimits | None = None,
                  attachments_dir: str | os.PathLike | None = None, web: WebSearch | None = None) -> list[BaseTool]:
    """The standard tool set: `search` when a corpus is given, `python`, `read_file`, and the web tools
    when a `WebSearch` is given. `embedder` adds dense search fused with BM25."""
    tools: list[BaseTool] = []
    if corpus_path is not None:
        tools.append(search_tool(CorpusSearch(corpus_path, embedder=embedder, cache_dir=search_cache_dir)))
    tools.append(python_tool(PythonSandbox(sandbox_limits)))
    tools.append(read_file_tool(attachments_dir))
    if web is not None:
        tools.extend(web_tools(web))
    return tools
