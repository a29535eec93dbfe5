"""Case rows of a SQLite bank: the storage primitives `BankBase` builds the case methods on.

Mixed into `CaseBank`. Writes go through `ChangeLogIndex._transaction`, so the FAISS index and
the change log follow every committed change; search results are read back from SQLite, so a
case deleted meanwhile is never returned. Filters are built by `schema.filter_sql`: keys are
checked against a strict pattern and values are bound, never spliced into SQL.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable

import numpy as np

from memento.bank.arguments import check_filters, namespace_listing_filters
from memento.bank.base import BankBase
from memento.bank.interface import SearchHit
from memento.bank.schema import CASE_FIELDS, INSERT_CASE, SELECT_CASE, blob_to_vector, case_to_row, filter_sql, row_to_case
from memento.case import Case
from memento.errors import NotFoundError, ValidationError

CHUNK = 500  # ids bound in one IN (...), under SQLite's limit on parameters


def _chunks(keys: list) -> Iterable[tuple[list, str]]:
    """Chunks of `keys` with their `?,?,...` placeholders."""
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        yield chunk, ",".join("?" * len(chunk))


class SQLiteCases(BankBase):
    """The case primitives over the `cases` table and the FAISS index."""

    def _first_existing(self, ids: list[str]) -> str | None:
        for chunk, marks in _chunks(ids):
            row = self.db.execute(f"SELECT id FROM cases WHERE id IN ({marks}) LIMIT 1", chunk).fetchone()
            if row:
                return row[0]
        return None

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

    def _replace(self, case_id: str, merge, new_vector: np.ndarray | None) -> Case:
        with self._transaction() as changes:
            row = self.db.execute(f"SELECT vid, embedding, {CASE_FIELDS} FROM cases WHERE id = ?", [case_id]).fetchone()
            if row is None:
                raise NotFoundError(f"case {case_id!r} was deleted while it was being updated")
            vid, blob = row[:2]
            new = merge(row_to_case(row[2:]))
            if new_vector is not None:  # a new vector gets a new vid, so every process can replay the change
                changes.deleted([vid])
                vid = self._new_vids(1)[0]
                changes.added([vid], new_vector[None, :])
            self.db.execute("DELETE FROM cases WHERE id = ?", [case_id])
            self.db.execute(INSERT_CASE,
                            case_to_row(new, vid, new_vector if new_vector is not None else blob_to_vector(blob, self.dim)))
        return new

    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False) -> int:
        """Delete cases by id in one transaction; any unknown id fails the whole call unless missing_ok."""
        ids = list(dict.fromkeys(ids))
        with self._transaction() as changes:
            found = {}
            for chunk, marks in _chunks(ids):
                found.update(self.db.execute(f"SELECT id, vid FROM cases WHERE id IN ({marks})", chunk).fetchall())
            missing = [i for i in ids if i not in found]
            if missing and not missing_ok:
                raise self._missing(missing, "; nothing was deleted")
            self.db.conn.executemany("DELETE FROM cases WHERE id = ?", [(i,) for i in found])
            changes.deleted(found.values())
        return len(found)

    # ----------------------------------------------------------------- reads

    def _cases_by_id(self, ids: list[str]) -> dict[str, Case]:
        out: dict = {}
        with self._lock:
            for chunk, marks in _chunks(ids):
                for row in self.db.conn.execute(f"SELECT id, {CASE_FIELDS} FROM cases WHERE id IN ({marks})", chunk):
                    out[row[0]] = row_to_case(row[1:])
        return out

    def _vectors_by_id(self, ids: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for chunk, marks in _chunks(ids):
                for case_id, blob in self.db.execute(f"SELECT id, embedding FROM cases WHERE id IN ({marks})", chunk):
                    found[case_id] = blob_to_vector(blob, self.dim)
        return found

    def _search(self, vector: np.ndarray, k: int, filters: dict[str, Any] | None, with_vectors: bool) -> list[SearchHit]:
        with self._lock:
            self._sync()
            allowed = None
            clause, params = filter_sql(**filters) if filters is not None else ("", [])
            if filters is not None:
                allowed = np.array([r[0] for r in self.db.execute(f"SELECT vid FROM cases{clause}", params)], dtype=np.int64)
                if not len(allowed):
                    return []
            if self._index.size == 0:
                return []
            scores, vids = self._index.search(vector, k, allowed)
            hits = self._hits(vids[0], scores[0], with_vectors)
            if len(hits) < min(k, self._index.size if allowed is None else len(allowed)):
                # HNSW's graph walk can end before k of the allowed vectors (a narrow filter): score them exactly.
                hits = self._exact_hits(vector[0], k, clause, params, with_vectors)
            return hits

    def _exact_hits(self, vector: np.ndarray, k: int, clause: str, params: list, with_vectors: bool) -> list[SearchHit]:
        rows = self.db.execute(f"SELECT vid, embedding FROM cases{clause}", params).fetchall()
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
        scores = matrix @ vector.astype(np.float32)
        best = np.argsort(-scores, kind="stable")[:k]
        return self._hits(np.array([rows[i][0] for i in best]), scores[best], with_vectors)

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

    def _select(self, filters: dict[str, Any], order_by: str, descending: bool, limit: int | None,
                offset: int) -> list[Case]:
        clause, params = filter_sql(**filters)
        sql = f"{SELECT_CASE}{clause} ORDER BY {order_by} {'DESC' if descending else 'ASC'}, vid"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        with self._lock:
            rows = self.db.execute(sql, params).fetchall()
        return [row_to_case(row) for row in rows]

    def count(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """How many cases match the filters."""
        clause, params = filter_sql(**check_filters(dict(namespace=namespace, namespace_prefix=namespace_prefix,
                                                         where=where, **filters)))
        with self._lock:
            return self.db.execute(f"SELECT count(*) FROM cases{clause}", params).fetchone()[0]

    def list_namespaces(self, *, prefix=None, where: dict | None = None, **filters: Any) -> list[tuple[str, ...]]:
        """Distinct namespaces of the cases matching the filters (as iter_cases), sorted; under `prefix` when given."""
        clause, params = filter_sql(**namespace_listing_filters(prefix, where, filters))
        with self._lock:
            rows = self.db.execute(f"SELECT DISTINCT namespace FROM cases{clause} ORDER BY namespace", params)
            return [tuple(r[0].split("/")) for r in rows]
