"""What case selection costs on a CPU, next to the FAISS search it follows.

Builds a bank of --cases synthetic cases at MiniLM's dimension (384), trains nothing, and times:
the raw FAISS search (the library alone) and the bank's search for the 64 candidates; scoring 64
candidates and choosing K (features, the network, top-K or sampling; goal under 1 ms); a whole
`select`; one `record`; one gradient step on a batch of 32 recorded episodes (goal under 5 ms
median), next to a bare torch step of the same network (prebuilt tensors, forward, loss,
backward, fused AdamW) timed in alternation with it, so that both see the same load and their
ratio is the policy's own overhead; and the episodic-control estimate over 64 candidates.
Times are medians over --repeats calls.

    python -m memento.evals.bench_policy
    python -m memento.evals.bench_policy --cases 2000 --repeats 100 --out runs/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import faiss
import numpy as np

from memento.envs.case_usefulness import SyntheticEmbedder
from memento import Case, CaseBank
from memento.bank.vector_index import omp_threads
from memento.embedders import normalize_rows
from memento.policies import TaskState, make_policy
from memento.policies.base import sample_without_replacement, top_k
from memento.threads import torch_threads

DIM = 384
CANDIDATES = 64
K = 4
BATCH = 32


def timed(function: Callable[[], object], repeats: int) -> dict[str, float]:
    """10th, 50th and 90th percentile wall time of `function`, in milliseconds, after two warm-up calls.

    On a shared machine the median includes waiting for a core; the 10th percentile is closer
    to the cost of the work itself.
    """
    function(), function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p10_ms": float(np.percentile(samples, 10)), "median_ms": float(np.median(samples)),
            "p90_ms": float(np.percentile(samples, 90))}


def timed_pair(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[dict, dict]:
    """`timed` for two functions called in alternation, so that both see the same load."""
    first(), second(), first(), second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, into in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            function()
            into.append((time.perf_counter() - start) * 1000)
    return tuple({"p10_ms": float(np.percentile(s, 10)), "median_ms": float(np.median(s)),
                  "p90_ms": float(np.percentile(s, 90))} for s in samples)


def bare_step(policy, batch) -> Callable[[], None]:
    """One optimiser step of a copy of the policy's network on prebuilt tensors: the floor for `gradient_step`."""
    import copy

    import torch
    from torch.nn import functional as F

    from memento.policies.neural_q import _padded

    net = copy.deepcopy(policy.net)
    optimizer = torch.optim.AdamW(net.parameters(), lr=policy.config.lr, weight_decay=policy.config.weight_decay,
                                  fused=True)
    states, cases, features, shown = _padded(batch, [t.case_vectors for t in batch], [t.case_features for t in batch])
    targets = torch.tensor([t.reward for t in batch], dtype=torch.float32)

    def step() -> None:
        with torch_threads(policy.config.torch_threads):
            loss = F.binary_cross_entropy_with_logits(net.base(states) + (net(states, cases, features) * shown).sum(1),
                                                      targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in the bank")
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per measurement")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for policy.json")
    args = parser.parse_args(argv)

    load_at_start = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    vectors = normalize_rows(rng.standard_normal((args.cases, DIM)).astype(np.float32))
    queries = normalize_rows(vectors[rng.integers(args.cases, size=64)] + 0.3 * rng.standard_normal((64, DIM)) / np.sqrt(DIM))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as workdir:
        bank = CaseBank(Path(workdir) / "bench.db", embedder=SyntheticEmbedder(DIM))
        bank.add_many([Case(task=f"case {i}", reward=float(i % 2)) for i in range(args.cases)], vectors=vectors)
        state = TaskState(task="query", embedding=queries[0])

        raw = faiss.IndexFlatIP(DIM)
        raw.add(vectors)

        def raw_search() -> None:
            # The bank searches with one OpenMP thread; the raw library gets the same.
            with omp_threads(1):
                raw.search(queries[:1], CANDIDATES)

        results["faiss_raw_search_64"] = timed(raw_search, args.repeats)
        results["bank_search_64_with_vectors"] = timed(
            lambda: bank.search(state.embedding, k=CANDIDATES, with_vectors=True), args.repeats)

        neural = make_policy("neural", bank=bank, candidates=CANDIDATES, gradient_steps=0)
        candidates = neural._candidates(state, CANDIDATES, None)
        features = neural.features(candidates.cases, candidates.similarities)
        results["neural_score_64_and_top_k"] = timed(
            lambda: top_k(neural.score(state.embedding, candidates.vectors, features), K), args.repeats)
        results["neural_score_64_and_sample_k"] = timed(
            lambda: sample_without_replacement(neural.score(state.embedding, candidates.vectors, features) / 0.5, K, rng),
            args.repeats)
        results["neural_features_score_64_and_top_k"] = timed(
            lambda: top_k(neural.score(state.embedding, candidates.vectors,
                                       neural.features(candidates.cases, candidates.similarities)), K), args.repeats)
        results["neural_select_whole"] = timed(lambda: neural.select(state, explore=True), args.repeats)

        ids = [c.id for c in candidates.cases[:K]]
        results["neural_record_sqlite"] = timed(lambda: neural.record(state, ids, 1.0), min(args.repeats, 100))
        for i in range(BATCH):
            shown = [s.case.id for s in neural.select(TaskState(task="q", embedding=queries[i % 64]), explore=True)]
            neural.record(TaskState(task="q", embedding=queries[i % 64]), shown, float(i % 2))
        batch = neural.replay.sample(BATCH, rng)

        def gradient_step() -> None:
            with torch_threads(neural.config.torch_threads):
                neural.gradient_step(batch)

        results["neural_gradient_step_batch_32"], results["bare_torch_step_batch_32"] = timed_pair(
            gradient_step, bare_step(neural, batch), args.repeats)
        # The same buffer, read by a policy that takes one step an update: shared on purpose.
        single = make_policy("neural", bank=bank, candidates=CANDIDATES, gradient_steps=1, share=True)
        results["neural_update_1_step_with_sampling"] = timed(single.update, args.repeats)

        episodic = make_policy("episodic", bank=bank, candidates=CANDIDATES)
        for i in range(200):
            query = TaskState(task="q", embedding=queries[i % 64])
            episodic.record(query, [s.case.id for s in episodic.select(query, explore=True)], float(i % 2))
        case_ids = [c.id for c in candidates.cases]
        results["episodic_score_64_and_top_k"] = timed(
            lambda: top_k(episodic.q_values(state.embedding, case_ids), K), args.repeats)
        bank.close()

    faiss_ms = results["faiss_raw_search_64"]["median_ms"]
    report = {
        "cases": args.cases, "dim": DIM, "candidates": CANDIDATES, "k": K, "batch": BATCH,
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "load_average_1m_start": load_at_start, "load_average_1m": os.getloadavg()[0], "torch_threads": neural.config.torch_threads, "faiss_threads": 1},
        "goals_ms": {"neural_score_64_and_top_k": 1.0, "neural_gradient_step_batch_32": 5.0},
        "gradient_step_over_bare_torch": (results["neural_gradient_step_batch_32"]["median_ms"]
                                          / results["bare_torch_step_batch_32"]["median_ms"]),
        "results": {name: {**values, "x_faiss_raw": values["median_ms"] / faiss_ms} for name, values in results.items()},
    }
    print(f"{'measurement':<40}{'p10 ms':>9}{'median ms':>11}{'p90 ms':>9}{'x raw FAISS':>13}  goal: p10 / median")
    for name, values in report["results"].items():
        goal = report["goals_ms"].get(name)
        verdict = "" if goal is None else " / ".join(
            "ok" if values[key] < goal else "missed" for key in ("p10_ms", "median_ms")) + f" (< {goal:g} ms)"
        print(f"{name:<40}{values['p10_ms']:>9.3f}{values['median_ms']:>11.3f}{values['p90_ms']:>9.3f}{values['x_faiss_raw']:>13.2f}  {verdict}")
    print(f"gradient step / bare torch step of the same network (medians): {report['gradient_step_over_bare_torch']:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "policy.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'policy.json'} ({args.cases} cases, dim {DIM}, 1 torch and 1 FAISS thread, "
          f"load average {report['machine']['load_average_1m']:.1f} on {os.cpu_count()} CPUs)")
    return report


if __name__ == "__main__":
    main()
