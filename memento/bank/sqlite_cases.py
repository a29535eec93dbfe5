"""Case rows of a SQLite bank: add, update, delete, read, filter and search.

Mixed into `CaseBank`. Writes go through `ChangeLogIndex._transaction`, so the FAISS index and
the change log follow every committed change; search results are read back from SQLite, so a
case deleted meanwhile is never returned. Filters are built by `schema.filter_sql`: keys are
checked against a strict pattern and values are bound, never spliced into SQL.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from memento.bank.interface import SearchHit
from memento.bank.schema import CASE_FIELDS, INSERT_CASE, SELECT_CASE, blob_to_vector, case_to_row, filter_sql, row_to_case
from memento.case import Case, utc_now, validate_case
from memento.embedders import as_query_matrix
from memento.errors import NotFoundError, ValidationError


class SQLiteCases:
    """The case methods of the `Bank` interface over the `cases` table and the FAISS index."""

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
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            row = self.db.execute(f"SELECT id FROM cases WHERE id IN ({','.join('?' * len(chunk))}) LIMIT 1",
                                  chunk).fetchone()
            if row:
                raise ValidationError(f"case id {row[0]!r} is already in the bank; use update() to change it")

    def _insert(self, cases: list[Case], vectors: np.ndarray) -> None:
        with self._transaction() as changes:
            vids = self._new_vids(len(cases))
            try:
                self.db.conn.executemany(
                    INSERT_CASE,
                    [case_to_row(c, v, vec) for c, v, vec in zip(cases, vids, vectors)])
            except sqlite3.IntegrityError as exc:
                raise ValidationError(f"a case id in this batch is already in the bank ({exc}); use update() to change it") from None
            changes.added(vids, vectors)

    def update(self, case_id: str, *, vector: np.ndarray | None = None, **fields: Any) -> Case:
        """Change fields of a stored case; a new task text (or a given vector) re-embeds it."""
        if "id" in fields and fields["id"] != case_id:
            raise ValidationError("a case's id cannot change; add a new case and delete the old one instead")
        unknown = set(fields) - set(Case.model_fields)
        if unknown:
            raise ValidationError(f"unknown case field(s) {sorted(unknown)}; fields are {sorted(Case.model_fields)}")
        old = self.get(case_id)
        new = Case(**{**old.model_dump(), **fields, "updated_at": fields.get("updated_at", utc_now())})
        if vector is not None:
            new_vector = as_query_matrix(vector, self.dim, what="vector")[0]
        elif new.task != old.task:
            new_vector = self.embed([new.task])[0]
        else:
            new_vector = None
        with self._transaction() as changes:
            row = self.db.execute("SELECT vid, embedding FROM cases WHERE id = ?", [case_id]).fetchone()
            if row is None:
                raise NotFoundError(f"case {case_id!r} was deleted while it was being updated")
            vid, blob = row
            if new_vector is not None:  # a new vector gets a new vid, so every process can replay the change
                changes.deleted([vid])
                vid = self._new_vids(1)[0]
                changes.added([vid], new_vector[None, :])
            self.db.execute("DELETE FROM cases WHERE id = ?", [case_id])
            self.db.execute(INSERT_CASE,
                            case_to_row(new, vid, new_vector if new_vector is not None else blob_to_vector(blob, self.dim)))
        return new

    def delete(self, case_id: str) -> None:
        """Delete one case; NotFoundError if it is not there."""
        self.delete_many([case_id])

    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False) -> int:
        """Delete cases by id in one transaction; any unknown id fails the whole call unless missing_ok."""
        ids = list(dict.fromkeys(ids))
        with self._transaction() as changes:
            found = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found.update(self.db.execute(
                    f"SELECT id, vid FROM cases WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
            missing = [i for i in ids if i not in found]
            if missing and not missing_ok:
                raise NotFoundError(f"case {missing[0]!r} is not in bank '{self.path}'"
                                    + (f" (nor {len(missing) - 1} other ids)" if len(missing) > 1 else "")
                                    + "; nothing was deleted")
            self.db.conn.executemany("DELETE FROM cases WHERE id = ?", [(i,) for i in found])
            changes.deleted(found.values())
        return len(found)

    def delete_where(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """Delete every case matching the filters (at least one filter is required)."""
        if namespace is None and namespace_prefix is None and not where and not any(v is not None for v in filters.values()):
            raise ValidationError("delete_where() needs at least one filter; to empty the bank, delete its file")
        ids = [c.id for c in self.iter_cases(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters)]
        return self.delete_many(ids, missing_ok=True)

    # ----------------------------------------------------------------- reads

    def get(self, case_id: str) -> Case:
        """The case with this id; NotFoundError if there is none."""
        return self.get_many([case_id])[0]

    def get_many(self, ids: Sequence[str]) -> list[Case]:
        """Cases in the order of `ids`; NotFoundError naming the first missing id."""
        found = self._cases_by("id", list(ids))
        for case_id in ids:
            if case_id not in found:
                raise NotFoundError(f"case {case_id!r} is not in bank '{self.path}'; list ids with `memento cases ls`")
        return [found[i] for i in ids]

    def _cases_by(self, column: str, keys: list) -> dict:
        out: dict = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = self.db.conn.execute(f"SELECT {column}, {CASE_FIELDS} FROM cases "
                                       f"WHERE {column} IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                for row in rows:
                    out[row[0]] = row_to_case(row[1:])
        return out

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored embeddings of these cases, (len(ids), dim) float32, in order."""
        ids = list(ids)
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for case_id, blob in self.db.execute(
                        f"SELECT id, embedding FROM cases WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                    found[case_id] = blob_to_vector(blob, self.dim)
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
        if k < 1:
            raise ValidationError(f"k={k} must be at least 1")
        vector = self.embed([query]) if isinstance(query, str) else as_query_matrix(query, self.dim)
        with self._lock:
            self._sync()
            allowed = None
            if namespace is not None or namespace_prefix is not None or where or any(v is not None for v in filters.values()):
                clause, params = filter_sql(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters)
                allowed = np.array([r[0] for r in self.db.execute(f"SELECT vid FROM cases{clause}", params)], dtype=np.int64)
                if not len(allowed):
                    return []
            if self._index.size == 0:
                return []
            scores, vids = self._index.search(vector, k, allowed)
            return self._hits(vids[0], scores[0], with_vectors)

    def _hits(self, vids: np.ndarray, scores: np.ndarray, with_vectors: bool) -> list[SearchHit]:
        """Read the found cases back from SQLite in one query; ids deleted meanwhile drop out."""
        wanted = [int(v) for v in vids if v >= 0]
        if not wanted:
            return []
        extra = ", embedding" if with_vectors else ""
        rows = self.db.conn.execute(f"SELECT vid{extra}, {CASE_FIELDS} FROM cases "
                                    f"WHERE vid IN ({','.join('?' * len(wanted))})", wanted).fetchall()
        start = 2 if with_vectors else 1
        found = {row[0]: row for row in rows}
        return [SearchHit(row_to_case(row[start:]), float(score),
                          blob_to_vector(row[1], self.dim) if with_vectors else None)
                for vid, score in zip(wanted, scores) if (row := found.get(vid)) is not None]

    def iter_cases(self, *, namespace=None, namespace_prefix=None, where: dict | None = None,
                   order_by: str = "created_at", descending: bool = False, limit: int | None = None,
                   offset: int = 0, **filters: Any) -> Iterator[Case]:
        """Cases matching the filters (min_reward, max_reward, text, since, until, ids), in order."""
        if order_by not in ("created_at", "updated_at", "reward", "id", "task"):
            raise ValidationError(f"order_by={order_by!r}; choose created_at, updated_at, reward, id or task")
        clause, params = filter_sql(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters)
        sql = f"{SELECT_CASE}{clause} ORDER BY {order_by} {'DESC' if descending else 'ASC'}, vid"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        with self._lock:
            rows = self.db.execute(sql, params).fetchall()
        for row in rows:
            yield row_to_case(row)

    def count(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """How many cases match the filters."""
        clause, params = filter_sql(namespace=namespace, namespace_prefix=namespace_prefix, where=where, **filters)
        with self._lock:
            return self.db.execute(f"SELECT count(*) FROM cases{clause}", params).fetchone()[0]

    def __len__(self) -> int:
        return self.count()

    def list_namespaces(self, *, prefix=None) -> list[tuple[str, ...]]:
        """Distinct namespaces, sorted; only those under `prefix` when given."""
        clause, params = filter_sql(namespace_prefix=prefix)
        with self._lock:
            rows = self.db.execute(f"SELECT DISTINCT namespace FROM cases{clause} ORDER BY namespace", params)
            return [tuple(r[0].split("/")) for r in rows]
