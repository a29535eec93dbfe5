"""`CaseBankStore`: a LangGraph `BaseStore` whose items live as cases in a bank (any `memento.bank.Bank`).

    from memento import CaseBank
    from memento.store import CaseBankStore
    store = CaseBankStore(CaseBank("cases.db"), index={"fields": ["text"]})
    shared = CaseBankStore(CaseBank.open("postgresql://host/db"), index={"fields": ["text"]})
    graph = builder.compile(store=store)          # nodes get it as `store` / runtime.store
    store.put(("users", "ana"), "prefs", {"text": "likes short answers"})
    store.search(("users",), query="answer style", filter={"kind": "pref"}, limit=5)

How an item maps onto the bank:
- namespace: the item's namespace is the case's namespace. A label may hold '/' (LangGraph allows
  it, the bank does not), so labels are stored percent-escaped ('%' -> '%25', '/' -> '%2F').
- key: kept in the case's metadata (`store_key`); the case id is a hash of (namespace, key), so
  the bank's primary key makes (namespace, key) unique and a get is one primary-key lookup.
- value: the JSON dict, in the case's metadata (`store_value`); it must be JSON-serialisable. A
  `procedure` key in it is validated as a `memento.procedure.Procedure` and also stored as the
  case's procedure, so an app can write, edit or delete recipes the agent recalls.
- vectors: the texts picked by the `index` fields (as InMemoryStore picks them, with
  `langgraph.store.base.get_text_at_path`) are embedded with the bank's embedder. The first text
  is the case's task; each further text (several fields, or `items[*]`) is a companion case
  `<id>.<n>` holding only that vector. Search ranks every vector and keeps each item's best score
  (max pooling, as InMemoryStore does). Items without text are stored with a placeholder vector
  and never ranked: they fill a semantic page after the ranked items, with score None.
- order: without a query, items come in insertion order (an update keeps an item's place; a
  delete and a new put moves it to the end). Items put in one batch get `created_at` one
  microsecond apart, so insertion order is the bank's `created_at` order.

Cases that were not written through the store (the agent's episodes) are invisible to it, and
store items are marked (`store_part` in metadata) so they are easy to tell apart; keep store
namespaces apart from the namespaces an agent selects cases from.

Unlike InMemoryStore, a namespace whose items are all deleted is no longer listed, a get of a
missing item does not create its namespace, an update keeps `created_at`, and an update that
indexes fewer texts drops the vectors of the texts it no longer has. Puts from threads of one
process are serialised; two processes putting the same new key at once can make one of them fail.
Filters are evaluated in Python over the items under the namespace prefix (equality, nested
dicts, lists, and $eq/$ne/$gt/$gte/$lt/$lte), so a filtered search reads that whole prefix.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import numpy as np
import pydantic
from langgraph.store.base import (
    BaseStore, GetOp, Item, ListNamespacesOp, MatchCondition, Op, PutOp, Result, SearchItem, SearchOp,
    get_text_at_path, tokenize_path, validate_op_namespace,
)

from memento.bank import Bank
from memento.bank.arguments import check_unicode
from memento.case import Case
from memento.errors import ValidationError
from memento.procedure import Procedure

KEY = "store_key"
VALUE = "store_value"
PART = "store_part"
PARTS = "store_parts"
PROCEDURE = "procedure"
"""An item value's key for a procedure (memento.procedure.Procedure as JSON), stored as the case's own."""
INDEXED = "store_indexed"


class CaseBankStore(BaseStore):
    """A LangGraph store over a case bank: items are cases, semantic search runs on the bank's FAISS index."""

    supports_ttl = False

    def __init__(self, bank: Bank, *, index: dict[str, Any] | None = None):
        """`index` is LangGraph's index config: {"fields": [...paths], "dims": optional check}.

        Texts are embedded with the bank's embedder, so "embed" cannot be given: create the bank
        with the embedder you want (`CaseBank(path, embedder=...)`). Without `index`, search
        ignores `query`, as InMemoryStore does.
        """
        self.bank = bank
        self.index_config = _check_index(index, bank)
        self._fields = [(p, tokenize_path(p) if p != "$" else p) for p in (self.index_config or {}).get("fields") or ["$"]]
        self._clock_lock = threading.Lock()
        # A put reads what exists, then writes: two threads putting one key must not both see it missing.
        self._write_lock = threading.Lock()
        self._last_stamp = datetime.min.replace(tzinfo=timezone.utc)

    # ------------------------------------------------------------------ the one entry point

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ops in order; reads see the store as it was before this batch's puts (as InMemoryStore)."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
            _check_text(op)
        results: list[Result] = []
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            elif isinstance(op, PutOp):
                puts[(tuple(op.namespace), op.key)] = op  # the last put of a key wins
                results.append(None)
            else:
                raise ValidationError(f"unknown store operation {type(op).__name__}; use GetOp, PutOp, SearchOp or ListNamespacesOp")
        if puts:
            with self._write_lock:
                self._apply_puts(list(puts.values()))
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of `batch` (SQLite and the embedder are synchronous: runs in a worker thread)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # ------------------------------------------------------------------------------ reads

    def _get(self, op: GetOp) -> Item | None:
        found = list(self.bank.iter_cases(ids=[item_id(op.namespace, op.key)]))
        if not found or found[0].metadata.get(KEY) != op.key:
            return None
        return _item(found[0])

    def _items_under(self, prefix: Sequence[str], *, limit: int | None = None, offset: int = 0) -> list[Case]:
        """Store items (not companion vectors) under a namespace prefix, in insertion order."""
        return list(self.bank.iter_cases(namespace_prefix=encode_namespace(prefix) if prefix else None,
                                         where={PART: 0}, order_by="created_at", limit=limit, offset=offset))

    def _search(self, op: SearchOp) -> list[SearchItem]:
        semantic = bool(op.query) and self.index_config is not None
        if not op.filter and not semantic:
            if op.limit < 0 or op.offset < 0:  # a slice counts negative bounds from the end
                return [_item(c, search=True) for c in self._items_under(op.namespace_prefix)[op.offset:op.offset + op.limit]]
            return [_item(c, search=True) for c in self._items_under(op.namespace_prefix, limit=op.limit, offset=op.offset)]
        items = [c for c in self._items_under(op.namespace_prefix)
                 if not op.filter or matches_filter(c.metadata[VALUE], op.filter)]
        if not semantic:
            return [_item(c, search=True) for c in items[op.offset:op.offset + op.limit]]
        return self._ranked(op, items)

    def _ranked(self, op: SearchOp, items: list[Case]) -> list[SearchItem]:
        """Max-pooled cosine ranking over each item's vectors; unindexed items fill the page after."""
        indexed = {c.id: c for c in items if c.metadata.get(INDEXED)}
        scoreless = [c for c in items if not c.metadata.get(INDEXED)]
        kept: list[tuple[float | None, Case]] = []
        if indexed and op.limit > 0:
            best = self._best_scores(op.query, indexed, op.offset + op.limit)
            # Equal scores keep insertion order, as InMemoryStore's stable sort does.
            order = sorted(best, key=lambda cid: (-round(best[cid], 6), indexed[cid].created_at))
            kept = [(best[cid], indexed[cid]) for cid in order[op.offset:op.offset + op.limit]]
        if scoreless and len(kept) < op.limit:
            kept += [(None, c) for c in scoreless[: op.limit - len(kept)]]
        return [_item(c, search=True, score=score) for score, c in kept]

    def _best_scores(self, query: str, indexed: dict[str, Case], wanted: int) -> dict[str, float]:
        """Each item's best cosine score, for at least the top `wanted` items and everything tied with them."""
        vector_ids = [f"{cid}.{n}" if n else cid for cid, c in indexed.items() for n in range(c.metadata[PARTS])]
        widest = max(c.metadata[PARTS] for c in indexed.values())
        query_vector = self.bank.embed([query])[0]
        # Each item has at most `widest` vectors, so this many hits hold `wanted` distinct items.
        k = min(len(vector_ids), wanted * widest)
        while True:
            hits = self.bank.search(query_vector, k=k, ids=vector_ids)
            best: dict[str, float] = {}
            for hit in hits:
                best.setdefault(hit.case.id.split(".", 1)[0], hit.score)
            tied_at_cut = len(hits) == k and round(hits[-1].score, 6) >= round(sorted(best.values())[-min(wanted, len(best))], 6)
            if k >= len(vector_ids) or not tied_at_cut:
                return best
            k = min(len(vector_ids), 2 * k)

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        stored = {decode_namespace(c.namespace) for c in self.bank.iter_cases(where={PART: 0})}
        found = [ns for ns in stored if all(_namespace_matches(cond, ns) for cond in op.match_conditions or ())]
        if op.max_depth is not None:
            found = {ns[: op.max_depth] for ns in found}
        return sorted(found)[op.offset: op.offset + op.limit]

    # ----------------------------------------------------------------------------- writes

    def _apply_puts(self, puts: list[PutOp]) -> None:
        """Deletes and writes of one batch: everything is validated and embedded before the first write."""
        ids = [item_id(p.namespace, p.key) for p in puts]
        existing = {c.id: c for c in self.bank.iter_cases(ids=ids) if c.metadata.get(PART) == 0}
        stale: list[str] = []  # cases to delete: removed items, and old companion vectors of rewritten ones
        for put, cid in zip(puts, ids):
            if cid in existing:
                old = existing[cid]
                stale += [f"{cid}.{n}" for n in range(1, old.metadata.get(PARTS, 1))]
                if put.value is None:
                    stale.append(cid)
        writes = [(p, cid) for p, cid in zip(puts, ids) if p.value is not None]
        texts = [self._texts(p) for p, _ in writes]
        flat = [t for item_texts in texts for t in item_texts]
        vectors = iter(self.bank.embed(flat) if flat else [])
        now = _utc_now()
        stamps = self._stamps(sum(cid not in existing for _, cid in writes))
        new_cases, new_vectors, updates = [], [], []
        for (put, cid), item_texts in zip(writes, texts):
            value = _json_value(put)
            procedure = _procedure_of(put, value)
            first = next(vectors) if item_texts else _placeholder(self.bank.dim)
            meta = {KEY: put.key, VALUE: value, PART: 0, PARTS: max(1, len(item_texts)), INDEXED: bool(item_texts)}
            task = _display(item_texts[0] if item_texts else f"store item {put.key}")
            if cid in existing:
                updates.append((cid, first, dict(task=task, metadata=meta, updated_at=now, procedure=procedure)))
            else:
                new_cases.append(Case(id=cid, namespace=encode_namespace(put.namespace), task=task, metadata=meta,
                                      created_at=next(stamps), updated_at=now, procedure=procedure))
                new_vectors.append(first)
            for n, text in enumerate(item_texts[1:], start=1):
                new_cases.append(Case(id=f"{cid}.{n}", namespace=encode_namespace(put.namespace), task=_display(text),
                                      metadata={KEY: put.key, PART: n, INDEXED: True}, created_at=now, updated_at=now))
                new_vectors.append(next(vectors))
        if stale:
            self.bank.delete_many(stale, missing_ok=True)
        for cid, vector, fields in updates:
            self.bank.update(cid, vector=vector, **fields)
        if new_cases:
            self.bank.add_many(new_cases, vectors=np.stack(new_vectors))

    def _texts(self, put: PutOp) -> list[str]:
        """The texts to embed for one put, picked as InMemoryStore picks them."""
        if self.index_config is None or put.index is False:
            return []
        paths = self._fields if put.index is None else [(p, tokenize_path(p)) for p in put.index]
        return [text for _, path in paths for text in get_text_at_path(put.value, path)]

    def _stamps(self, n: int) -> Iterable[datetime]:
        """`n` increasing creation times, after any this store handed out before (insertion order)."""
        with self._clock_lock:
            start = max(_utc_now(), self._last_stamp + timedelta(microseconds=1))
            self._last_stamp = start + timedelta(microseconds=max(n - 1, 0))
        return (start + timedelta(microseconds=i) for i in range(n))

    def __repr__(self) -> str:
        return f"CaseBankStore({self.bank!r}, index={self.index_config!r})"


