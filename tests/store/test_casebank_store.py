"""What CaseBankStore does beyond the conformance suite, on every backend: persistence, its own rules, LangGraph wiring."""

from __future__ import annotations

from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore, GetOp, InvalidNamespaceError, PutOp
from langgraph.store.memory import InMemoryStore

from memento import Case, CaseBank
from memento.errors import ValidationError
from memento.store import CaseBankStore, decode_namespace, encode_namespace, item_id


@pytest.fixture
def bank(bank_location, fake_embedder):
    with CaseBank.open(bank_location("store"), embedder=fake_embedder) as bank:
        yield bank


@pytest.fixture
def store(bank):
    return CaseBankStore(bank, index={"fields": ["text"]})


def test_items_survive_reopening_the_bank(bank_location, fake_embedder):
    path = bank_location("reopen")
    with CaseBank.open(path, embedder=fake_embedder) as bank:
        store = CaseBankStore(bank, index={"fields": ["text"]})
        store.put(("mem", "ana"), "k1", {"text": "ana likes green tea"})
        store.put(("mem", "ana"), "k2", {"text": "ana lives by the sea"})
    with CaseBank.open(path, embedder=fake_embedder) as bank:
        store = CaseBankStore(bank, index={"fields": ["text"]})
        assert store.get(("mem", "ana"), "k1").value == {"text": "ana likes green tea"}
        assert store.search(("mem",), query="green tea", limit=1)[0].key == "k1"


def test_update_keeps_created_at_and_moves_updated_at(store):
    store.put(("n",), "k", {"text": "one"})
    first = store.get(("n",), "k")
    store.put(("n",), "k", {"text": "two"})
    second = store.get(("n",), "k")
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert second.value == {"text": "two"}


def test_emptied_namespaces_and_missed_gets_are_not_listed(store):
    """InMemoryStore lists both (its dict keeps the namespace); a database-backed store should not."""
    store.put(("gone",), "k", {"text": "x"})
    store.delete(("gone",), "k")
    assert store.get(("never", "written"), "k") is None
    store.put(("kept",), "k", {"text": "y"})
    assert store.list_namespaces() == [("kept",)]
    reference = InMemoryStore()
    reference.put(("gone",), "k", {"text": "x"})
    reference.delete(("gone",), "k")
    assert ("gone",) in reference.list_namespaces()


def test_rewritten_item_loses_the_vectors_of_texts_it_no_longer_has(store, bank):
    """InMemoryStore keeps a stale vector for `tags.1` here and still finds the item by 'krill'."""
    store.put(("m",), "k", {"tags": ["whale", "krill"]}, index=["tags[*]"])
    assert bank.count(namespace=("m",)) == 2
    store.put(("m",), "k", {"tags": ["desert"]}, index=["tags[*]"])
    assert bank.count(namespace=("m",)) == 1
    [hit] = store.search(("m",), query="krill")
    assert hit.score < 0.5


def test_agent_cases_are_invisible_to_the_store(store, bank):
    bank.add(Case(namespace=("docs",), task="red fox agent episode", answer="x"))
    bank.add(Case(namespace=("only", "agent"), task="another episode"))
    store.put(("docs",), "k", {"text": "red fox memory"})
    assert [i.key for i in store.search(("docs",), query="red fox agent episode")] == ["k"]
    assert store.list_namespaces() == [("docs",)]
    assert bank.get(item_id(("docs",), "k")).metadata["store_part"] == 0


def test_a_bad_value_fails_the_batch_and_stores_nothing(store, bank):
    with pytest.raises(ValidationError, match="not JSON"):
        store.batch([PutOp(("n",), "good", {"text": "fine"}), PutOp(("n",), "bad", {"when": object()})])
    assert len(bank) == 0


def test_configuration_errors_name_the_fix(bank):
    with pytest.raises(ValidationError, match="bank's embedder"):
        CaseBankStore(bank, index={"embed": lambda texts: [[0.0]] * len(texts), "dims": 1})
    with pytest.raises(ValidationError, match=f"pass {bank.dim}"):
        CaseBankStore(bank, index={"dims": bank.dim + 1})
    with pytest.raises(ValidationError, match="unknown store operation"):
        CaseBankStore(bank).batch(["not an op"])


def test_labels_are_checked_even_in_raw_batches(store):
    with pytest.raises(InvalidNamespaceError):
        store.batch([GetOp(("a.b",), "k")])


def test_namespace_escaping_round_trips():
    for ns in [("a/b", "%2F", "100%"), ("plain",), ("日本/語",)]:
        assert decode_namespace(encode_namespace(ns)) == ns
        assert all("/" not in label for label in encode_namespace(ns))


def test_a_graph_compiled_with_the_store_reads_and_writes_it(store):
    class State(TypedDict, total=False):
        user: str
        note: str
        recalled: list[str]

    def remember(state: State, *, store: BaseStore) -> dict:
        store.put(("notes", state["user"]), str(len(store.search(("notes", state["user"])))), {"text": state["note"]})
        return {"recalled": [i.value["text"] for i in store.search(("notes", state["user"]), query=state["note"])]}

    graph = StateGraph(State)
    graph.add_node("remember", remember)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", END)
    app = graph.compile(store=store)
    app.invoke({"user": "ana", "note": "ana likes green tea"})
    out = app.invoke({"user": "ana", "note": "green tea again"})
    assert out["recalled"] == ["green tea again", "ana likes green tea"]
    assert len(store.search(("notes", "ana"))) == 2


@pytest.mark.slow
def test_semantic_search_with_the_real_embedder(tmp_path, real_embedder):
    with CaseBank(tmp_path / "real.db", embedder=real_embedder) as bank:
        store = CaseBankStore(bank, index={"fields": ["text"]})
        store.put(("prefs",), "drink", {"text": "The user prefers green tea over coffee."})
        store.put(("prefs",), "home", {"text": "The user lives in a flat near the harbour."})
        store.put(("prefs",), "work", {"text": "The user is a software engineer at a bank."})
        hits = store.search(("prefs",), query="What does the user like to drink?")
        assert hits[0].key == "drink" and hits[0].score > hits[1].score


def test_threads_putting_the_same_keys_do_not_collide(store):
    from concurrent.futures import ThreadPoolExecutor

    def put(i):
        store.put(("race",), f"k{i % 3}", {"text": f"value {i}"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(put, range(12)))
    assert sorted(i.key for i in store.search(("race",))) == ["k0", "k1", "k2"]
