"""`CaseBank`: the episodic memory. Rows in SQLite, vectors in FAISS.

    bank = CaseBank("cases.db")                     # creates it, with the packaged MiniLM embedder
    bank.add(Case(task="Who founded X?", answer="Y", reward=1.0))
    for hit in bank.search("founder of X", k=4):
        print(hit.score, hit.case.task)

Crash safety: every write is one SQLite transaction (WAL mode) under a cross-process
file lock, and also appends to a change log with a new generation number. The FAISS
index lives in memory and in a file stamped with the generation it reflects; any
process replays the change log past its own generation before it searches, so writes
from other processes show up, and a stale, missing or corrupt file is rebuilt from
SQLite on open. Search results are read back from SQLite, so a deleted case is never returned.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import numpy as np
import sqlite_utils
from filelock import FileLock

from memento.bank.schema import (
    CASE_FIELDS, INSERT_CASE, MIGRATIONS, SCHEMA, SCHEMA_VERSION, SELECT_CASE, blob_to_vector, case_to_row, filter_sql, row_to_case,
)
from memento.bank.integrity import abort, check_bank_files, storage_error
from memento.bank.vector_index import IndexConfig, VectorIndex
from memento.case import Case, utc_now, validate_case
from memento.embedders import (DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME, Embedder, as_query_matrix, as_vector,
                               default_embedder)
from memento.errors import (
    BankError, EmbedderMismatchError, ImportFormatError, NotFoundError, ValidationError,
)

log = logging.getLogger("memento.bank")

SQLITE_MAGIC = b"SQLite format 3\x00"
CHANGE_LOG_KEEP = 10_000  # generations of change log kept behind the saved index, for lagging processes


@dataclass
class SearchHit:
    """A case found by search, with its cosine similarity to the query."""

    case: Case
    score: float
    vector: np.ndarray | None = field(default=None, repr=False)


class CaseBank:
    """An episodic case bank stored in one SQLite file plus a FAISS index file beside it."""

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
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses nothing when a process is killed, only on power loss.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")

    def _init_meta(self, embedder: Embedder | None, index: str | IndexConfig | None) -> None:
        tables = set(self.db.table_names())
        if tables and "bank_meta" not in tables:
            raise BankError(f"'{self.path}' is a SQLite file but not a case bank (no bank_meta table); choose another path")
        with self._file_lock:
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
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                log.info("bank %s: schema migrated from version %d to %d", self.path, version, version + 1)
                version += 1

    def _check_embedder(self, embedder: Embedder | None) -> Embedder | None:
        if embedder is None:
            if self.embedder_name != DEFAULT_MODEL_NAME:
                raise EmbedderMismatchError(
                    f"bank '{self.path}' was created with embedder {self.embedder_name!r} (dim {self.dim}); "
                    f"open it with that embedder: CaseBank(path, embedder=...)"
                )
            return None  # the default is loaded on first use: opening a bank should not cost a model load
        if embedder.name != self.embedder_name or embedder.dim != self.dim:
            raise EmbedderMismatchError(
                f"embedder {embedder.name!r} (dim {embedder.dim}) does not match bank '{self.path}', created with "
                f"{self.embedder_name!r} (dim {self.dim}); open it with the embedder it was built with, "
                f"or re-embed with `memento cases reindex --re-embed`"
            )
        return embedder

    def _resolve_index_config(self, index: str | IndexConfig | None, stored_kind: str) -> IndexConfig:
        config = index if isinstance(index, IndexConfig) else IndexConfig(kind=index or stored_kind)
        if config.kind not in ("flat", "hnsw"):
            raise ValidationError(f"index kind {config.kind!r} is not supported; use 'flat' (exact) or 'hnsw'")
        if config.kind != stored_kind:
            with self._file_lock:
                self._set_meta(index_kind=config.kind)
        return config

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

    # ------------------------------------------------------------ properties

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
        """A write transaction on the bank's file for tables of your own (policies keep theirs here).

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

    def _vectors_by_vid(self, vids: list[int]) -> dict[int, np.ndarray]:
        rows = self.db.conn.execute(f"SELECT vid, embedding FROM cases WHERE vid IN ({','.join('?' * len(vids))})", vids)
        return {vid: blob_to_vector(blob, self.dim) for vid, blob in rows}

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

    def list_namespaces(self, *, prefix=None, where: dict | None = None, **filters: Any) -> list[tuple[str, ...]]:
        """Distinct namespaces of the cases matching the filters (as iter_cases), sorted; under `prefix` when given."""
        clause, params = filter_sql(namespace_prefix=prefix, where=where, **filters)
        with self._lock:
            rows = self.db.execute(f"SELECT DISTINCT namespace FROM cases{clause} ORDER BY namespace", params)
            return [tuple(r[0].split("/")) for r in rows]

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

    # ---------------------------------------------------------- JSONL in/out

    def export_jsonl(self, destination: str | Path | IO[str], *, with_vectors: bool = False, **filters: Any) -> int:
        """Write matching cases as JSON lines (optionally with their embeddings). Returns the count."""
        handle = open(destination, "w", encoding="utf-8") if isinstance(destination, (str, Path)) else destination
        try:
            n = 0
            for case in self.iter_cases(**filters):
                record = case.model_dump(mode="json")
                if with_vectors:
                    record["embedding"] = self.vectors([case.id])[0].tolist()
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
            return n
        finally:
            if handle is not destination:
                handle.close()

    def import_jsonl(self, source: str | Path | IO[str], *, skip_bad_lines: bool = False,
                     on_conflict: str = "error") -> int:
        """Import cases from JSON lines, all in one transaction. Returns how many were added.

        A malformed line fails the whole import (naming the line) unless `skip_bad_lines`.
        `on_conflict` ('error' or 'skip') says what to do with an id the bank already has.
        Lines with an "embedding" of this bank's dimension are not re-embedded.
        """
        if on_conflict not in ("error", "skip"):
            raise ValidationError(f"on_conflict={on_conflict!r}; choose 'error' or 'skip'")
        cases, vectors, line_numbers = _read_jsonl(source, self.dim, skip_bad_lines)
        seen: dict[str, int] = {}  # id -> the line that first gave it
        existing = {c.id for c in self.iter_cases(ids=[c.id for c in cases])} if cases else set()
        keep = []
        for i, case in enumerate(cases):
            if case.id in existing or case.id in seen:
                if on_conflict == "error":
                    problem = (f"repeats case id {case.id!r} of line {seen[case.id]}" if case.id in seen
                               else f"case id {case.id!r} is already in the bank")
                    raise ImportFormatError(f"line {line_numbers[i]}: {problem}; nothing was imported; pass "
                                            f"on_conflict='skip' (--on-conflict skip) to leave those out", line_numbers[i])
                continue
            seen[case.id] = line_numbers[i]
            keep.append(i)
        cases = [cases[i] for i in keep]
        given = [vectors[i] for i in keep]
        missing = [i for i, v in enumerate(given) if v is None]
        if missing:
            embedded = self.embed([cases[i].task for i in missing])
            for i, vector in zip(missing, embedded):
                given[i] = vector
        if cases:
            self._insert(cases, np.stack(given))
        return len(cases)

    # ------------------------------------------------------------ the index

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
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
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

    def __enter__(self) -> "CaseBank":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CaseBank('{self.path}', embedder={self.embedder_name!r}, index={self.index_config.kind!r})"


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