# ------------------------------------------------------------------------------------ helpers


def _procedure_of(put: PutOp, value: dict[str, Any]) -> Procedure | None:
    """The item's `procedure` value as the case's procedure, validated (an app can hand the agent a recipe)."""
    if PROCEDURE not in value:
        return None
    try:
        return Procedure.model_validate(value[PROCEDURE])
    except pydantic.ValidationError as error:
        raise ValidationError(f"item {put.key!r}: value['procedure'] is not a procedure: "
                              f"{error.errors()[0]['msg']} at {'.'.join(map(str, error.errors()[0]['loc'])) or 'top'}; "
                              f"see memento.procedure.Procedure for its fields") from None


def _check_text(op: Op) -> None:
    """Refuse a key that is not a string, and a key or label that is not valid Unicode (the bank stores UTF-8)."""
    key = getattr(op, "key", None)
    if key is not None and not isinstance(key, str):
        raise ValidationError(f"store key {key!r:.80} is a {type(key).__name__}; keys are strings, e.g. str({key!r:.40})")
    labels = getattr(op, "namespace", None) or getattr(op, "namespace_prefix", None) or ()
    for text in [*(labels if isinstance(labels, (tuple, list)) else ()), *([key] if key is not None else [])]:
        if isinstance(text, str):
            check_unicode("store key or namespace label", text)


