"""Per-search overhead under load: the bank's search against raw FAISS, on a quiet and on a busy machine, in one run.

    python -m memento.evals.bench_search_load                       # 10k cases, 0 / 2 / 4 busy processes
    python -m memento.evals.bench_search_load --cases 20000 --loads 0 4 8

The load is N processes spinning in a Python loop (each wants a whole core), started before and
stopped after each measurement. At each load level the bank's `search` and raw FAISS on the same
vectors (the same IndexIDMap2 layout, the same OpenMP thread setting) are timed interleaved, so
both see the same contention; the overhead is the difference of their p50s, and the ratio their
quotient. The bank is filled through its API with synthetic unit vectors (no embedder runs), and
a second bank search with a namespace filter shows what the filter's SQL adds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from memento.evals.bench_casebank import build_bank, percentiles
from memento.evals.benchmarking import machine_info, save_and_print
from memento.bank.vector_index import IndexConfig, VectorIndex, omp_threads


def spin(stop) -> None:
    """A busy process: pure Python work until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x = (x * 31 + 7) % 1_000_003


def measure(bank, raw: VectorIndex, queries: np.ndarray, k: int) -> dict:
    raw_times, bank_times, filtered_times = [], [], []
    for q in queries:  # interleaved: the three see the same contention
        start = time.perf_counter()
        with omp_threads(raw.config.search_threads):
            raw.index.search(q[None, :], k)
        raw_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bank.search(q, k=k)
        bank_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bank.search(q, k=k, namespace=("bench",))
        filtered_times.append(time.perf_counter() - start)
    raw_p, bank_p, filtered_p = percentiles(raw_times), percentiles(bank_times), percentiles(filtered_times)
    return {"raw_faiss": raw_p, "memento": bank_p, "memento_namespace_filter": filtered_p,
            "overhead_p50_ms": bank_p["p50_ms"] - raw_p["p50_ms"], "ratio_p50": bank_p["p50_ms"] / raw_p["p50_ms"],
            "filter_overhead_p50_ms": filtered_p["p50_ms"] - raw_p["p50_ms"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--loads", type=int, nargs="+", default=[0, 2, 4], help="Busy processes per level.")
    parser.add_argument("--kind", default="flat", choices=["flat", "hnsw"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/search_load.json"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.cases, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.integers(0, args.cases, args.queries)] + 0.1 * rng.normal(size=(args.queries, args.dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_info(faiss=faiss.__version__), "cases": args.cases, "kind": args.kind,
                    "embedder": "none: synthetic unit vectors passed to add_many(vectors=...)", "levels": {}}
    with tempfile.TemporaryDirectory() as tmp:
        _, bank = build_bank(Path(tmp) / "load.db", vectors, args.kind)
        bank.update(next(bank.iter_cases(limit=1)).id, namespace=("bench",))  # one case in the filtered namespace
        raw = VectorIndex(args.dim, IndexConfig(kind=args.kind))
        raw.add(np.arange(1, args.cases + 1), vectors)
        measure(bank, raw, queries[:30], 8)  # warm up
        for load in args.loads:
            stop = multiprocessing.Event()
            workers = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(load)]
            for worker in workers:
                worker.start()
            time.sleep(0.5 if load else 0.0)
            entry = measure(bank, raw, queries, 8)
            entry["load_avg_1m"] = os.getloadavg()[0]
            stop.set()
            for worker in workers:
                worker.join()
            result["levels"][str(load)] = entry
            print(f"load {load}: memento p50 {entry['memento']['p50_ms']:.3f} ms, raw {entry['raw_faiss']['p50_ms']:.3f} ms",
                  flush=True)
        bank.close()
    save_and_print(result, args.out, render_table(result))
    return result


def render_table(result: dict) -> str:
    rows = [f"search under load: {result['cases']} cases, {result['kind']} index, {result['machine']['cores']} cores",
            "", "| busy processes | load avg | raw FAISS p50 / p95 ms | memento p50 / p95 ms | overhead p50 ms | ratio p50 "
            "| with namespace filter p50 ms |", "|---|---|---|---|---|---|---|"]
    for load, e in result["levels"].items():
        rows.append(f"| {load} | {e['load_avg_1m']:.1f} | {e['raw_faiss']['p50_ms']:.3f} / {e['raw_faiss']['p95_ms']:.3f} | "
                    f"{e['memento']['p50_ms']:.3f} / {e['memento']['p95_ms']:.3f} | {e['overhead_p50_ms']:.3f} | "
                    f"{e['ratio_p50']:.2f} | {e['memento_namespace_filter']['p50_ms']:.3f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
