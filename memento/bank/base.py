"""`BankBase`: the rules every backend shares, over a few storage primitives each backend writes.

Validation, batching, the update merge, error messages and JSONL in/out live here once, so a
`CaseBank` (SQLite + FAISS) and a `PostgresBank` (PostgreSQL + pgvector) refuse the same input
with the same message and leave stored data alone in the same cases. A backend implements the
underscored primitives below (and the rest of `memento.bank.interface.Bank`).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from memento.bank.arguments import check_filters, check_flag, check_k, check_page
from memento.bank.interface import SearchHit
from memento.bank.jsonl import cases_to_import, export_cases
from memento.case import Case, utc_now, validate_case
from memento.embedders import DEFAULT_MODEL_NAME, Embedder, as_query_matrix, default_embedder
from memento.errors import EmbedderMismatchError, NotFoundError, ValidationError

ORDER_BY = ("created_at", "updated_at", "reward", "id", "task")
"""Columns iter_cases may order by (never user text in SQL)."""


def has_filters(namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> bool:
    """True when any case filter is set."""
    return namespace is not None or namespace_prefix is not None or bool(where) or any(
        v is not None for v in filters.values())


class BankBase:
    """Backend-neutral methods of a bank; subclasses set `path`, `dim`, `embedder_name`, `_embedder`."""

    path: Any
    dim: int
    embedder_name: str
    _embedder: Embedder | None

    # -- primitives a backend implements ---------------------------------------------------------

    def _first_existing(self, ids: list[str]) -> str | None:
        """One of `ids` the bank already holds, or None."""
        raise NotImplementedError

    def _insert(self, cases: list[Case], vectors: np.ndarray) -> None:
        """Store validated new cases with their vectors, in one transaction."""
        raise NotImplementedError

    def _replace(self, case_id: str, merge: Callable[[Case], Case], new_vector: np.ndarray | None) -> Case:
        """In one transaction: lock case `case_id`, store `merge(stored case)` in its place (keeping its vector
        when `new_vector` is None) and return it; NotFoundError if the case is gone."""
        raise NotImplementedError

    def _cases_by_id(self, ids: list[str]) -> dict[str, Case]:
        raise NotImplementedError

    def _vectors_by_id(self, ids: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _search(self, vector: np.ndarray, k: int, filters: dict[str, Any] | None, with_vectors: bool) -> list[SearchHit]:
        """Top-k hits for one (1, dim) query; `filters` (None for none) restrict the search itself."""
        raise NotImplementedError

    def _select(self, filters: dict[str, Any], order_by: str, descending: bool, limit: int | None,
                offset: int) -> list[Case]:
        raise NotImplementedError

    # -- embedding -------------------------------------------------------------------------------

    def _check_embedder(self, embedder: Embedder | None) -> Embedder | None:
        """`embedder` if it is the bank's (None: the packaged default, loaded on first use), else EmbedderMismatchError."""
        if embedder is None:
            if self.embedder_name != DEFAULT_MODEL_NAME:
                raise EmbedderMismatchError(
                    f"bank '{self.path}' was created with embedder {self.embedder_name!r} (dim {self.dim}); "
                    f"open it with that embedder: CaseBank.open(location, embedder=...)"
                )
            return None  # the default is loaded on first use: opening a bank should not cost a model load
        if embedder.name != self.embedder_name or embedder.dim != self.dim:
            raise EmbedderMismatchError(
                f"embedder {embedder.name!r} (dim {embedder.dim}) does not match bank '{self.path}', created with "
                f"{self.embedder_name!r} (dim {self.dim}); open it with the embedder it was built with, "
                f"or re-embed with `memento cases reindex --re-embed`"
            )
        return embedder

    @property
    def embedder(self) -> Embedder:
        """The bank's embedder (the packaged default is loaded on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the bank's embedder: (n, dim) unit-length float32."""
        vectors = self.embedder.embed(list(texts))
        return as_query_matrix(vectors, self.dim, what="embedder output") if len(texts) else vectors

    # -- writes ----------------------------------------------------------------------------------

    def add(self, case: Case | dict, *, vector: np.ndarray | None = None) -> Case:
        """Add one case; embeds its task unless `vector` is given. Returns the stored case."""
        return self.add_many([case], vectors=None if vector is None else np.asarray(vector)[None, :])[0]

    def add_many(self, cases: Iterable[Case | dict], *, vectors: np.ndarray | None = None,
                 batch_size: int = 256, progress: bool = False) -> list[Case]:
        """Add cases, one transaction per batch; embeds tasks in batches unless `vectors` are given.

        Every case is validated before anything is written. When a later batch fails,
        the earlier batches stay stored (each was committed); the failing one leaves nothing.
        """
        cases = [validate_case(c, where=f"case {i}: ") for i, c in enumerate(cases)]
        if vectors is not None:
            vectors = as_query_matrix(vectors, self.dim, what="vectors")
            if len(vectors) != len(cases):
                raise ValidationError(f"got {len(vectors)} vectors for {len(cases)} cases; pass one vector per case")
        self._check_new_ids([c.id for c in cases])
        batches = range(0, len(cases), batch_size)
        if progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc="adding cases", unit="batch")
        for start in batches:
            chunk = cases[start:start + batch_size]
            chunk_vectors = vectors[start:start + batch_size] if vectors is not None else self.embed([c.task for c in chunk])
            self._insert(chunk, chunk_vectors)
        return cases

    def _check_new_ids(self, ids: list[str]) -> None:
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise ValidationError(f"case id {duplicate!r} appears twice in one add; give each case its own id")
        existing = self._first_existing(ids) if ids else None
        if existing is not None:
            raise ValidationError(f"case id {existing!r} is already in the bank; use update() to change it")

    def update(self, case_id: str, *, vector: np.ndarray | None = None, **fields: Any) -> Case:
        """Change fields of a stored case; a new task text (or a given vector) re-embeds it."""
        if "id" in fields and fields["id"] != case_id:
            raise ValidationError("a case's id cannot change; add a new case and delete the old one instead")
        unknown = set(fields) - set(Case.model_fields)
        if unknown:
            raise ValidationError(f"unknown case field(s) {sorted(unknown)}; fields are {sorted(Case.model_fields)}")

        def merge(stored: Case) -> Case:
            # Applied again onto the row as it is inside the write, so a concurrent update of other fields is kept.
            return Case(**{**stored.model_dump(), **fields, "updated_at": fields.get("updated_at", utc_now())})

        old = self.get(case_id)
        new = merge(old)  # validates every field before anything is embedded or written
        if vector is not None:
            new_vector = as_query_matrix(vector, self.dim, what="vector")[0]
        elif new.task != old.task:
            new_vector = self.embed([new.task])[0]
        else:
            new_vector = None
        return self._replace(case_id, merge, new_vector)

    def delete(self, case_id: str) -> None:
        """Delete one case; NotFoundError if it is not there."""
        self.delete_many([case_id])

    def delete_where(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """Delete every case matching the filters (at least one filter is required)."""
        if not has_filters(namespace, namespace_prefix, where, **filters):
            raise ValidationError("delete_where() needs at least one filter; to empty the bank, delete its file")
        ids = [c.id for c in self.iter_cases(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters)]
        return self.delete_many(ids, missing_ok=True)

    def _missing(self, missing: list[str], what: str) -> NotFoundError:
        """The error for ids not in the bank, naming the first one."""
        return NotFoundError(f"case {missing[0]!r} is not in bank '{self.path}'"
                             + (f" (nor {len(missing) - 1} other ids)" if len(missing) > 1 else "") + what)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, case_id: str) -> Case:
        """The case with this id; NotFoundError if there is none."""
        return self.get_many([case_id])[0]

    def get_many(self, ids: Sequence[str]) -> list[Case]:
        """Cases in the order of `ids`; NotFoundError naming the first missing id."""
        found = self._cases_by_id(list(ids))
        for case_id in ids:
            if case_id not in found:
                raise NotFoundError(f"case {case_id!r} is not in bank '{self.path}'; list ids with `memento cases ls`")
        return [found[i] for i in ids]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored embeddings of these cases, (len(ids), dim) float32, in order."""
        ids = list(ids)
        found = self._vectors_by_id(ids)
        for case_id in ids:
            if case_id not in found:
                raise NotFoundError(f"case {case_id!r} is not in bank '{self.path}'")
        return np.stack([found[i] for i in ids]) if ids else np.zeros((0, self.dim), dtype=np.float32)

    def search(self, query: str | np.ndarray, k: int = 8, *, namespace=None, namespace_prefix=None,
               where: dict[str, Any] | None = None, with_vectors: bool = False, **filters: Any) -> list[SearchHit]:
        """The k cases most similar to the query (text, or a vector from the bank's embedder).

        Filters (namespace, metadata `where`, reward range, ...) restrict the search itself,
        so k hits come back whenever k cases match.
        """
        k = check_k(k)
        chosen = check_filters(dict(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters))
        vector = self.embed([query]) if isinstance(query, str) else as_query_matrix(query, self.dim)
        return self._search(vector, k, chosen if has_filters(**chosen) else None, check_flag("with_vectors", with_vectors))

    def iter_cases(self, *, namespace=None, namespace_prefix=None, where: dict | None = None,
                   order_by: str = "created_at", descending: bool = False, limit: int | None = None,
                   offset: int = 0, **filters: Any) -> Iterator[Case]:
        """Cases matching the filters (min_reward, max_reward, text, since, until, ids), in order.

        The arguments are checked when this is called, not when the iterator is first advanced.
        """
        if not isinstance(order_by, str) or order_by not in ORDER_BY:
            raise ValidationError(f"order_by={order_by!r:.80}; choose created_at, updated_at, reward, id or task")
        chosen = check_filters(dict(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters))
        limit, offset = check_page(limit, offset)
        return iter(self._select(chosen, order_by, check_flag("descending", descending), limit, offset))

    def __len__(self) -> int:
        return self.count()

    # -- JSONL in/out ----------------------------------------------------------------------------

    def export_jsonl(self, destination: str | Path | IO[str], *, with_vectors: bool = False, **filters: Any) -> int:
        """Write matching cases as JSON lines (optionally with their embeddings). Returns the count."""
        check_filters(filters)  # before the destination is opened (and emptied)
        return export_cases(self, destination, with_vectors=check_flag("with_vectors", with_vectors), **filters)

    def import_jsonl(self, source: str | Path | IO[str], *, skip_bad_lines: bool = False,
                     on_conflict: str = "error") -> int:
        """Import cases from JSON lines, all in one transaction. Returns how many were added.

        A malformed line fails the whole import (naming the line) unless `skip_bad_lines`.
        `on_conflict` ('error' or 'skip') says what to do with an id the bank already has.
        Lines with an "embedding" of this bank's dimension are not re-embedded.
        """
        cases, vectors = cases_to_import(self, source, skip_bad_lines=skip_bad_lines, on_conflict=on_conflict)
        if cases:
            self._insert(cases, vectors)
        return len(cases)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
