"""Metadata filters never become SQL: a hostile `where` key is refused and reaches no other tenant.

The reproduction is the one from the hardening issue: a key that closed the JSON-path string and
appended `OR 1` deleted every case of another namespace through `memento cases rm`. Every test runs
on both backends (SQLite's json_extract, PostgreSQL's jsonb operators).
"""

import io
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import SearchOp

from memento import Case, CaseBank
from memento.errors import ValidationError
from memento.store import CaseBankStore

HOSTILE_KEY = "k' || char(34)) IS NULL OR 1 OR json_extract(metadata, '$.k"
VICTIM, ATTACKER = ("victim",), ("attacker",)


def fill(bank: CaseBank) -> None:
    bank.add_many([Case(namespace=VICTIM, task=f"victim secret number {i}", metadata={"k": i}) for i in range(5)])
    bank.add_many([Case(namespace=ATTACKER, task=f"attacker note {i}", metadata={"k": i}) for i in range(3)])


def export(bank: CaseBank) -> str:
    out = io.StringIO()
    bank.export_jsonl(out, with_vectors=True)
    return out.getvalue()


@pytest.fixture
def bank(make_bank):
    """A bank of each backend with a victim and an attacker tenant."""
    bank = make_bank("tenants")
    fill(bank)
    return bank


def test_the_reported_key_is_refused_everywhere_and_deletes_nothing(bank):
    before = export(bank)
    for call in (
        lambda: bank.delete_where(namespace=ATTACKER, where={HOSTILE_KEY: 1}),
        lambda: list(bank.iter_cases(namespace=ATTACKER, where={HOSTILE_KEY: 1})),
        lambda: bank.count(namespace=ATTACKER, where={HOSTILE_KEY: 1}),
        lambda: bank.search("victim secret", k=8, namespace=ATTACKER, where={HOSTILE_KEY: 1}),
    ):
        with pytest.raises(ValidationError, match="metadata filter key"):
            call()
    assert export(bank) == before and bank.count(namespace=VICTIM) == 5


def test_an_empty_namespace_prefix_is_refused_not_widened(bank):
    for prefix in ("", ()):
        with pytest.raises(ValidationError, match="namespace_prefix"):
            bank.count(namespace_prefix=prefix)
        with pytest.raises(ValidationError, match="namespace_prefix"):
            bank.search("victim", k=4, namespace_prefix=prefix)
        with pytest.raises(ValidationError, match="namespace_prefix"):
            bank.delete_where(namespace_prefix=prefix)
    assert bank.count() == 8


def test_the_store_filter_with_a_hostile_key_stays_in_its_namespace(make_bank):
    bank = make_bank("store")
    store = CaseBankStore(bank, index={"fields": ["text"]})
    store.put(VICTIM, "a", {"text": "victim secret", "k": 1})
    store.put(ATTACKER, "b", {"text": "attacker note", "k": 1})
    before = export(bank)
    for query in (None, "victim secret"):
        [found] = store.batch([SearchOp(ATTACKER, filter={HOSTILE_KEY: 1}, limit=10, query=query)])
        assert found == []
        [found] = store.batch([SearchOp(ATTACKER, filter={"k": 1}, limit=10, query=query)])
        assert [item.namespace for item in found] == [ATTACKER]
    assert export(bank) == before
    bank.close()


# Keys drawn from everything SQL and JSON paths treat specially, plus plain names.
keys = st.one_of(
    st.text(alphabet=string.printable + "\"'`$.[]*\\\u00e9\u202e", max_size=40),
    st.sampled_from([HOSTILE_KEY, "k", "k.x", "k\"]", "$", "k' OR '1'='1", "k\") OR 1 --", "-k", "_k"]),
)
values = st.one_of(st.integers(-3, 8), st.text(max_size=12), st.booleans(), st.floats(allow_nan=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, value=values)
def test_no_filter_reaches_a_case_outside_its_namespace(bank, key, value):
    before = export(bank)
    try:
        listed = list(bank.iter_cases(namespace=ATTACKER, where={key: value}))
        hits = bank.search("victim secret number", k=8, namespace=ATTACKER, where={key: value})
        deleted = bank.delete_where(namespace=ATTACKER, where={key: value}) if key != "k" else 0
    except ValidationError as error:
        assert repr(key)[:20] in str(error) or "metadata filter" in str(error)
        assert export(bank) == before
        return
    assert {c.namespace for c in listed} <= {ATTACKER}
    assert {h.case.namespace for h in hits} <= {ATTACKER}
    assert bank.count(namespace=VICTIM) == 5
    if deleted:  # a legal key matched attacker cases: put them back for the next example
        fill_missing_attacker(bank)


def fill_missing_attacker(bank: CaseBank) -> None:
    present = {c.task for c in bank.iter_cases(namespace=ATTACKER)}
    bank.add_many([Case(namespace=ATTACKER, task=f"attacker note {i}", metadata={"k": i})
                   for i in range(3) if f"attacker note {i}" not in present])
