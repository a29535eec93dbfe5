"""Concurrency at load: N writer processes and M searcher processes on one bank, of either backend.

    python -m memento.evals.bench_concurrency                       # N = 1, 2, 4, 8 writers, 2 searchers, SQLite + FAISS
    python -m memento.evals.bench_concurrency --writers 1,4 --cases 200 --searchers 4
    python -m memento.evals.bench_concurrency --bank-url 'postgresql://localhost/memento'   # PostgreSQL + pgvector

Each writer adds `--cases` cases in batches of `--batch` with their vectors given (so the figure is
the bank's write path, not an embedding model), each searcher searches the bank in a loop until
the writers are done. Reported per N: cases written per second (all writers together), searches
per second, search latency p50/p95, errors of any kind (a surfaced "database is locked" among
them), and lost writes: the cases a writer was told were stored that the bank does not hold
afterwards (the goal is 0). N = 1 is the baseline the other levels are read against. With
`--bank-url` each level gets a fresh schema of that server (`schema=bench_<N>w_<random>`), dropped
nowhere: the figures are the server's, so run it against a scratch database.
"""

from __future__ import annotations

import argparse
import re
import multiprocessing as mp
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from memento.evals.benchmarking import machine_info, save_and_print

DIM = 384


def _vectors(seed: int, n: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _writer(location: str, writer: int, cases: int, batch: int, acknowledged, errors, spans) -> None:
    from memento import Case, CaseBank

    with CaseBank.open(location) as bank:
        began = time.time()  # after the imports and the open: the figure is writing, not process start-up
        for start in range(0, cases, batch):
            ids = [f"w{writer}-{i}" for i in range(start, min(cases, start + batch))]
            try:
                bank.add_many([Case(id=i, task=f"writer {writer} case {i}") for i in ids],
                              vectors=_vectors(writer * 1_000_003 + start, len(ids)))
                acknowledged.extend(ids)
            except Exception as error:  # counted, not hidden: the goal is none
                errors.append(f"writer {writer}: {type(error).__name__}: {error}")
        spans.append((began, time.time()))


def _searcher(location: str, seed: int, stop, latencies, errors, ready) -> None:
    from memento import CaseBank

    rng = np.random.default_rng(seed)
    with CaseBank.open(location) as bank:
        bank.search(_vectors(seed, 1)[0], k=8)  # warmed and searching before any writer starts
        ready.append(seed)
        while not stop.is_set():
            query = _vectors(int(rng.integers(1 << 30)), 1)[0]
            started = time.perf_counter()
            try:
                bank.search(query, k=8)
                latencies.append((time.time(), time.perf_counter() - started))
            except Exception as error:
                errors.append(f"searcher: {type(error).__name__}: {error}")
            time.sleep(0.005)


def _wait_until_searching(readers: list, ready, timeout_s: float = 300.0) -> None:
    """Writers start only once every searcher searches: a spawned searcher can take seconds to
    import, longer than a small level's writers take to finish, and would then measure nothing."""
    deadline = time.monotonic() + timeout_s
    while len(ready) < len(readers):
        if any(reader.exitcode is not None for reader in readers):
            raise RuntimeError("a searcher process exited before its first search; run it alone to see why")
        if time.monotonic() > deadline:
            raise RuntimeError(f"searchers not searching after {timeout_s:.0f} s; the machine is overloaded")
        time.sleep(0.05)


def _schema_url(url: str, schema: str) -> str:
    """`url` with its `schema=` parameter set to `schema` (any earlier one replaced)."""
    base, _, query = url.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("schema=")] + [f"schema={schema}"]
    return f"{base}?{'&'.join(params)}"


