"""The same op sequences against CaseBankStore and LangGraph's InMemoryStore give the same results.

Compared: items and their values, result order, which results carry a score, and the scores
themselves (to float32 precision: our bank keeps float32 vectors). Timestamps are not compared:
InMemoryStore resets created_at on update, we keep it (tested in test_casebank_store.py).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.store.conftest import observe, scores
from tests.store.scenarios import SCENARIOS, UNINDEXED, WHOLE_DOCUMENT


def assert_same(ours_results, reference_results):
    assert len(ours_results) == len(reference_results)
    for number, (got, want) in enumerate(zip(ours_results, reference_results)):
        assert observe(got) == observe(want), f"result {number} differs"
        np.testing.assert_allclose(scores(got), scores(want), atol=1e-5, err_msg=f"scores of result {number} differ")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_results_as_in_memory_store(store_pair, name):
    ours, reference = store_pair.make()
    assert_same(SCENARIOS[name](ours), SCENARIOS[name](reference))


@pytest.mark.parametrize("name", sorted(WHOLE_DOCUMENT))
def test_same_results_when_the_whole_value_is_embedded(store_pair, name):
    ours, reference = store_pair.make(fields=["$"])
    assert_same(WHOLE_DOCUMENT[name](ours), WHOLE_DOCUMENT[name](reference))


@pytest.mark.parametrize("name", sorted(UNINDEXED))
def test_same_results_without_an_index(store_pair, name):
    ours, reference = store_pair.make(indexed=False)
    assert_same(UNINDEXED[name](ours), UNINDEXED[name](reference))


def test_async_twins_match(store_pair):
    ours, reference = store_pair.make()

    async def run(store):
        await store.aput(("docs",), "x", {"text": "async red fox"})
        await store.aput(("docs",), "y", {"text": "async blue whale"})
        return [await store.aget(("docs",), "x"), await store.asearch(("docs",), query="blue whale"),
                await store.alist_namespaces(), await store.adelete(("docs",), "x"), await store.asearch(("docs",))]

    assert_same(asyncio.run(run(ours)), asyncio.run(run(reference)))


def test_the_suite_can_fail(store_pair):
    """A store that orders differently is caught: the comparison is not vacuous."""
    ours, reference = store_pair.make()
    for store in (ours, reference):
        store.put(("n",), "one", {"text": "red fox"})
        store.put(("n",), "two", {"text": "blue whale"})
    with pytest.raises(AssertionError):
        assert_same([ours.search(("n",))], [list(reversed(reference.search(("n",))))])


def test_scenarios_return_what_they_should(store_pair):
    """Spot checks against hand-written expectations, so both stores are not merely alike but right."""
    ours, _ = store_pair.make()
    got = SCENARIOS["filters"](ours)
    assert [r.key for r in got[0]] == ["p1", "p2"]
    assert [r.key for r in got[7]] == ["a2", "p2", "q1"]
    assert got[2] == [] and [r.key for r in got[12]] == ["a1", "a2", "p1", "p2", "q1"]
    ours, _ = store_pair.make()
    hits = SCENARIOS["semantic_search"](ours)[0]
    assert {h.key for h in hits[:2]} == {"a1", "s1"} and all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    ours, _ = store_pair.make()
    page = SCENARIOS["unindexed_items_fill_the_page"](ours)[0]
    assert [(r.key, r.score is None) for r in page][-2:] == [("raw", True), ("notext", True)]
