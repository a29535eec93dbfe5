import math
import re

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


@pytest.mark.parametrize("reward, needle", [
    (5.0, "outside [0, 1]"), (-1e9, "outside [0, 1]"), (True, "not a number"), ("1.0", "not a number"),
])
def test_a_reward_outside_the_one_range_is_refused_everywhere(reward, needle):
    from memento.errors import MementoError
    from memento.policy import check_reward

    with pytest.raises(MementoError, match=re.escape(needle)):
        Case(task="t", reward=reward)
    with pytest.raises(MementoError, match=re.escape(needle)):
        check_reward(reward)


@pytest.mark.parametrize("data, needle", [
    ({"task": ""}, "task text is empty"),
    ({"task": "t", "answer": "x" * 10_000_000}, "more than 200,000"),
    ({"task": "t", "namespace": ("..",)}, "is not allowed"),
    ({"task": "t", "namespace": ("a", ".")}, "is not allowed"),
    ({"task": "t", "namespace": ("n" * 100_000,)}, "longer than 200"),
    ({"task": "t", "namespace": tuple("abcdefghijklmnopq")}, "more than 16"),
])
def test_size_and_namespace_limits_give_a_memento_error(data, needle):
    from memento.errors import MementoError

    with pytest.raises(MementoError, match=re.escape(needle)):
        Case(**data)


def test_limits_are_configurable_and_checked():
    from memento.case import case_limits, set_case_limits
    from memento.errors import ValidationError as MementoValidationError

    before = case_limits()
    try:
        set_case_limits(max_text_chars=20_000_000)
        assert len(Case(task="t", answer="x" * 10_000_000).answer) == 10_000_000
        with pytest.raises(MementoValidationError, match="unknown case limit"):
            set_case_limits(max_words=3)
        with pytest.raises(MementoValidationError, match="positive whole number"):
            set_case_limits(max_label_chars=0)
    finally:
        set_case_limits(**{f: getattr(before, f) for f in ("max_text_chars", "max_label_chars", "max_namespace_depth")})


def test_a_case_read_back_from_its_row_is_the_validated_case():
    """`row_to_case` builds cases without pydantic's validation (search reads rows hot): the result must not differ."""
    from memento.bank.schema import case_fields, row_to_case
    from memento.procedure import Procedure

    procedure = Procedure(template="In which country was the {t0} born?", slots=["t0"], answer="t0")
    for case in [Case(task="t"), Case(namespace=("a", "b"), task="Who wrote Hamlet?", plan=["search", "answer"],
                                      trajectory=[Step(thought="look", tool="search", observation="Shakespeare")],
                                      answer="Shakespeare", reward=1.0, metadata={"dataset": "d", "n": [1, 2]},
                                      procedure=procedure)]:
        read = row_to_case(case_fields(case))
        assert read == case and read.model_dump() == case.model_dump() and read.model_dump_json() == case.model_dump_json()
        assert read.model_fields_set == case.model_fields_set | set(Case.model_fields)
        assert read.model_copy(update={"answer": "x"}).answer == "x" and read.answer == case.answer
        with pytest.raises(Exception, match=r"outside \[0, 1\]"):
            read.reward = 5.0  # assignment is still validated, as on a validated case
