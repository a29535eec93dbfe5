"""Hostile metadata filters and namespaces on every read and delete: a typed error or results inside the namespace asked."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memento.errors import ValidationError
from tests.hostile.conftest import export
from tests.hostile.strategies import SQL_PAYLOADS, any_value, namespace, weird_text

pytestmark = pytest.mark.hostile

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
where = st.dictionaries(st.one_of(weird_text, st.sampled_from(["dataset", "judge_v2"] + SQL_PAYLOADS)),
                        st.one_of(any_value, st.sampled_from(["d1", "d2", 1, 0])), max_size=3)


def inside(case_namespace: tuple, asked, exact: bool) -> bool:
    if asked is None:  # no filter: every namespace
        return True
    asked = tuple(asked.split("/")) if isinstance(asked, str) else tuple(asked)
    return case_namespace == asked if exact else case_namespace[: len(asked)] == asked


@SETTINGS
@given(ns=namespace, where=where, exact=st.booleans())
def test_a_filtered_read_stays_inside_its_namespace_or_is_refused(bank, ns, where, exact):
    before = export(bank)
    filters = {"namespace" if exact else "namespace_prefix": ns, "where": where}
    try:
        listed = list(bank.iter_cases(**filters))
        counted = bank.count(**filters)
        found = bank.search(np.ones(64), k=50, **filters)
    except ValidationError as error:
        assert len(str(error)) < 2000
        assert export(bank) == before
        return
    assert counted == len(listed)
    assert {h.case.id for h in found} <= {c.id for c in listed}, "search sees only what the filter allows"
    for case in listed:
        assert inside(case.namespace, ns, exact), (case.namespace, ns)
        for key, value in where.items():
            assert case.metadata.get(key) == value


@SETTINGS
@given(where=where)
def test_a_hostile_delete_in_an_empty_namespace_deletes_nothing(bank, where):
    before = export(bank)
    try:
        deleted = bank.delete_where(namespace=("nobody",), where=where)
    except ValidationError:
        deleted = 0
    assert deleted == 0
    assert export(bank) == before, "no filter reaches a case outside the namespace asked for"


@SETTINGS
@given(prefix=namespace)
def test_listing_namespaces_under_a_hostile_prefix_is_typed(bank, prefix):
    try:
        listed = bank.list_namespaces(prefix=prefix)
    except ValidationError:
        return
    assert all(inside(ns, prefix, exact=False) for ns in listed)