def _without_password(url: str | None) -> str | None:
    """The URL as it may be saved beside the figures: a password in it becomes ***."""
    return None if url is None else re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def run_level(location: str, writers: int, searchers: int, cases: int, batch: int) -> dict:
    """One level on a new bank at `location` (a SQLite file or a PostgreSQL URL with its own schema)."""
    from memento import Case, CaseBank

    with CaseBank.open(location) as bank:  # created before the processes start, so none races to create it
        bank.add(Case(id="seed", task="seed case"), vector=_vectors(0, 1)[0])
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        acknowledged, errors, latencies, stop = manager.list(), manager.list(), manager.list(), manager.Event()
        spans, ready = manager.list(), manager.list()
        readers = [context.Process(target=_searcher, args=(location, s, stop, latencies, errors, ready))
                   for s in range(searchers)]
        for reader in readers:
            reader.start()
        _wait_until_searching(readers, ready)
        writing = [context.Process(target=_writer, args=(location, w, cases, batch, acknowledged, errors, spans))
                   for w in range(writers)]
        for process in writing:
            process.start()
        for process in writing:
            process.join()
        stop.set()
        for reader in readers:
            reader.join()
        acknowledged, errors, spans = list(acknowledged), list(errors), list(spans)
        began, ended = min(begin for begin, _ in spans), max(end for _, end in spans)
        # Only the searches made while the writers wrote: that is the load being measured.
        latencies = sorted(latency for at, latency in latencies if began <= at <= ended)
    seconds = ended - began
    with CaseBank.open(location) as bank:
        stored = {case.id for case in bank.iter_cases()}
    lost = [i for i in acknowledged if i not in stored]
    return {
        "writers": writers, "searchers": searchers, "cases_acknowledged": len(acknowledged),
        "cases_per_s": len(acknowledged) / seconds, "seconds": seconds,
        "searches": len(latencies), "searches_per_s": len(latencies) / seconds,
        "search_p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "search_p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else None,
        "lost_writes": len(lost), "errors": len(errors), "locked_errors": sum("locked" in e for e in errors),
        "first_error": errors[0] if errors else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memento.evals.bench_concurrency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default="1,2,4,8", help="writer process counts to measure")
    parser.add_argument("--searchers", type=int, default=2, help="searcher processes beside the writers")
    parser.add_argument("--cases", type=int, default=3000, help="cases per writer")
    parser.add_argument("--batch", type=int, default=20, help="cases per add_many call")
    parser.add_argument("--bank-url", help="a PostgreSQL URL: measure that backend (a new schema per level)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the JSON goes (default runs/bench/concurrency.json, or concurrency-postgres.json)")
    args = parser.parse_args(argv)
    out = args.out or Path("runs/bench/concurrency-postgres.json" if args.bank_url else "runs/bench/concurrency.json")
    levels = [int(n) for n in args.writers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for writers in levels:
            location = (_schema_url(args.bank_url, f"bench_{writers}w_{uuid.uuid4().hex[:8]}") if args.bank_url
                        else str(Path(folder) / f"bank-{writers}w.db"))
            rows.append(run_level(location, writers, args.searchers, args.cases, args.batch))
            print(f"{writers} writers: {rows[-1]['cases_per_s']:.0f} cases/s, lost {rows[-1]['lost_writes']}, "
                  f"errors {rows[-1]['errors']}", flush=True)
    header = "| writers | searchers | cases/s | searches/s | search p50 ms | p95 ms | lost writes | errors |\n|---|---|---|---|---|---|---|---|"
    table = "\n".join([header] + [
        f"| {r['writers']} | {r['searchers']} | {r['cases_per_s']:.0f} | {r['searches_per_s']:.0f} | "
        f"{r['search_p50_ms'] or 0:.2f} | {r['search_p95_ms'] or 0:.2f} | {r['lost_writes']} | {r['errors']} |" for r in rows])
    settings = vars(args) | {"out": str(out), "bank_url": _without_password(args.bank_url)}
    save_and_print({"machine": machine_info(), "settings": settings, "levels": rows}, out, table)
    return 1 if any(r["lost_writes"] or r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
