"""Operation sequences the conformance suite runs against both stores.

Each scenario takes a store, runs ops through the public BaseStore API and returns what the ops
returned, in order. Texts are chosen so that the fake embedder gives no tied scores.
"""

from __future__ import annotations

from langgraph.store.base import GetOp, ListNamespacesOp, MatchCondition, PutOp, SearchOp

DOCS = [
    ("a1", {"text": "the red fox jumps over the fence", "kind": "animal", "n": 3, "tags": ["fox", "red"]}),
    ("a2", {"text": "a slow green turtle walks home", "kind": "animal", "n": 7, "tags": ["turtle"]}),
    ("p1", {"text": "python code for parsing json files", "kind": "code", "n": 1, "meta": {"lang": "py", "v": 3}}),
    ("p2", {"text": "rust code for fast json parsing", "kind": "code", "n": 9, "meta": {"lang": "rs", "v": 1}}),
    ("q1", {"text": "a recipe for red tomato soup", "kind": "food", "n": 5, "meta": {"lang": "en", "v": 2}}),
]


def fill(store, namespace=("docs",)):
    for key, value in DOCS:
        store.put(namespace, key, value)


def put_get_and_missing(store):
    fill(store)
    return [store.get(("docs",), "p1"), store.get(("docs",), "nope"), store.get(("other",), "p1")]


def non_ascii(store):
    ns = ("usuários", "日本語", "a/b%c")
    store.put(ns, "clé é", {"text": "café con leche ☕ y churros", "emoji": "🦊"})
    store.put(ns, "键", {"text": "中文 文本 搜索", "n": 2})
    store.put(("usuários",), "ß", {"text": "straße"})
    return [
        store.get(ns, "clé é"), store.get(ns, "键"),
        store.search(("usuários",)), store.search(("usuários", "日本語")),
        store.search(("usuários",), query="café churros"),
        store.search(ns, filter={"emoji": "🦊"}),
        store.list_namespaces(), store.list_namespaces(prefix=("usuários", "日本語")),
    ]


def updates_keep_place(store):
    fill(store)
    store.put(("docs",), "a2", {"text": "a fast green turtle runs", "kind": "animal", "n": 8})
    return [store.get(("docs",), "a2"), store.search(("docs",)), store.search(("docs",), query="turtle runs fast")]


def deletes(store):
    fill(store)
    store.delete(("docs",), "p1")
    store.delete(("docs",), "never-there")
    store.put(("docs",), "a1", {"text": "the red fox is back", "kind": "animal", "n": 4})  # still in place
    store.delete(("docs",), "a2")
    store.put(("docs",), "a2", {"text": "turtle again", "kind": "animal", "n": 2})  # re-put goes last
    return [store.get(("docs",), "p1"), store.search(("docs",)), store.search(("docs",), query="json code")]


def batch_reads_before_puts(store):
    return [store.batch([
        PutOp(("b",), "k", {"text": "first"}),
        GetOp(("b",), "k"),
        SearchOp(("b",), None, 10, 0, None),
        PutOp(("b",), "k", {"text": "second wins"}),
        PutOp(("b",), "gone", {"text": "put then deleted"}),
        PutOp(("b",), "gone", None),
    ]), store.get(("b",), "k"), store.get(("b",), "gone"), store.search(("b",))]


def pagination(store):
    for i in range(12):
        store.put(("pages",), f"k{i:02d}", {"text": f"page number {i} about item{i}", "i": i})
    return [
        store.search(("pages",), limit=5), store.search(("pages",), limit=5, offset=5),
        store.search(("pages",), limit=5, offset=10), store.search(("pages",), limit=5, offset=20),
        store.search(("pages",), filter={"i": {"$gte": 4}}, limit=3, offset=2),
        store.search(("pages",), query="page number item7", limit=3),
        store.search(("pages",), query="page number item7", limit=3, offset=3),
        store.search(("pages",), query="page item3", filter={"i": {"$lt": 6}}, limit=4, offset=1),
    ]


