"""How the bank's costs grow from 10k to 1M cases, next to raw FAISS on the same vectors, in one run.

    python -m memento.evals.bench_scale                                   # 10k, 100k, 1M (flat); HNSW up to 100k
    python -m memento.evals.bench_scale --sizes 10000 100000 --hnsw-max 100000 --out runs/bench/scale.json

Cases are added through the bank's API with precomputed vectors (`add_many(cases, vectors=...)`):
synthetic unit vectors of the packaged embedder's dimension (384), generated in chunks from a fixed
seed; no embedder runs (the real one cannot embed 1M texts on this machine). Per size and index
kind it measures: add throughput, the time to open the bank in a fresh process and that process's
RSS, search p50/p95 against raw FAISS (the same IndexIDMap2 layout, the same vectors, queries and
OpenMP setting, timed interleaved), the time to rebuild the index from SQLite, and (flat) the
neural policy's candidate scoring (`select`) and `record` + `update`. Each size runs once. It
writes JSON and a log-log plot (docs/images/scale_costs.png by default).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from memento.evals.bench_casebank import _DimOnly, measure_open_in_subprocess, percentiles, rss_mb
from memento.evals.benchmarking import machine_info, save_and_print
from memento import Case, CaseBank
from memento.bank.vector_index import IndexConfig, VectorIndex, omp_threads
from memento.policy import TaskState

CHUNK = 50_000
K = 8


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def chunks(n: int, dim: int, seed: int = 0):
    """The size's vectors, CHUNK at a time, the same for the bank and for raw FAISS."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        yield start, unit_rows(rng, min(CHUNK, n - start), dim)


def build(path: Path, n: int, dim: int, kind: str, *, raw_copy: bool = False) -> tuple[CaseBank, VectorIndex, dict]:
    """The bank filled through add_many, and raw FAISS filled with the same vectors; their build times.

    `raw_copy`: raw FAISS is not built but read back from the bank's saved index file with
    `faiss.read_index` (the very graph the bank searches): half the build time where a build takes
    many minutes (HNSW at 1M), at the price of no raw add throughput for that size.
    """
    bank = CaseBank(path, embedder=_DimOnly(dim), index=kind)
    raw = VectorIndex(dim, IndexConfig(kind=kind))
    bank_s = raw_s = 0.0
    for start, vectors in chunks(n, dim):
        cases = [Case(task=f"task {start + i}", metadata={"dataset": "scale"}) for i in range(len(vectors))]
        begin = time.perf_counter()
        bank.add_many(cases, vectors=vectors, batch_size=5000)
        bank_s += time.perf_counter() - begin
        print(f"  {start + len(vectors):,} cases in, {(start + len(vectors)) / bank_s:,.0f} cases/s", flush=True)
        if not raw_copy:
            begin = time.perf_counter()
            raw.add(np.arange(start + 1, start + len(vectors) + 1), vectors)
            raw_s += time.perf_counter() - begin
    begin = time.perf_counter()
    bank.save_index()
    save_s = time.perf_counter() - begin
    timing = {"bank_add_per_s": n / bank_s, "bank_add_s": bank_s, "index_save_s": save_s}
    if raw_copy:
        raw.index = faiss.read_index(str(path.with_name(path.name + ".faiss")))  # reads FAISS's part, not the trailer
        if kind == "hnsw":
            faiss.downcast_index(raw.index.index).hnsw.efSearch = raw.config.ef_search
        return bank, raw, {**timing, "raw_faiss": "faiss.read_index of the bank's saved index (not built separately)"}
    return bank, raw, {**timing, "raw_faiss_add_per_s": n / raw_s, "raw_faiss_add_s": raw_s}


def search(bank: CaseBank, raw: VectorIndex, queries: np.ndarray, sequential: bool = False) -> dict:
    if sequential:
        return search_in_blocks(bank, raw, queries)
    for q in queries[:20]:  # warm up both
        bank.search(q, k=K)
        raw.index.search(q[None, :], K)
    bank_times, raw_times, index_times = [], [], []
    for q in queries:
        begin = time.perf_counter()
        with omp_threads(raw.config.search_threads):
            raw.index.search(q[None, :], K)
        raw_times.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        bank.search(q, k=K)
        bank_times.append(time.perf_counter() - begin)
        begin = time.perf_counter()  # the bank's own FAISS index through its VectorIndex: splits FAISS from the rest
        bank._index.search(q[None, :], K)
        index_times.append(time.perf_counter() - begin)
    bank_p, raw_p, index_p = percentiles(bank_times), percentiles(raw_times), percentiles(index_times)
    goal = 1.5 * raw_p["p50_ms"] + 0.5
    return {"memento": bank_p, "raw_faiss": raw_p, "memento_vector_index_only": index_p,
            "ratio_p50": bank_p["p50_ms"] / raw_p["p50_ms"], "goal_p50_ms": goal,
            "meets_goal": bank_p["p50_ms"] <= goal, "profile_top": profile(bank, queries)}


