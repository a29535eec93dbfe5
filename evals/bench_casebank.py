"""Benchmark the case bank against the raw libraries it wraps, in one run.

    python -m evals.bench_casebank                 # 10k and 100k cases, about 5 minutes on 2 cores
    python -m evals.bench_casebank --sizes 2000 --queries 200   # a quick look

Measures: add throughput with embedding (next to raw sentence-transformers encode on the
same texts), add throughput with precomputed vectors, search latency p50/p95 at k=8 for the
exact and HNSW indexes (next to raw FAISS on the same vectors and queries), the time to open
a large bank (load its index file) and to rebuild its index from SQLite, and resident memory.
Prints a markdown table and writes JSON to runs/bench/casebank.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from evals.benchmarking import machine_info, save_and_print
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
from evals.bench_casebank import _DimOnly, rss_mb
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--embed-cases", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/casebank.json"))
    args = parser.parse_args(argv)
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