def item_id(namespace: Sequence[str], key: str) -> str:
    """The case id of the item at (namespace, key): a hash, so any key fits the bank's id rules."""
    digest = hashlib.sha256(json.dumps([list(namespace), key], ensure_ascii=False).encode()).hexdigest()
    return f"store-{digest[:40]}"


def encode_namespace(namespace: Sequence[str]) -> tuple[str, ...]:
    """LangGraph labels as bank labels: '%' and '/' percent-escaped (the bank joins labels with '/')."""
    return tuple(label.replace("%", "%25").replace("/", "%2F") for label in namespace)


def decode_namespace(namespace: Sequence[str]) -> tuple[str, ...]:
    """The inverse of `encode_namespace`."""
    return tuple(label.replace("%2F", "/").replace("%25", "%") for label in namespace)


def matches_filter(value: Any, condition: Any) -> bool:
    """Whether a stored value meets a filter: equality, nested dicts, lists, or $eq/$ne/$gt/$gte/$lt/$lte."""
    if isinstance(condition, dict):
        if any(k.startswith("$") for k in condition):
            return all(_compare(value, op, operand) for op, operand in condition.items())
        return isinstance(value, dict) and all(matches_filter(value.get(k), v) for k, v in condition.items())
    if isinstance(condition, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(condition)
                and all(matches_filter(v, c) for v, c in zip(value, condition)))
    return value == condition