def search_in_blocks(bank: CaseBank, raw: VectorIndex, queries: np.ndarray) -> dict:
    """The same three timings, each in a loop of its own (two copies of a large index searched in turn evict
    each other from the CPU caches, which the interleaved loop charges to whichever runs second)."""
    def timed(call) -> dict:
        for q in queries[:20]:
            call(q)
        times = []
        for q in queries:
            begin = time.perf_counter()
            call(q)
            times.append(time.perf_counter() - begin)
        return percentiles(times)

    def raw_search(q):
        with omp_threads(raw.config.search_threads):
            raw.index.search(q[None, :], K)

    raw_p = timed(raw_search)
    index_p = timed(lambda q: bank._index.search(q[None, :], K))
    bank_p = timed(lambda q: bank.search(q, k=K))
    goal = 1.5 * raw_p["p50_ms"] + 0.5
    return {"memento": bank_p, "raw_faiss": raw_p, "memento_vector_index_only": index_p, "timing": "in blocks",
            "ratio_p50": bank_p["p50_ms"] / raw_p["p50_ms"], "goal_p50_ms": goal,
            "meets_goal": bank_p["p50_ms"] <= goal, "profile_top": profile(bank, queries)}


def profile(bank: CaseBank, queries: np.ndarray, top: int = 8) -> list[dict]:
    """cProfile of the bank's searches: the functions that take the most time of their own (where the overhead goes)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for q in queries:
        bank.search(q, k=K)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    return [{"function": f"{Path(file).name}:{line}({name})", "calls": calls, "own_ms_per_search": own * 1000 / len(queries),
             "cumulative_ms_per_search": cumulative * 1000 / len(queries)}
            for (file, line, name), (_, calls, own, cumulative, _) in rows]


def policy_costs(bank: CaseBank, queries: np.ndarray, rounds: int = 30) -> dict:
    """The neural policy on this bank: candidate scoring (select) and learning (record + update), per call."""
    from memento.policies import make_policy

    policy = make_policy("neural", bank, min_replay=8)
    select_s, learn_s = [], []
    for i in range(rounds):
        state = TaskState(task=f"query {i}", embedding=queries[i % len(queries)])
        begin = time.perf_counter()
        shown = policy.select(state, k=4, explore=True)
        select_s.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        policy.record(state, [s.case.id for s in shown], float(i % 2))
        policy.update()
        learn_s.append(time.perf_counter() - begin)
    policy.close()
    return {"candidates": policy.config.candidates, "select": percentiles(select_s[5:]),
            "record_update": percentiles(learn_s[policy.config.min_replay:])}


def rebuild_s(path: Path, dim: int) -> float:
    with CaseBank(path, embedder=_DimOnly(dim)) as bank:
        begin = time.perf_counter()
        bank.reindex()
        return time.perf_counter() - begin


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="Largest size to build an HNSW index for.")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw"], choices=["flat", "hnsw"])
    parser.add_argument("--sequential", action="store_true",
                        help="Time raw FAISS, the bank's index and bank.search each in its own loop, not interleaved.")
    parser.add_argument("--raw-copy-above", type=int, default=None,
                        help="Above this size, raw FAISS searches a copy of the bank's saved index instead of building its own.")
    parser.add_argument("--folder", type=Path, default=None, help="Where the banks go (default: a temporary folder).")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/scale.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/images/scale_costs.png"))
    args = parser.parse_args(argv)
    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_info(faiss=faiss.__version__), "search_timing": "in blocks" if args.sequential
                    else "interleaved",
                    "embedder": f"none: synthetic unit vectors (dim {args.dim}) passed to add_many(vectors=...)",
                    "k": K, "sizes": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        for n in args.sizes:
            rng = np.random.default_rng(1)
            entry: dict = {}
            for kind in args.kinds:
                if kind == "hnsw" and n > args.hnsw_max:
                    entry[kind] = {"skipped": f"HNSW build above {args.hnsw_max} cases does not fit this run's time"}
                    continue
                path = Path(tmp) / f"{kind}-{n}.db"
                print(f"{n} cases, {kind}: building...", flush=True)
                raw_copy = args.raw_copy_above is not None and n > args.raw_copy_above
                bank, raw, timing = build(path, n, args.dim, kind, raw_copy=raw_copy)
                queries = unit_rows(rng, args.queries, args.dim)
                print(f"{n} cases, {kind}: searching...", flush=True)
                entry[kind] = {**timing, "search": search(bank, raw, queries, args.sequential),
                               "builder_rss_mb": rss_mb()}
                print(f"{n} cases, {kind}: neural policy...", flush=True)
                entry[kind]["policy"] = policy_costs(bank, queries)
                bank.close()
                del raw
                entry[kind]["open"] = measure_open_in_subprocess(path, args.dim)
                entry[kind]["rebuild_s"] = rebuild_s(path, args.dim)
                entry[kind]["sqlite_mb"] = path.stat().st_size / 2**20
                entry[kind]["index_file_mb"] = path.with_name(path.name + ".faiss").stat().st_size / 2**20
                for leftover in Path(tmp).glob(f"{kind}-{n}.db*"):
                    leftover.unlink()
                print(f"  {kind} done at {time.perf_counter() - started:.0f} s", flush=True)
            result["sizes"][str(n)] = entry
    result["total_s"] = time.perf_counter() - started
    plot(result, args.plot)
    result["plot"] = str(args.plot)
    save_and_print(result, args.out, render_table(result))
    return result


def series(result: dict, kind: str, pick) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for n, entry in result["sizes"].items():
        if "skipped" not in entry.get(kind, {"skipped": 1}):
            xs.append(int(n))
            ys.append(pick(entry[kind]))
    return xs, ys


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = {
        "search p50, flat (ms)": ("flat", lambda e: e["search"]["memento"]["p50_ms"]),
        "raw FAISS p50, flat (ms)": ("flat", lambda e: e["search"]["raw_faiss"]["p50_ms"]),
        "search p50, HNSW (ms)": ("hnsw", lambda e: e["search"]["memento"]["p50_ms"]),
        "raw FAISS p50, HNSW (ms)": ("hnsw", lambda e: e["search"]["raw_faiss"]["p50_ms"]),
        "open (s)": ("flat", lambda e: e["open"]["open_s"]),
        "rebuild, flat (s)": ("flat", lambda e: e["rebuild_s"]),
        "rebuild, HNSW (s)": ("hnsw", lambda e: e["rebuild_s"]),
        "add, per 1k cases, flat (s)": ("flat", lambda e: 1000 / e["bank_add_per_s"]),
        "add, per 1k cases, HNSW (s)": ("hnsw", lambda e: 1000 / e["bank_add_per_s"]),
        "RSS after open (GB)": ("flat", lambda e: e["open"]["rss_after_mb"] / 1024),
        "policy select, flat (ms)": ("flat", lambda e: e["policy"]["select"]["p50_ms"]),
        "policy select, HNSW (ms)": ("hnsw", lambda e: e["policy"]["select"]["p50_ms"]),
        "policy record+update (ms)": ("flat", lambda e: e["policy"]["record_update"]["p50_ms"]),
    }
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.get_cmap("tab20").colors  # more lines than the default cycle has colours
    for index, (label, (kind, pick)) in enumerate(lines.items()):
        xs, ys = series(result, kind, pick)
        if xs:
            ax.plot(xs, ys, marker="os^D"[index % 4], color=colors[index % len(colors)],
                    linestyle="--" if "raw" in label else "-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cases in the bank")
    ax.set_ylabel("cost (unit in the legend)")
    ax.set_title(f"memento bank costs by size ({result['machine']['cores']} cores, synthetic 384-d vectors)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_table(result: dict) -> str:
    rows = [f"bank costs by size; {result['embedder']}; total {result['total_s']:.0f} s", "",
            "| cases | index | add cases/s (raw FAISS) | search p50 / p95 ms | raw FAISS p50 / p95 ms | ratio p50 | goal 1.5x+0.5 ms "
            "| open s | RSS after open MB | rebuild s | policy select / record+update ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, entry in result["sizes"].items():
        for kind, e in entry.items():
            if "skipped" in e:
                rows.append(f"| {int(n):,} | {kind} | {e['skipped']} |||||||||")
                continue
            s = e["search"]
            policy = (f"{e['policy']['select']['p50_ms']:.1f} / {e['policy']['record_update']['p50_ms']:.1f}"
                      if "policy" in e else "")
            rows.append(
                f"| {int(n):,} | {kind} | {e['bank_add_per_s']:,.0f} ({_raw_add(e)}) | "
                f"{s['memento']['p50_ms']:.3f} / {s['memento']['p95_ms']:.3f} | {s['raw_faiss']['p50_ms']:.3f} / "
                f"{s['raw_faiss']['p95_ms']:.3f} | {s['ratio_p50']:.2f} | {'met' if s['meets_goal'] else 'missed'} | "
                f"{e['open']['open_s']:.2f} | {e['open']['rss_after_mb']:.0f} | {e['rebuild_s']:.2f} | {policy} |")
    return "\n".join(rows)


def _raw_add(entry: dict) -> str:
    return f"{entry['raw_faiss_add_per_s']:,.0f}" if "raw_faiss_add_per_s" in entry else "not built: a copy of the bank's"


if __name__ == "__main__":
    main()