def filters(store):
    fill(store)
    ns = ("docs",)
    return [store.search(ns, filter=f) for f in [
        {"kind": "code"}, {"kind": "code", "n": 9}, {"kind": "nothing"},
        {"meta": {"lang": "py"}}, {"meta": {"lang": "py", "v": 3}}, {"tags": ["fox", "red"]}, {"tags": ["red"]},
        {"n": {"$gt": 3}}, {"n": {"$gte": 3, "$lte": 7}}, {"n": {"$lt": 3}}, {"kind": {"$ne": "animal"}},
        {"kind": {"$eq": "food"}}, {"missing": None},
    ]]


def namespaces_and_prefixes(store):
    for ns in [("a",), ("a", "b"), ("a", "b", "c"), ("a", "b", "d", "e"), ("a", "c", "f"), ("ab",), ("x", "b", "c")]:
        store.put(ns, "k", {"text": "/".join(ns)})
    return [
        store.search(("a",)), store.search(("a", "b")), store.search(()), store.search(("ab",)),
        store.list_namespaces(), store.list_namespaces(prefix=("a",)), store.list_namespaces(prefix=("a", "b")),
        store.list_namespaces(suffix=("c",)), store.list_namespaces(prefix=("*", "b")),
        store.list_namespaces(prefix=("a",), suffix=("c",)), store.list_namespaces(max_depth=2),
        store.list_namespaces(prefix=("a",), max_depth=2), store.list_namespaces(limit=2, offset=1),
        store.batch([ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("a", "*", "c")),))]),
    ]


def semantic_search(store):
    fill(store)
    store.put(("docs", "sub"), "s1", {"text": "a red fox in the city", "kind": "animal"})
    return [
        store.search(("docs",), query="red fox"), store.search(("docs",), query="json parsing code", limit=2),
        store.search(("docs",), query="red", filter={"kind": "animal"}),
        store.search(("docs", "sub"), query="fox"), store.search(("docs",), query="zzz unknown words"),
    ]


def unindexed_items_fill_the_page(store):
    store.put(("u",), "idx1", {"text": "green apple pie"})
    store.put(("u",), "raw", {"text": "green apple tart"}, index=False)
    store.put(("u",), "notext", {"title": "no text field"})
    store.put(("u",), "idx2", {"text": "blue whale song"})
    return [store.search(("u",), query="green apple", limit=10), store.search(("u",), query="green apple", limit=2),
            store.search(("u",), query="green apple", limit=3, offset=1), store.search(("u",), limit=10)]


def several_vectors_per_item(store):
    store.put(("m",), "multi", {"title": "ocean", "body": "deep blue whales sing", "tags": ["krill", "plankton"]},
              index=["title", "body", "tags[*]"])
    store.put(("m",), "single", {"title": "forest", "body": "tall green trees", "tags": ["moss"]},
              index=["title", "body", "tags[*]"])
    store.put(("m",), "plain", {"text": "whales and krill", "title": "sea"})
    found = [store.search(("m",), query=q) for q in ["plankton", "whales sing", "forest moss", "ocean"]]
    # Rewritten with as many texts: InMemoryStore keeps the vectors of paths an update no longer has.
    store.put(("m",), "multi", {"title": "desert", "body": "hot sand dunes", "tags": ["cactus", "camel"]},
              index=["title", "body", "tags[*]"])
    return found + [store.search(("m",), query="plankton"), store.search(("m",), query="sand camel")]


def whole_document_index(store):
    fill(store)
    return [store.search(("docs",), query="turtle walks home"), store.search(("docs",), query="rs json")]


SCENARIOS = {
    "put_get_and_missing": put_get_and_missing,
    "non_ascii": non_ascii,
    "updates_keep_place": updates_keep_place,
    "deletes": deletes,
    "batch_reads_before_puts": batch_reads_before_puts,
    "pagination": pagination,
    "filters": filters,
    "namespaces_and_prefixes": namespaces_and_prefixes,
    "semantic_search": semantic_search,
    "unindexed_items_fill_the_page": unindexed_items_fill_the_page,
    "several_vectors_per_item": several_vectors_per_item,
}
"""Scenarios run with the default index config (fields=['text'])."""

WHOLE_DOCUMENT = {"whole_document_index": whole_document_index}
"""Scenarios run with fields=['$'] (the whole value as one JSON text)."""

UNINDEXED = {"no_index_ignores_query": semantic_search, "no_index_updates": updates_keep_place}
"""Scenarios run on stores without an index config: queries are ignored."""
