"""Namespaces never leak, on every backend: every read in one namespace sees only that namespace's cases."""

import io
import json

import pytest

from memento import Case

TENANTS = [("acme", "agent"), ("acme", "agent", "sub"), ("globex", "agent"), ("acme",)]


@pytest.fixture
def bank(make_bank):
    """A bank of each backend with four tenants."""
    bank = make_bank("ns")
    for ns in TENANTS:
        bank.add_many([Case(namespace=ns, task=f"shared question number {i}") for i in range(4)])
    return bank


@pytest.mark.parametrize("namespace", TENANTS)
def test_reads_stay_inside_one_namespace(bank, namespace):
    assert bank.count(namespace=namespace) == 4
    assert {c.namespace for c in bank.iter_cases(namespace=namespace)} == {namespace}
    hits = bank.search("shared question number 1", k=16, namespace=namespace)
    assert len(hits) == 4 and {h.case.namespace for h in hits} == {namespace}
    out = io.StringIO()
    assert bank.export_jsonl(out, namespace=namespace) == 4
    assert {tuple(json.loads(line)["namespace"]) for line in out.getvalue().splitlines()} == {namespace}


def test_prefix_reads_cover_children_only(bank):
    under_acme = {c.namespace for c in bank.iter_cases(namespace_prefix=("acme",))}
    assert under_acme == {("acme",), ("acme", "agent"), ("acme", "agent", "sub")}
    assert bank.list_namespaces(prefix=("acme", "agent")) == [("acme", "agent"), ("acme", "agent", "sub")]
    # 'acme' must not match a sibling whose name merely starts with it
    bank.add(Case(namespace=("acmecorp",), task="x"))
    assert bank.count(namespace_prefix=("acme",)) == 12


def test_delete_in_one_namespace_leaves_others(bank):
    assert bank.delete_where(namespace=("globex", "agent")) == 4
    assert bank.count() == 12 and bank.count(namespace=("acme", "agent")) == 4
