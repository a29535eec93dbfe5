"""Two stores for the conformance suite: ours over a real bank (each backend in turn), and LangGraph's InMemoryStore.

Both embed with the same deterministic fake (a hashing bag of words, `tests.fakes`), so semantic
search must rank the same items in the same order with the same cosine scores.
"""

from __future__ import annotations

import pytest
from langgraph.store.base import Item, SearchItem
from langgraph.store.memory import InMemoryStore

from memento import CaseBank
from memento.store import CaseBankStore
from tests.fakes import FakeHashEmbedder

FIELDS = ["text"]


def make_reference(fields=FIELDS, indexed=True) -> InMemoryStore:
    """LangGraph's InMemoryStore with the fake embedding function."""
    if not indexed:
        return InMemoryStore()
    embedder = FakeHashEmbedder()
    return InMemoryStore(index={"dims": embedder.dim, "embed": lambda texts: embedder.embed(texts).tolist(),
                                "fields": fields})


def make_ours(location, fields=FIELDS, indexed=True) -> CaseBankStore:
    """Our store over a fresh bank (a file or a postgresql:// URL) built with the same fake embedder."""
    bank = CaseBank.open(location, embedder=FakeHashEmbedder())
    return CaseBankStore(bank, index={"fields": fields} if indexed else None)


@pytest.fixture
def store_pair(bank_location):
    """(ours, reference) built alike; `store_pair.make(fields=..., indexed=...)` builds another pair."""
    made = []

    class Pair:
        @staticmethod
        def make(fields=FIELDS, indexed=True):
            ours = make_ours(bank_location(f"store{len(made)}"), fields, indexed)
            made.append(ours)
            return ours, make_reference(fields, indexed)

    yield Pair
    for store in made:
        store.bank.close()


def observe(result):
    """A store result as plain data: items without timestamps, scores split off for a tolerant compare."""
    if isinstance(result, SearchItem):
        return ("hit", result.namespace, result.key, result.value, result.score is None)
    if isinstance(result, Item):
        return ("item", result.namespace, result.key, result.value)
    if isinstance(result, list):
        return [observe(r) for r in result]
    return result


def scores(result) -> list[float]:
    """Every score in a result, in order (None as NaN-free -1 marker), for an approximate compare."""
    if isinstance(result, SearchItem):
        return [-1.0 if result.score is None else result.score]
    if isinstance(result, list):
        return [s for r in result for s in scores(r)]
    return []
