import math

import pytest

from memento import Case
from memento.case import Step, validate_case
from memento.errors import MementoError, ValidationError


def test_case_defaults_and_round_trip():
    case = Case(task="Who wrote Hamlet?", plan=["search", "answer"], answer="Shakespeare", reward=1.0,
                trajectory=[Step(thought="look it up", tool="search", tool_input={"q": "Hamlet"}, observation="...")],
                metadata={"dataset": "demo"})
    again = Case.model_validate_json(case.model_dump_json())
    assert again == case
    assert case.namespace == ("default",) and len(case.id) == 32
    assert case.created_at.tzinfo is not None


@pytest.mark.parametrize("field,value,needle", [
    ("task", "   ", "task text is empty"),
    ("reward", math.nan, "not a finite number"),
    ("reward", math.inf, "not a finite number"),
    ("namespace", (), "non-empty tuple"),
    ("namespace", ("a/b",), "without '/'"),
    ("id", "", "1 to 200 characters"),
])
def test_bad_fields_get_a_clear_memento_error(field, value, needle):
    data = {"task": "t", field: value}
    with pytest.raises(ValidationError) as info:
        validate_case(data)
    assert needle in str(info.value)
    assert isinstance(info.value, MementoError)


def test_namespace_from_string_and_unknown_field_rejected():
    assert validate_case({"task": "t", "namespace": "acme/agent"}).namespace == ("acme", "agent")
    with pytest.raises(ValidationError, match="colour"):
        validate_case({"task": "t", "colour": "red"})
