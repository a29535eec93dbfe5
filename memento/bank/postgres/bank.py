"""`PostgresBank`: the case bank in PostgreSQL with pgvector, shared by many processes and hosts.

    bank = CaseBank.open("postgresql://user@db/memento?schema=team_a")   # pip install 'memento[postgres]'
    bank.add(Case(task="Who founded X?", answer="Y", reward=1.0))
    bank.search("founder of X", k=4, namespace=("team_a",))

The same `Bank` interface, rules and messages as `CaseBank` (both build on `BankBase`). The
server is the source of truth and the index: every write is one transaction, so writers in any
number of processes lose nothing and a killed writer leaves nothing half-written; every search
sees every committed write. Vectors are a pgvector `vector(dim)` column with an HNSW (default)
or IVFFlat index, or none (`index=flat`: exact search). A filtered search scans the index
iteratively (`hnsw.iterative_scan`, pgvector 0.8) and, if that still stops short of k while
more cases match, runs exactly over the matching rows: k hits come back whenever k match.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import numpy as np

from memento.bank.arguments import check_filters, namespace_listing_filters
from memento.bank.base import BankBase
from memento.bank.interface import SearchHit
from memento.bank.postgres.config import PostgresConfig, parse_url
from memento.bank.postgres.filters import filter_sql
from memento.bank.postgres.policy import PostgresPolicyTables
from memento.bank.postgres.schema import MIGRATIONS, SCHEMA_VERSION, create_statements, vector_index_statements
from memento.bank.schema import CASE_FIELDS, case_fields, row_to_case
from memento.bank.vector_index import IndexConfig
from memento.case import Case, utc_now
from memento.embedders import DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME, Embedder, as_query_matrix
from memento.errors import BankError, MissingExtraError, NotFoundError, ValidationError

log = logging.getLogger("memento.bank")

COLUMNS = CASE_FIELDS + ", embedding"
COPY_TYPES = ["text"] * 6 + ["float8", "timestamptz", "timestamptz", "text", "text", "vector"]
EXTENSION_LOCK = 7_245_019  # advisory lock key: one process at a time creates the vector extension


def _drivers():
    try:
        import psycopg
        import psycopg_pool
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MissingExtraError(f"a postgresql:// bank needs psycopg, psycopg_pool and pgvector ({exc.name} is "
                                "missing); install them with: pip install 'memento[postgres]'") from None
    return psycopg, psycopg_pool, register_vector


def _array(vector: Any) -> np.ndarray:
    """A pgvector value (the driver's `Vector`) as a float32 array."""
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


MAX_EF_SEARCH = 1000
"""pgvector's largest hnsw.ef_search (k=1001 was an InvalidParameterValue from the server)."""


class PostgresBank(PostgresPolicyTables, BankBase):
    """A case bank in one schema of a PostgreSQL database with the pgvector extension."""

    def __init__(self, url: str, embedder: Embedder | None = None, *, index: str | IndexConfig | None = None,
                 create: bool = True, **options: Any):
        """Open (or, with `create`, make) the bank at `url`; `options` override PostgresConfig's URL parameters."""
        self._psycopg, pool_module, self._register_vector = _drivers()
        if isinstance(index, IndexConfig):
            options = {"hnsw_m": index.hnsw_m, "ef_construction": index.ef_construction,
                       "ef_search": index.ef_search, **options}
            index = index.kind
        conninfo, self.path, self.config = parse_url(url, index=index, **options)
        self.schema = self.config.schema
        self._index_asked = index is not None or "index=" in url
        self._closed = False
        self._pool = None
        try:
            self._create_extension(conninfo)
            self._pool = pool_module.ConnectionPool(
                conninfo, min_size=1, max_size=self.config.pool_size, open=True, timeout=30,
                configure=self._configure, kwargs={"autocommit": False})
            self._init_meta(embedder, create)
        except BaseException:
            if self._pool is not None:
                self._pool.close()
            raise

    # ---------------------------------------------------------------- opening

    def _connect_error(self, exc: Exception) -> BankError:
        return BankError(f"cannot open bank '{self.path}' ({str(exc).strip()}); check the URL, that the server "
                         f"is running and the password (PGPASSWORD or ~/.pgpass)")

    def _create_extension(self, conninfo: str) -> None:
        try:
            with self._psycopg.connect(conninfo, autocommit=False, connect_timeout=10) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [EXTENSION_LOCK])
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except self._psycopg.errors.InsufficientPrivilege as exc:
            raise BankError(f"bank '{self.path}' needs the pgvector extension and this user may not create it "
                            f"({str(exc).strip()}); run `CREATE EXTENSION vector` as a superuser once") from None
        except self._psycopg.errors.FeatureNotSupported as exc:
            raise BankError(f"bank '{self.path}': the server has no pgvector ({str(exc).strip()}); "
                            f"install pgvector on the server") from None
        except self._psycopg.OperationalError as exc:
            raise self._connect_error(exc) from None

    def _configure(self, conn) -> None:
        """Run on every new pooled connection: vectors as numpy arrays, UTC times, this bank's schema first,
        and the index's search settings (iterative scans, so filtered searches keep going until k match)."""
        self._register_vector(conn)
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f'SET search_path = "{self.schema}", public')  # schema validated by PostgresConfig
        conn.execute("SELECT set_config('hnsw.ef_search', %s, false), set_config('hnsw.iterative_scan', "
                     "'relaxed_order', false), set_config('hnsw.max_scan_tuples', %s, false), "
                     "set_config('ivfflat.probes', %s, false), set_config('ivfflat.iterative_scan', 'relaxed_order', false)",
                     [str(self.config.ef_search), str(self.config.max_scan_tuples), str(self.config.probes)])
        conn.commit()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One transaction on a pooled connection: committed if the block finishes, else rolled back."""
        if self._closed:
            raise BankError(f"bank '{self.path}' is closed; open it again with CaseBank.open(url)")
        try:
            with self._pool.connection() as conn:
                yield conn
        except self._psycopg.OperationalError as exc:
            raise self._connect_error(exc) from None

    def _init_meta(self, embedder: Embedder | None, create: bool) -> None:
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"memento:{self.schema}"])
            if conn.execute("SELECT to_regclass(%s)", [f'"{self.schema}".bank_meta']).fetchone()[0] is None:
                self._create(conn, embedder, create)
            meta = dict(conn.execute("SELECT key, value FROM bank_meta").fetchall())
            version = int(meta.get("schema_version", 0))
            while version < SCHEMA_VERSION:
                if version not in MIGRATIONS:
                    raise BankError(f"bank '{self.path}' has schema version {version}, which this memento cannot "
                                    f"migrate; export it with the memento that wrote it and import it here")
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute("UPDATE bank_meta SET value = %s WHERE key = 'schema_version'", [str(version)])
                log.info("bank %s: schema migrated to version %d", self.path, version)
            if version != SCHEMA_VERSION:
                raise BankError(f"bank '{self.path}' has schema version {version}, "
                                f"this memento reads version {SCHEMA_VERSION}; upgrade memento")
            self.embedder_name, self.dim = meta["embedder_name"], int(meta["dim"])
            self._embedder = self._check_embedder(embedder)
            if self._index_asked and self.config.index != meta["index_kind"]:
                self._build_vector_index(conn, self.config.index)
            elif not self._index_asked:
                self.config = PostgresConfig(**{**self.config.__dict__, "index": meta["index_kind"]})
        self.index_config = IndexConfig(kind=self.config.index)

    def _create(self, conn, embedder: Embedder | None, create: bool) -> None:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", [self.schema]).fetchone()[0]
        if tables:
            raise BankError(f"schema '{self.schema}' of '{self.path}' holds tables but is not a case bank "
                            f"(no bank_meta table); choose another schema (?schema=NAME)")
        if not create:
            raise NotFoundError(f"bank '{self.path}' does not exist; create it first "
                                f"(CaseBank.open(url) or `memento init`)")
        name, dim = (embedder.name, embedder.dim) if embedder else (DEFAULT_MODEL_NAME, DEFAULT_MODEL_DIM)
        for statement in create_statements(self.schema, dim):
            conn.execute(statement)
        conn.cursor().executemany("INSERT INTO bank_meta (key, value) VALUES (%s, %s)", [
            ("schema_version", str(SCHEMA_VERSION)), ("embedder_name", name), ("dim", str(dim)),
            ("index_kind", "flat"), ("created_at", utc_now().isoformat())])
        self._build_vector_index(conn, self.config.index)

    def _build_vector_index(self, conn, kind: str) -> None:
        for statement in vector_index_statements(self.schema, kind, hnsw_m=self.config.hnsw_m,
                                                 ef_construction=self.config.ef_construction, lists=self.config.lists):
            conn.execute(statement)
        conn.execute("UPDATE bank_meta SET value = %s WHERE key = 'index_kind'", [kind])

    # ----------------------------------------------------------------- writes

    def _storage_error(self, exc: Exception) -> ValidationError:
        return ValidationError(f"a case in this batch cannot be stored in PostgreSQL ({str(exc).strip()}); "
                               f"PostgreSQL text cannot hold NUL characters: remove them from the case")

    def _first_existing(self, ids: list[str]) -> str | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM cases WHERE id = ANY(%s) LIMIT 1", [ids]).fetchone()
        return row[0] if row else None

    def _insert(self, cases: list[Case], vectors: np.ndarray) -> None:
        rows = [(*values[:7], c.created_at, c.updated_at, *values[9:], np.asarray(v, dtype=np.float32))
                for c, v in zip(cases, vectors) for values in [case_fields(c)]]
        try:
            with self._transaction() as conn, conn.cursor().copy(f"COPY cases ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                # Binary COPY: one stream a batch, and vectors as float32 bytes (their text form costs more than the write)
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        except self._psycopg.errors.UniqueViolation as exc:
            raise ValidationError(f"a case id in this batch is already in the bank ({str(exc).strip()}); "
                                  f"use update() to change it") from None
        except self._psycopg.DataError as exc:
            raise self._storage_error(exc) from None

    def _replace(self, case_id: str, merge, new_vector: np.ndarray | None) -> Case:
        assignments = ", ".join(f"{column.strip()} = %s" for column in CASE_FIELDS.split(",")[1:])
        try:
            with self._transaction() as conn:
                row = conn.execute(f"SELECT {CASE_FIELDS} FROM cases WHERE id = %s FOR UPDATE", [case_id]).fetchone()
                if row is None:
                    raise NotFoundError(f"case {case_id!r} was deleted while it was being updated")
                new = merge(row_to_case(row))
                values = case_fields(new)[1:]
                if new_vector is None:
                    conn.execute(f"UPDATE cases SET {assignments} WHERE id = %s", [*values, case_id])
                else:
                    conn.execute(f"UPDATE cases SET {assignments}, embedding = %s WHERE id = %s",
                                 [*values, np.asarray(new_vector, dtype=np.float32), case_id])
        except self._psycopg.DataError as exc:
            raise self._storage_error(exc) from None
        return new

    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False) -> int:
        """Delete cases by id in one transaction; any unknown id fails the whole call unless missing_ok."""
        ids = list(dict.fromkeys(ids))
        with self._transaction() as conn:
            found = {r[0] for r in conn.execute("DELETE FROM cases WHERE id = ANY(%s) RETURNING id", [ids])}
            missing = [i for i in ids if i not in found]
            if missing and not missing_ok:
                raise self._missing(missing, "; nothing was deleted")  # the transaction rolls back
        return len(found)

    # ------------------------------------------------------------------ reads

    def _cases_by_id(self, ids: list[str]) -> dict[str, Case]:
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT {CASE_FIELDS} FROM cases WHERE id = ANY(%s)", [ids]).fetchall()
        return {row[0]: row_to_case(row) for row in rows}

    def _vectors_by_id(self, ids: list[str]) -> dict[str, np.ndarray]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, embedding FROM cases WHERE id = ANY(%s)", [ids]).fetchall()
        return {case_id: _array(vector) for case_id, vector in rows}

    def _search(self, vector: np.ndarray, k: int, filters: dict[str, Any] | None, with_vectors: bool) -> list[SearchHit]:
        clause, params = filter_sql(**filters) if filters else ("", [])
        query = np.asarray(vector[0], dtype=np.float32)
        # <#> is the negative inner product: ascending distance is descending cosine on unit vectors.
        sql = (f"SELECT {COLUMNS if with_vectors else CASE_FIELDS}, embedding <#> %s AS distance, seq FROM cases{clause} "
               f"ORDER BY embedding <#> %s LIMIT %s")
        arguments = [query, *params, query, k]
        with self._transaction() as conn:
            if k > self.config.ef_search:  # the beam must hold k; the session setting holds the usual k
                # pgvector refuses a beam over 1000; past it the iterative scan and the exact fallback find the rest.
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(min(k, MAX_EF_SEARCH))])
            rows = conn.execute(sql, arguments).fetchall()
            if len(rows) < k and conn.execute(f"SELECT count(*) FROM cases{clause}", params).fetchone()[0] > len(rows):
                # The index scan stopped before k matches (a narrow filter): search the matching rows exactly.
                conn.execute("SET LOCAL enable_indexscan = off")
                conn.execute("SET LOCAL enable_bitmapscan = off")
                rows = conn.execute(sql, arguments).fetchall()
        rows.sort(key=lambda row: (row[-2], row[-1]))  # relaxed-order scans may return hits slightly out of order
        return [SearchHit(row_to_case(row[:11]), -float(row[-2]), _array(row[11]) if with_vectors else None)
                for row in rows]

    def _select(self, filters: dict[str, Any], order_by: str, descending: bool, limit: int | None,
                offset: int) -> list[Case]:
        clause, params = filter_sql(**filters)
        sql = (f"SELECT {CASE_FIELDS} FROM cases{clause} ORDER BY {order_by} {'DESC' if descending else 'ASC'}, seq "
               f"LIMIT %s OFFSET %s")
        with self._transaction() as conn:
            rows = conn.execute(sql, [*params, limit, int(offset)]).fetchall()
        return [row_to_case(row) for row in rows]

    def count(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """How many cases match the filters."""
        clause, params = filter_sql(**check_filters(dict(namespace=namespace, namespace_prefix=namespace_prefix,
                                                         where=where, **filters)))
        with self._transaction() as conn:
            return int(conn.execute(f"SELECT count(*) FROM cases{clause}", params).fetchone()[0])

    def list_namespaces(self, *, prefix=None, where: dict | None = None, **filters: Any) -> list[tuple[str, ...]]:
        """Distinct namespaces of the cases matching the filters (as iter_cases), sorted; under `prefix` when given."""
        clause, params = filter_sql(**namespace_listing_filters(prefix, where, filters))
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT DISTINCT namespace FROM cases{clause} ORDER BY namespace", params).fetchall()
        return [tuple(r[0].split("/")) for r in rows]

    def stats(self) -> dict[str, Any]:
        """Counts per namespace and dataset, the reward distribution and the index's health."""
        with self._transaction() as conn:
            per_namespace = dict(conn.execute("SELECT namespace, count(*) FROM cases GROUP BY 1 ORDER BY 1").fetchall())
            per_dataset = dict(conn.execute(
                "SELECT coalesce(metadata_json ->> 'dataset', ''), count(*) FROM cases GROUP BY 1 ORDER BY 1").fetchall())
            n, low, high, mean, successes = conn.execute(
                "SELECT count(*), min(reward), max(reward), avg(reward), count(*) FILTER (WHERE reward > 0) FROM cases"
            ).fetchone()
            size = conn.execute("SELECT pg_total_relation_size('cases')").fetchone()[0]
        return {
            "path": self.path, "cases": n, "namespaces": per_namespace, "datasets": per_dataset,
            "reward": {"min": low, "max": high, "mean": mean, "share_positive": successes / n if n else None},
            "embedder": {"name": self.embedder_name, "dim": self.dim},
            "index": {"kind": self.config.index, "vectors": n, "healthy": True},
            "bytes": {"postgres": int(size)},
        }

    # ---------------------------------------------------------- the index

    def save_index(self) -> None:
        """Nothing to save: the server keeps the index."""

    def reindex(self, embedder: Embedder | None = None, *, batch_size: int = 256, progress: bool = False) -> None:
        """Rebuild the vector index, or re-embed every case with another `embedder` (all in one transaction)."""
        if embedder is None:
            with self._transaction() as conn:
                self._build_vector_index(conn, self.config.index)
            return
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, task FROM cases ORDER BY seq").fetchall()
        ids, tasks = [r[0] for r in rows], [r[1] for r in rows]
        chunks = range(0, len(tasks), batch_size)
        if progress:
            from tqdm import tqdm
            chunks = tqdm(chunks, desc="re-embedding", unit="batch")
        vectors = [as_query_matrix(embedder.embed(list(tasks[s:s + batch_size])), embedder.dim, what="embedder output")
                   for s in chunks]
        with self._transaction() as conn:
            conn.execute("DROP INDEX IF EXISTS cases_embedding")
            conn.execute(f"ALTER TABLE cases ADD COLUMN embedding_new vector({int(embedder.dim)})")
            if vectors:
                conn.cursor().executemany("UPDATE cases SET embedding_new = %s WHERE id = %s",
                                          list(zip(np.concatenate(vectors), ids)))
            conn.execute("ALTER TABLE cases DROP COLUMN embedding")
            conn.execute("ALTER TABLE cases RENAME COLUMN embedding_new TO embedding")
            conn.execute("ALTER TABLE cases ALTER COLUMN embedding SET NOT NULL")
            conn.cursor().executemany("UPDATE bank_meta SET value = %s WHERE key = %s",
                             [(embedder.name, "embedder_name"), (str(embedder.dim), "dim")])
            self._build_vector_index(conn, self.config.index)
        self._embedder, self.embedder_name, self.dim = embedder, embedder.name, embedder.dim

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close this process's connections to the server."""
        if not self._closed:
            self._closed = True
            self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresBank('{self.path}', embedder={self.embedder_name!r}, index={self.config.index!r})"
