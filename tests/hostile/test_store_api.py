"""Hostile input to the LangGraph store (memento/store.py): a typed error, or an answer inside the namespace asked.

A typed error is memento's MementoError, or LangGraph's own InvalidNamespaceError for a namespace
LangGraph's BaseStore refuses before the store sees it (that error is LangGraph's contract).
A value that is not a dict was a raw TypeError inside the store; it is a ValidationError now.
"""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langgraph.store.base import InvalidNamespaceError

from memento.errors import MementoError
from memento.store import CaseBankStore
from tests.hostile.conftest import export
from tests.hostile.strategies import any_value, label, weird_text

pytestmark = pytest.mark.hostile

TYPED = (MementoError, InvalidNamespaceError)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
# Tuples of hostile labels: a namespace of another type (True, 0.0) is a TypeError in LangGraph's own
# BaseStore.put/search, raised before memento's store is called.
store_namespace = st.one_of(st.lists(st.one_of(label, any_value), min_size=0, max_size=3).map(tuple))
# None is not hostile: LangGraph reads a put of None as a delete.
value = st.one_of(st.dictionaries(st.one_of(weird_text, st.just("text")), any_value, max_size=3),
                  any_value.filter(lambda v: v is not None))


@pytest.fixture(scope="module")
def store(bank):
    return CaseBankStore(bank, index={"fields": ["text"], "dims": 64})


@SETTINGS
@given(namespace=store_namespace, key=st.one_of(weird_text, any_value), value=value)
@example(namespace=("0",), key="\ud800", value={})  # CI found it: a lone surrogate key was a UnicodeEncodeError
@example(namespace=("a\udcff",), key="k", value={"text": "x"})
def test_a_put_is_stored_as_given_or_refused_with_a_typed_error(bank, store, namespace, key, value):
    before = export(bank)
    try:
        store.put(namespace, key, value)
    except TYPED:
        assert export(bank) == before, "a refused put changes nothing"
        return
    try:
        item = store.get(namespace, key)
        assert item is not None and item.value == value and tuple(item.namespace) == tuple(namespace)
    finally:
        store.delete(namespace, key)
    assert export(bank) == before


@SETTINGS
@given(prefix=store_namespace, query=st.one_of(st.none(), weird_text), limit=st.integers(-3, 50),
       offset=st.integers(-3, 50), filter=st.one_of(st.none(), st.dictionaries(weird_text, any_value, max_size=2)))
def test_a_search_answers_inside_its_prefix_or_is_refused(bank, store, prefix, query, limit, offset, filter):
    before = export(bank)
    try:
        items = store.search(prefix, query=query, limit=limit, offset=offset, filter=filter)
        namespaces = store.list_namespaces(prefix=prefix)
    except TYPED:
        assert export(bank) == before
        return
    for item in items:
        assert tuple(item.namespace)[: len(prefix)] == tuple(prefix)
    for listed in namespaces:
        assert listed[: len(prefix)] == tuple(prefix)
    assert export(bank) == before
