"""The FAISS side of a SQLite bank kept in step with its rows, in every process.

Every write is one SQLite transaction (WAL mode) under a cross-process file lock that also
appends its adds and deletes of vectors to a change log (`bank_changes`) under a new generation
number. The FAISS index lives in memory and in a file stamped with the generation it reflects;
a process replays the log past its own generation before it searches, so writes from other
processes show up, and a stale, missing or corrupt file is rebuilt from SQLite on open.
Mixed into `CaseBank`, whose attributes (`db`, `_lock`, `_file_lock`, `dim`, ...) it uses.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from memento.bank.integrity import abort
from memento.bank.schema import blob_to_vector
from memento.bank.vector_index import VectorIndex

log = logging.getLogger("memento.bank")

CHANGE_LOG_KEEP = 10_000  # generations of change log kept behind the saved index, for lagging processes


class ChangeLogIndex:
    """The in-memory FAISS index of a `CaseBank`, its file, and the change log that keeps them current."""

    def _open_index(self) -> None:
        try:
            self._index, self._generation = VectorIndex.load(self.index_path, self.index_config)
            if self._index.dim != self.dim:
                raise ValueError(f"index dim {self._index.dim} != bank dim {self.dim}")
            self._saved_generation = self._generation
        except FileNotFoundError:
            self._rebuild("no index file yet" if self.count() else None)
        except Exception as exc:  # corrupt, truncated, another kind: SQLite has everything to rebuild it
            self._rebuild(f"index file unreadable ({exc})")
        self._sync()

    @contextmanager
    def _transaction(self) -> Iterator["_Changes"]:
        """One write: file lock, BEGIN IMMEDIATE, a new generation, the change log, COMMIT, index update."""
        with self._lock, self._file_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self._sync()  # catch up first, so our generation follows on from the log
                changes = _Changes(generation=self._meta_int("generation") + 1)
                yield changes
                if changes.adds or changes.dels:
                    self.db.conn.executemany(
                        "INSERT INTO bank_changes (generation, op, vid) VALUES (?, ?, ?)",
                        [(changes.generation, "del", v) for v in changes.dels]
                        + [(changes.generation, "add", v) for v in changes.adds])
                    self._set_meta(generation=changes.generation)
                self.db.execute("COMMIT")
            except BaseException as exc:
                raise abort(self.db.conn, self.path, exc)
            if changes.adds or changes.dels:
                self._index.remove(changes.dels)
                if changes.adds:
                    self._index.add(np.asarray(changes.adds), np.stack(changes.vectors))
                self._generation = changes.generation

    def _new_vids(self, n: int) -> list[int]:
        start = self._meta_int("next_vid")
        self._set_meta(next_vid=start + n)
        return list(range(start, start + n))

    def _vectors_by_vid(self, vids: list[int]) -> dict[int, np.ndarray]:
        rows = self.db.conn.execute(f"SELECT vid, embedding FROM cases WHERE vid IN ({','.join('?' * len(vids))})", vids)
        return {vid: blob_to_vector(blob, self.dim) for vid, blob in rows}

    def _sync(self) -> None:
        """Replay the change log past this process's generation into the in-memory index."""
        db_generation = self._meta_int("generation")
        if db_generation == self._generation:
            return
        if self._generation < self._meta_int("pruned_through") or db_generation < self._generation:
            self._rebuild("the change log no longer reaches this index" if db_generation > self._generation
                          else "the index is newer than the bank (was the database restored?)")
            return
        added, deleted = [], []
        for op, vid in self.db.execute(
                "SELECT op, vid FROM bank_changes WHERE generation > ? AND generation <= ? ORDER BY rowid",
                [self._generation, db_generation]):
            (added if op == "add" else deleted).append(vid)
        added_set = set(added)
        self._index.remove([v for v in deleted if v not in added_set])
        live = self._vectors_by_vid(added) if added else {}
        if live:
            self._index.add(np.fromiter(live, dtype=np.int64), np.stack(list(live.values())))
        self._generation = db_generation

    def _rebuild(self, reason: str | None) -> None:
        """Build the index from the embeddings stored in SQLite, and save it.

        Inside a write transaction (a writer that fell behind a trimmed change log) the rows are
        read in that transaction, and the file is saved later, by the next save_index().
        """
        if reason:
            log.warning("rebuilding the FAISS index of '%s' from SQLite: %s", self.path, reason)
        with self._lock:
            own_snapshot = not self.db.conn.in_transaction
            if own_snapshot:
                self.db.execute("BEGIN")  # one snapshot: rows and generation agree
            try:
                generation = self._meta_int("generation")
                index = VectorIndex(self.dim, self.index_config)
                cursor = self.db.conn.execute("SELECT vid, embedding FROM cases ORDER BY vid")
                while rows := cursor.fetchmany(10_000):
                    index.add(np.array([r[0] for r in rows], dtype=np.int64),
                              np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim))
            finally:
                if own_snapshot:
                    self.db.execute("COMMIT")
            self._index, self._generation = index, generation
            self._saved_generation = -1
            if own_snapshot:
                self.save_index()

    def save_index(self) -> None:
        """Write the index file (atomically) if it is behind, and trim the change log behind it."""
        with self._lock:
            self._sync()
            if self._saved_generation == self._generation:
                return
            with self._file_lock:
                self._index.save(self.index_path, self._generation)
                self._saved_generation = self._generation
                keep_from = self._generation - CHANGE_LOG_KEEP
                if keep_from > self._meta_int("pruned_through"):
                    self.db.execute("BEGIN IMMEDIATE")
                    self.db.execute("DELETE FROM bank_changes WHERE generation <= ?", [keep_from])
                    self._set_meta(pruned_through=keep_from)
                    self.db.execute("COMMIT")


@dataclass
class _Changes:
    """What one transaction did to the vectors."""

    generation: int
    adds: list[int] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    dels: list[int] = field(default_factory=list)

    def added(self, vids: Iterable[int], vectors: np.ndarray) -> None:
        self.adds.extend(vids)
        self.vectors.extend(vectors)

    def deleted(self, vids: Iterable[int]) -> None:
        self.dels.extend(vids)
