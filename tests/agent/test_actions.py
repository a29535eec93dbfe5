"""The executor's replies are read forgivingly, and what cannot be read says why."""

import pytest

from memento.agent.actions import parse_action

TOOLS = ["search", "python"]


@pytest.mark.parametrize("reply, tool, given", [
    ('{"tool": "search", "input": "acme founder"}', "search", "acme founder"),
    ('{"input": "acme founder", "tool": "search"}', "search", "acme founder"),
    ('Sure! {"tool": "Search", "input": "x"} hope that helps', "search", "x"),
    ('```json\n{"name": "python", "args": {"code": "print(1)"}}\n```', "python", {"code": "print(1)"}),
    ('{"tool": "search", "input": "{\\"query\\": \\"q\\", \\"k\\": 2}"}', "search", {"query": "q", "k": 2}),
    ('{"tool": "search", "input": "cut off by max_tok', "search", "cut off by max_tok"),
    ('{"action": "search", "query": "  spaced  "}', "search", "spaced"),
])
def test_tool_calls_in_many_shapes(reply, tool, given):
    action = parse_action(reply, TOOLS)
    assert (action.tool, action.input, action.final, action.malformed) == (tool, given, None, None)


@pytest.mark.parametrize("reply, final", [
    ('{"tool": "final", "input": "Velmora"}', "Velmora"),
    ('{"final": "Velmora"}', "Velmora"),
    ('{"tool": "answer", "input": 1901}', "1901"),
    ('{"final": {"city": "Velmora"}}', '{"city": "Velmora"}'),
])
def test_final_results(reply, final):
    assert parse_action(reply, TOOLS).final == final


@pytest.mark.parametrize("reply, reason", [
    ("I think the answer is Velmora.", "not a JSON object"),
    ('{"input": "acme"}', 'no "tool" field'),
    ('{"tool": "browser", "input": "x"}', "there is no tool 'browser'; the tools are search, python"),
    ("[1, 2, 3]", "not a JSON object"),
])
def test_unreadable_replies_say_why(reply, reason):
    action = parse_action(reply, TOOLS)
    assert action.tool is None and action.final is None and reason in action.malformed
