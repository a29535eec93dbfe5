"""`list_namespaces` honours the caller's filters (it used to take only a prefix and list every namespace)."""

from datetime import datetime, timedelta, timezone

import pytest

from memento.errors import ValidationError

pytestmark = pytest.mark.hostile


def test_list_namespaces_lists_only_namespaces_holding_a_matching_case(bank):
    assert bank.list_namespaces() == [("other",), ("victim",), ("victim", "inner")]
    assert bank.list_namespaces(where={"dataset": "nowhere"}) == []
    with_reward = bank.list_namespaces(min_reward=1.0, prefix="victim")
    assert with_reward == [("victim",), ("victim", "inner")]
    assert bank.list_namespaces(ids=["other-0"]) == [("other",)]
    assert bank.list_namespaces(text="of victim/inner") == [("victim", "inner")]
    assert bank.list_namespaces(since=datetime.now(timezone.utc) + timedelta(days=1)) == []


def test_list_namespaces_refuses_a_hostile_filter(bank):
    with pytest.raises(ValidationError, match="metadata filter key"):
        bank.list_namespaces(where={"k') OR 1 --": 1})
