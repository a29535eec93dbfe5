"""default_tools and the package's public names; our tools next to a foreign one in LangGraph's ToolNode."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

import memento.tools as tools_package
from memento.tools import WebResult, default_tools, read_file_tool


class FakeWeb:
    """A fake WebSearch: these tests are about which tools are built, not about the web."""

    def search(self, query: str, k: int = 5) -> list[WebResult]:
        return [WebResult("t", "https://example.org", "s")][:k]

    def fetch(self, url: str) -> str:
        return "page text"


def test_public_names_are_exactly_all():
    assert all(hasattr(tools_package, name) for name in tools_package.__all__)
    assert len(set(tools_package.__all__)) == len(tools_package.__all__)


def test_default_tools_without_and_with_corpus_and_web(tmp_path):
    assert [t.name for t in default_tools()] == ["python", "read_file"]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "1", "title": "Ada", "text": "Ada Lovelace wrote an algorithm."}) + "\n")
    everything = default_tools(corpus, search_cache_dir=tmp_path / "cache", web=FakeWeb())
    assert [t.name for t in everything] == ["search", "python", "read_file", "web_search", "fetch_page"]
    assert all(isinstance(t, BaseTool) for t in everything)
    assert everything[0].invoke({"query": "algorithm"}).startswith("[1] Ada: Ada Lovelace")


def test_tool_node_runs_ours_and_a_foreign_tool_and_marks_errors(tmp_path):
    @tool
    def shout(text: str) -> str:
        """Upper-case the text (a tool from outside memento)."""
        return text.upper()

    (tmp_path / "a.txt").write_text("attached text")
    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([read_file_tool(tmp_path), shout]))
    builder.add_edge(START, "tools")
    graph = builder.compile()
    calls = [{"name": "read_file", "args": {"path": "a.txt"}, "id": "1"},
             {"name": "read_file", "args": {"path": "nope.txt"}, "id": "2"},
             {"name": "shout", "args": {"text": "hi"}, "id": "3"}]
    messages = graph.invoke({"messages": [AIMessage(content="", tool_calls=calls)]})["messages"][1:]
    assert [(m.tool_call_id, m.content, m.status) for m in messages] == [
        ("1", "attached text", "success"),
        ("2", messages[1].content, "error"),
        ("3", "HI", "success"),
    ]
    assert messages[1].content.startswith("error: cannot read 'nope.txt'")