def _lines(handle: IO[str]) -> Iterator[str]:
    """Lines of a text file; a line that is not UTF-8 comes back as an error to report, not a crash."""
    while True:
        try:
            line = handle.readline()
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"the file is not UTF-8 text ({exc.reason}); export JSONL as UTF-8") from None
        if not line:
            return
        yield line


def _read_jsonl(source: str | Path | IO[str], dim: int, skip_bad_lines: bool) -> tuple[list[Case], list, list[int]]:
    """Parse and validate every line before anything is written; returns cases, vectors and line numbers."""
    if isinstance(source, (str, Path)):
        if Path(source).is_dir():
            raise ValidationError(f"import file '{source}' is a directory; give a JSONL file, e.g. {Path(source) / 'cases.jsonl'}")
        if not Path(source).exists():
            raise NotFoundError(f"import file '{source}' does not exist")
        handle = open(source, encoding="utf-8")
    else:
        handle = source
    cases, vectors, line_numbers = [], [], []
    try:
        for number, line in enumerate(_lines(handle), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                embedding = record.pop("embedding", None) if isinstance(record, dict) else None
                case = validate_case(record)
                vector = None if embedding is None else as_vector(embedding, dim, what="embedding")
            except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
                if skip_bad_lines:
                    log.warning("skipping line %d: %s", number, exc)
                    continue
                raise ImportFormatError(f"line {number}: {exc}; nothing was imported (fix the line, "
                                        f"or pass skip_bad_lines=True / --skip-bad-lines)", number) from None
            cases.append(case)
            vectors.append(vector)
            line_numbers.append(number)
    finally:
        if handle is not source:
            handle.close()
    return cases, vectors, line_numbers