_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: float(a) > float(b),
    "$gte": lambda a, b: float(a) >= float(b),
    "$lt": lambda a, b: float(a) < float(b),
    "$lte": lambda a, b: float(a) <= float(b),
}


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if operator not in _OPERATORS:
        raise ValidationError(f"filter operator {operator!r} is not supported; use one of {sorted(_OPERATORS)}")
    if value is None and operator not in ("$eq", "$ne"):
        return False  # a missing field is neither above nor below anything
    return _OPERATORS[operator](value, operand)


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    pairs = zip(namespace, path) if condition.match_type == "prefix" else zip(reversed(namespace), reversed(path))
    if condition.match_type not in ("prefix", "suffix"):
        raise ValidationError(f"namespace match type {condition.match_type!r} is not 'prefix' or 'suffix'")
    return all(p == "*" or n == p for n, p in pairs)


def _item(case: Case, *, search: bool = False, score: float | None = None) -> Item:
    fields = dict(namespace=decode_namespace(case.namespace), key=case.metadata[KEY], value=case.metadata[VALUE],
                  created_at=case.created_at, updated_at=case.updated_at)
    if search:
        return SearchItem(**fields, score=None if score is None else float(score))
    return Item(**fields)


def _json_value(put: PutOp) -> dict[str, Any]:
    if not isinstance(put.value, dict):
        raise ValidationError(f"the value for key {put.key!r} in {put.namespace} is a {type(put.value).__name__}, "
                              f"not a dict; store items as dicts, e.g. {{'text': ...}}")
    value = dict(put.value)
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the value for key {put.key!r} in {put.namespace} is not JSON ({exc}); "
                              f"store plain dicts, lists, strings, numbers, booleans and None") from None
    return value


def _check_index(index: dict[str, Any] | None, bank: Bank) -> dict[str, Any] | None:
    if index is None:
        return None
    if index.get("embed") is not None:
        raise ValidationError("CaseBankStore embeds with the bank's embedder, so index['embed'] cannot be given; "
                              "open the bank with the embedder you want: CaseBank(path, embedder=...)")
    if index.get("dims") is not None and int(index["dims"]) != bank.dim:
        raise ValidationError(f"index dims={index['dims']} but bank '{bank.path}' has dim {bank.dim}; "
                              f"leave dims out or pass {bank.dim}")
    return {**index, "dims": bank.dim}


def _placeholder(dim: int) -> np.ndarray:
    """The vector of an item with nothing to embed: never ranked, but the bank stores one per case."""
    vector = np.zeros(dim, dtype=np.float32)
    vector[0] = 1.0
    return vector


def _display(text: str) -> str:
    return text if text.strip() else "(blank text)"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)
