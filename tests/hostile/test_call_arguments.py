"""Wrong argument types in the bank's public calls: a ValidationError naming the argument, and nothing changed.

`min_reward="high"`, `k="5"`, `limit=-1`, `since="yesterday"`, `offset=1.5`, `ids="abc"` surfaced
as raw TypeError, ValueError, AttributeError or sqlite3 errors (or, worse, were taken: a string of
ids iterated as characters, `True` as a reward bound of 1). On both backends.
"""

import io
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memento import CaseBank
from memento.errors import ValidationError
from tests.fakes import FakeHashEmbedder
from tests.hostile.conftest import export, fill
from tests.hostile.strategies import any_value, odd_types, weird_number, weird_text

pytestmark = pytest.mark.hostile

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

CALLS = {
    "search": lambda bank, **a: bank.search(np.ones(64), **a),
    "iter_cases": lambda bank, **a: list(bank.iter_cases(**a)),
    "count": lambda bank, **a: bank.count(**a),
    "list_namespaces": lambda bank, **a: bank.list_namespaces(**a),
    "export_jsonl": lambda bank, **a: bank.export_jsonl(io.StringIO(), **a),
    "list_traces": lambda bank, **a: bank.list_traces(**a),
}
ARGUMENTS = {  # which call takes which argument
    "min_reward": ["search", "iter_cases", "count", "list_namespaces", "export_jsonl"],
    "max_reward": ["search", "iter_cases", "count", "export_jsonl"],
    "since": ["search", "iter_cases", "count", "export_jsonl"],
    "until": ["iter_cases", "count"],
    "text": ["search", "iter_cases", "count"],
    "ids": ["search", "iter_cases", "count", "export_jsonl"],
    "where": ["search", "iter_cases", "count", "list_namespaces"],
    "k": ["search"],
    "limit": ["iter_cases", "list_traces"],
    "offset": ["iter_cases", "list_traces"],
    "descending": ["iter_cases"],
    "with_vectors": ["search", "export_jsonl"],
}
PAIRS = [(argument, call) for argument, calls in ARGUMENTS.items() for call in calls]

# Values each argument must refuse (the wrong types of the issue, and their neighbours).
WRONG = {
    "min_reward": st.one_of(st.text(max_size=8), st.booleans(), odd_types.filter(lambda v: v is not None),
                            st.just(float("nan"))),
    "since": st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.sampled_from(["yesterday", "2026-01-01"])),
    "text": st.one_of(st.integers(), st.floats(), st.binary(min_size=1, max_size=4), st.lists(st.text(), max_size=2)),
    "ids": st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.lists(st.integers(), min_size=1, max_size=3)),
    "where": st.one_of(st.text(min_size=1, max_size=6), st.lists(st.integers(), min_size=1, max_size=2), st.integers(min_value=1)),
    "k": st.one_of(st.integers(max_value=0), st.integers(min_value=2**63), st.text(max_size=3), st.floats(), st.booleans(), st.none()),
    "limit": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.text(max_size=3), st.floats(),
                       st.booleans()),
    "offset": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.text(max_size=3), st.floats(), st.booleans(), st.none()),
    "descending": st.one_of(st.text(max_size=3), st.integers(), st.none()),
    "with_vectors": st.one_of(st.text(max_size=3), st.integers(), st.none()),
}
WRONG["max_reward"] = WRONG["min_reward"]
WRONG["until"] = WRONG["since"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bank(request, tmp_path_factory):
    """The hostile suite's small bank, on each backend, with one trace so list_traces has a row."""
    if request.param == "sqlite":
        location = str(tmp_path_factory.mktemp("arguments") / "cases.db")
    else:
        url = request.getfixturevalue("postgres_url")
        location = f"{url}{'&' if '?' in url else '?'}schema=hostile_arguments_{id(request) % 10**6}"
    with CaseBank.open(location, FakeHashEmbedder()) as bank:
        fill(bank)
        bank.save_trace({"episode_id": "e0", "task": "task 0", "reward": 1.0})
        yield bank


@SETTINGS
@given(data=st.data(), pair=st.sampled_from(PAIRS))
def test_a_wrong_argument_is_a_validation_error_naming_it(bank, data, pair):
    argument, call = pair
    value = data.draw(WRONG[argument], label=argument)
    before = export(bank)
    with pytest.raises(ValidationError) as error:
        CALLS[call](bank, **{argument: value})
    assert argument in str(error.value) and len(str(error.value)) < 500
    assert export(bank) == before


@SETTINGS
@given(data=st.data(), pair=st.sampled_from(PAIRS))
def test_any_argument_is_taken_or_refused_with_a_validation_error(bank, data, pair):
    argument, call = pair
    value = data.draw(st.one_of(any_value, weird_number, st.just(datetime(2026, 1, 1, tzinfo=timezone.utc))), label=argument)
    before = export(bank)
    try:
        CALLS[call](bank, **{argument: value})
    except ValidationError as error:
        assert len(str(error)) < 2000
    assert export(bank) == before


@SETTINGS
@given(argument=st.sampled_from(sorted(set(WRONG) & {"min_reward", "max_reward", "since", "until", "text", "ids",
                                                       "where"})), data=st.data())
def test_delete_where_with_a_wrong_filter_deletes_nothing(bank, argument, data):
    value = data.draw(WRONG[argument], label=argument)
    before = export(bank)
    with pytest.raises(ValidationError, match=argument):
        bank.delete_where(namespace=("victim",), **{argument: value})
    assert export(bank) == before


def test_the_issues_examples(bank):
    for call, arguments in [("search", {"min_reward": "high"}), ("search", {"k": "5"}), ("iter_cases", {"limit": -1}),
                            ("iter_cases", {"limit": "10"}), ("iter_cases", {"since": "yesterday"}),
                            ("iter_cases", {"offset": 1.5}), ("count", {"ids": "abc"}), ("count", {"nosuch": 1}),
                            ("list_traces", {"offset": 1.5})]:
        with pytest.raises(ValidationError):
            CALLS[call](bank, **arguments)
    assert len(bank.list_traces(limit=None)) == 1, "limit None means no limit, as in iter_cases"
    assert bank.count(min_reward=np.float32(0.5)) == bank.count(min_reward=0.5) > 0, "numpy numbers are numbers"
    assert len(list(bank.iter_cases(limit=np.int64(2)))) == 2


def test_a_lone_surrogate_in_a_filter_is_a_validation_error(bank):
    """Found by the property test on PostgreSQL: text='\\ud800' was a UnicodeEncodeError from psycopg."""
    before = export(bank)
    for arguments in [{"text": "\ud800"}, {"where": {"dataset": "a\udfff"}}, {"ids": ["c\ud800"]}]:
        for call in ("search", "iter_cases", "count"):
            with pytest.raises(ValidationError, match="lone surrogate"):
                CALLS[call](bank, **arguments)
    assert export(bank) == before


@pytest.mark.parametrize("k", [1001, 2**63 - 1])
def test_a_k_past_the_index_beam_returns_every_case(bank, k):
    """Hypothesis found k=1001 an InvalidParameterValue on PostgreSQL (pgvector's ef_search stops at 1000)."""
    hits = bank.search("task 1", k=k)
    assert len(hits) == bank.count() and len({h.case.id for h in hits}) == len(hits)
