"""`CaseBank`: the episodic memory in one SQLite file, with a FAISS index beside it.

    bank = CaseBank("cases.db")                     # creates it, with the packaged MiniLM embedder
    bank.add(Case(task="Who founded X?", answer="Y", reward=1.0))
    for hit in bank.search("founder of X", k=4):
        print(hit.score, hit.case.task)

    bank = CaseBank.open("postgresql://host/db")    # the same interface (`memento.bank.Bank`) on PostgreSQL

It implements `memento.bank.interface.Bank` from four parts: this file (opening, meta data,
stats, re-embedding, lifecycle), `sqlite_cases.py` (case rows and search), `sqlite_index.py`
(the FAISS index kept in step through a change log, crash-safe across processes) and
`sqlite_policy.py` (what policies and the agent keep beside the cases).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import sqlite_utils
from filelock import FileLock

from memento.bank.integrity import abort, check_bank_files, storage_error
from memento.bank.interface import Bank, SearchHit
from memento.bank.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from memento.bank.sqlite_cases import SQLiteCases
from memento.bank.sqlite_index import ChangeLogIndex
from memento.bank.sqlite_policy import SQLitePolicyTables
from memento.bank.vector_index import IndexConfig
from memento.case import utc_now
from memento.embedders import DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME, Embedder, as_query_matrix
from memento.errors import BankError, NotFoundError, ValidationError

__all__ = ["CaseBank", "SearchHit"]

log = logging.getLogger("memento.bank")

SQLITE_MAGIC = b"SQLite format 3\x00"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class CaseBank(SQLiteCases, ChangeLogIndex, SQLitePolicyTables):
    """An episodic case bank stored in one SQLite file plus a FAISS index file beside it."""

    @classmethod
    def open(cls, location: str | Path, embedder: Embedder | None = None, **options: Any) -> Bank:
        """The bank at `location`: a `postgresql://` URL opens a `PostgresBank`, anything else a SQLite file.

        `options` go to the backend's constructor (`create`, `index`, ...). PostgreSQL needs
        `pip install 'memento[postgres]'`.
        """
        if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
            from memento.bank.postgres import PostgresBank

            return PostgresBank(location, embedder, **options)
        return cls(location, embedder, **options)

    def __init__(self, path: str | Path, embedder: Embedder | None = None, *,
                 index: str | IndexConfig | None = None, create: bool = True, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.index_path = self.path.with_name(self.path.name + ".faiss")
        self._check_file(create)
        check_bank_files(self.path, self.index_path)
        self._lock = threading.RLock()
        self._file_lock = FileLock(str(self.path) + ".lock", timeout=busy_timeout_s)
        conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        self.db = sqlite_utils.Database(conn, execute_plugins=False)
        self._closed = False
        try:
            self._configure(busy_timeout_s)
            self._init_meta(embedder, index)
            self._open_index()
        except BaseException as exc:
            conn.close()
            raise storage_error(self.path, exc)

    # ---------------------------------------------------------------- opening

    def _check_file(self, create: bool) -> None:
        if self.path.exists():
            if self.path.is_dir():
                raise BankError(f"bank path '{self.path}' is a directory; give the path of a .db file")
            with open(self.path, "rb") as handle:
                head = handle.read(16)
            if head and head != SQLITE_MAGIC:
                raise BankError(f"'{self.path}' is not a case bank (not a SQLite file); choose another path")
        elif not create:
            raise NotFoundError(
                f"bank '{self.path}' does not exist; create it first (CaseBank(path) or `memento init {self.path}`)"
            )
        elif not self.path.parent.exists():
            raise NotFoundError(f"folder '{self.path.parent}' for bank '{self.path.name}' does not exist; create it first")

    def _configure(self, busy_timeout_s: float) -> None:
        self._enable_wal(busy_timeout_s)
        # NORMAL in WAL mode loses nothing when a process is killed, only on power loss.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")

    def _enable_wal(self, busy_timeout_s: float) -> None:
        """Switch a new bank file to WAL once, under the file lock, retrying while others hold it.

        The switch needs an exclusive lock. While another connection holds the write lock on a file still
        in rollback mode, SQLite answers "database is locked" at once, without waiting out the busy timeout
        (four processes creating one bank at once failed so in CI; tests/bank/test_wal_switch.py).
        The file lock keeps our own openers from racing; the retry covers any other reader. A bank
        already in WAL needs no switch: the mode is stored in the file.
        """
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        deadline = time.monotonic() + busy_timeout_s
        with self._file_lock:
            while True:
                try:
                    self.db.execute("PRAGMA journal_mode=WAL")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    def _init_meta(self, embedder: Embedder | None, index: str | IndexConfig | None) -> None:
        with self._file_lock:
            # Read under the lock: two processes creating one bank at once would otherwise both see no
            # tables, and the second would reset next_vid and generation under the first one's writes.
            tables = set(self.db.table_names())
            if tables and "bank_meta" not in tables:
                raise BankError(f"'{self.path}' is a SQLite file but not a case bank (no bank_meta table); "
                                f"choose another path")
            if not tables:
                self.db.executescript(SCHEMA)
                name, dim = (embedder.name, embedder.dim) if embedder else (DEFAULT_MODEL_NAME, DEFAULT_MODEL_DIM)
                kind = index.kind if isinstance(index, IndexConfig) else (index or "flat")
                self._set_meta(schema_version=SCHEMA_VERSION, embedder_name=name, dim=dim, index_kind=kind,
                               generation=0, next_vid=1, pruned_through=0, created_at=utc_now().isoformat())
        meta = self._meta()
        if int(meta.get("schema_version", 0)) < SCHEMA_VERSION:
            self._migrate(int(meta.get("schema_version", 0)))
            meta = self._meta()
        if int(meta.get("schema_version", 0)) != SCHEMA_VERSION:
            raise BankError(f"bank '{self.path}' has schema version {meta.get('schema_version')}, "
                            f"this memento reads version {SCHEMA_VERSION}; upgrade memento")
        self.embedder_name, self.dim = meta["embedder_name"], int(meta["dim"])
        self._embedder = self._check_embedder(embedder)
        self.index_config = self._resolve_index_config(index, meta["index_kind"])

    def _migrate(self, version: int) -> None:
        """Bring an older bank's schema up to SCHEMA_VERSION, one version a step, each in one transaction."""
        with self._file_lock:
            version = int(self._meta().get("schema_version", 0))  # another process may have migrated it meanwhile
            while version < SCHEMA_VERSION:
                if version not in MIGRATIONS:
                    raise BankError(f"bank '{self.path}' has schema version {version}, which this memento cannot "
                                    f"migrate; export it with the memento that wrote it and import it here")
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[version]:
                        self.db.execute(statement)
                    self._set_meta(schema_version=version + 1)
                    self.db.execute("COMMIT")
                except BaseException as exc:
                    raise abort(self.db.conn, self.path, exc)
                log.info("bank %s: schema migrated from version %d to %d", self.path, version, version + 1)
                version += 1

    def _resolve_index_config(self, index: str | IndexConfig | None, stored_kind: str) -> IndexConfig:
        config = index if isinstance(index, IndexConfig) else IndexConfig(kind=index or stored_kind)
        if config.kind not in ("flat", "hnsw"):
            raise ValidationError(f"index kind {config.kind!r} is not supported; use 'flat' (exact) or 'hnsw'")
        if config.kind != stored_kind:
            with self._file_lock:
                self._set_meta(index_kind=config.kind)
        return config

    # ------------------------------------------------------------- meta data

    def _meta(self) -> dict[str, str]:
        return {key: value for key, value in self.db.execute("SELECT key, value FROM bank_meta").fetchall()}

    def _meta_int(self, key: str) -> int:
        row = self.db.conn.execute("SELECT value FROM bank_meta WHERE key = ?", [key]).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, **values: Any) -> None:
        self.db.conn.executemany("INSERT OR REPLACE INTO bank_meta (key, value) VALUES (?, ?)",
                                 [(k, str(v)) for k, v in values.items()])

    # ---------------------------------------------------------------- writes

    @contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the bank's file, for SQLite-only tools and tests (not part of `Bank`).

        Holds the same thread and cross-process locks as the bank's own writes and commits only
        if the block finishes, so a failed write leaves nothing behind. Do not touch `cases` here.
        """
        with self._lock, self._file_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db.conn
                self.db.execute("COMMIT")
            except BaseException as exc:
                raise abort(self.db.conn, self.path, exc)

    def stats(self) -> dict[str, Any]:
        """Counts per namespace and dataset, the reward distribution and the index's health."""
        with self._lock:
            self._sync()
            per_namespace = dict(self.db.execute("SELECT namespace, count(*) FROM cases GROUP BY namespace ORDER BY namespace"))
            per_dataset = dict(self.db.execute(
                "SELECT coalesce(json_extract(metadata, '$.dataset'), ''), count(*) FROM cases GROUP BY 1 ORDER BY 1"))
            n, low, high, mean = self.db.execute("SELECT count(*), min(reward), max(reward), avg(reward) FROM cases").fetchone()
            successes = self.db.execute("SELECT count(*) FROM cases WHERE reward > 0").fetchone()[0]
            generation = self._meta_int("generation")
        return {
            "path": str(self.path), "cases": n, "namespaces": per_namespace, "datasets": per_dataset,
            "reward": {"min": low, "max": high, "mean": mean, "share_positive": successes / n if n else None},
            "embedder": {"name": self.embedder_name, "dim": self.dim},
            "index": {"kind": self.index_config.kind, "vectors": self._index.size, "removed": len(self._index.removed),
                      "generation": self._generation, "bank_generation": generation,
                      "saved_generation": self._saved_generation,
                      "healthy": self._index.size == n and self._generation == generation},
            "bytes": {"sqlite": self.path.stat().st_size,
                      "index": self.index_path.stat().st_size if self.index_path.exists() else 0},
        }

    def check(self) -> dict[str, Any]:
        """Read every page of the SQLite file (`PRAGMA quick_check`) and compare the index with the rows.

        SQLite notices a damaged page only when a read needs it, and a page damaged into valid-looking
        garbage can be read without any error (a listing that silently returns fewer rows): this is
        the check that finds it. It reads the whole file (seconds per GB). Returns {"ok", "sqlite",
        "index"}; `ok` is False when either found a problem. It changes nothing.
        """
        with self._lock:
            try:
                problems = [row[0] for row in self.db.execute("PRAGMA quick_check(20)")]
            except sqlite3.DatabaseError as exc:  # damage bad enough that the check itself cannot run
                problems = [str(exc)]
            sqlite_ok = problems == ["ok"]
            stats = self.stats() if sqlite_ok else None
        index_ok = bool(stats and stats["index"]["healthy"])
        return {"ok": sqlite_ok and index_ok, "sqlite": "ok" if sqlite_ok else problems,
                "index": ({"healthy": index_ok, "vectors": stats["index"]["vectors"], "cases": stats["cases"]}
                          if stats else "not compared: the SQLite file is damaged")}

    def reindex(self, embedder: Embedder | None = None, *, batch_size: int = 256, progress: bool = False) -> None:
        """Rebuild the index from stored embeddings, or re-embed every case with another `embedder`.

        Re-embedding computes every vector first and then swaps them all in one transaction,
        so a failure half-way leaves the bank as it was.
        """
        if embedder is None:
            self._rebuild(None)
            return
        ids, tasks = zip(*self.db.execute("SELECT id, task FROM cases ORDER BY vid").fetchall()) if self.count() else ((), ())
        chunks = range(0, len(tasks), batch_size)
        if progress:
            from tqdm import tqdm
            chunks = tqdm(chunks, desc="re-embedding", unit="batch")
        vectors = [as_query_matrix(embedder.embed(list(tasks[s:s + batch_size])), embedder.dim, what="embedder output")
                   for s in chunks]
        with self._lock, self._file_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if vectors:
                    self.db.conn.executemany("UPDATE cases SET embedding = ? WHERE id = ?",
                                             [(v.tobytes(), i) for v, i in zip(np.concatenate(vectors), ids)])
                generation = self._meta_int("generation") + 1
                # Everyone must rebuild: vectors changed under unchanged vids.
                self._set_meta(embedder_name=embedder.name, dim=embedder.dim, generation=generation,
                               pruned_through=generation)
                self.db.execute("COMMIT")
            except BaseException as exc:
                raise abort(self.db.conn, self.path, exc)
            self._embedder, self.embedder_name, self.dim = embedder, embedder.name, embedder.dim
            self._rebuild(None)

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Save the index if it is behind and close the database."""
        if self._closed:
            return
        try:
            self.save_index()
        finally:
            self.db.conn.close()
            self._closed = True

    def __repr__(self) -> str:
        return f"CaseBank('{self.path}', embedder={self.embedder_name!r}, index={self.index_config.kind!r})"
