"""How past cases are shown to the planner: what worked, what failed and why, kept short."""

import pytest

from memento import Case
from memento.agent.prompts import clip, render_case, render_cases


@pytest.mark.parametrize("reward, metadata, head, why", [
    (1.0, {}, "Case 1 (worked, reward 1)", None),
    (0.0, {"stop_reason": "time_budget"}, "Case 1 (failed, reward 0)", "  Why it failed: ran out of time"),
    (0.0, {}, "Case 1 (failed, reward 0)", "  Why it failed: the answer was wrong"),
    (0.0, {"scored": False}, "Case 1 (not scored)", None),
])
def test_a_case_says_whether_it_worked_and_why_not(reward, metadata, head, why):
    text = render_case(1, Case(task="Who founded Acme?", plan=["search", "answer"], answer="Ada", reward=reward,
                               metadata=metadata), 80)
    lines = text.splitlines()
    assert lines[:4] == [head, "  Task: Who founded Acme?", "  Plan: search | answer", "  Answer: Ada"]
    assert (lines[4] if len(lines) > 4 else None) == why


def test_long_fields_are_clipped_to_one_line():
    case = Case(task="word " * 100, answer="line one\nline two", reward=1.0)
    text = render_case(2, case, 20)
    assert "  Task: " + "word " * 3 + "word…" in text and "Answer: line one line two" in text
    assert clip("abc", 3) == "abc" and clip("abcd", 3) == "ab…"
    assert render_cases([], 20) == "No past cases yet."
