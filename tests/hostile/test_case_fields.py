"""Hostile case fields: each bad one is memento's ValidationError naming the field, and the bank stays as it was."""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memento import Case
from memento.errors import ValidationError
from tests.hostile.conftest import export
from tests.hostile.strategies import any_value, metadata, namespace, weird_number, weird_text

pytestmark = pytest.mark.hostile

FIELDS = {
    "id": st.one_of(weird_text, any_value),
    "task": st.one_of(weird_text, any_value),
    "answer": st.one_of(weird_text, any_value),
    "reward": st.one_of(weird_number, any_value),
    "namespace": namespace,
    "metadata": st.one_of(metadata, any_value),
    "plan": st.one_of(st.lists(weird_text, max_size=3), any_value),
    "trajectory": st.one_of(st.lists(st.fixed_dictionaries({"tool_input": any_value, "thought": weird_text}), max_size=2),
                            any_value),
}
hostile_case = st.fixed_dictionaries({"task": st.one_of(st.just("a task"), FIELDS["task"])},
                                     optional={k: v for k, v in FIELDS.items() if k != "task"})


def named_field(error: ValidationError, fields: dict) -> bool:
    return any(name in str(error) for name in fields) or "case" in str(error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(fields=hostile_case)
@example(fields={"task": "a task", "reward": "x" * 200_001})  # CI found it: the message quoted the whole value
@example(fields={"task": "a task", "trajectory": [{"tool_input": b""}]})  # kept b"" in memory, stored ""
def test_a_case_is_stored_whole_or_refused_with_a_validation_error(bank, fields):
    before = export(bank)
    try:
        case = bank.add(fields, vector=np.ones(64))
    except ValidationError as error:
        assert named_field(error, fields), error
        assert len(str(error)) < 2000
        assert export(bank) == before, "a refused case changes nothing"
        return
    try:
        stored = bank.get(case.id)
        assert stored.model_dump() == case.model_dump(), "stored as given"
        assert 0.0 <= stored.reward <= 1.0
    finally:
        bank.delete(case.id)
    assert export(bank) == before


@settings(max_examples=80, deadline=None)
@given(fields=hostile_case)
def test_case_construction_raises_only_memento_errors(fields):
    try:
        case = Case(**fields)
    except ValidationError:
        return
    assert case.task.strip() and 0.0 <= case.reward <= 1.0 and case.namespace
