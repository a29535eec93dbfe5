"""Benchmark the LLM backends against the raw library they wrap, in one run.

    python -m memento.evals.bench_llm                          # embedded vs raw, then llama_cpp.server at N = 1, 2, 4, 8
    python -m memento.evals.bench_llm --reps 12 --max-tokens 128
    python -m memento.evals.bench_llm --skip-embedded --server-url http://127.0.0.1:8000/v1 --out runs/bench/llm_vllm.json

Measures: the embedded backend's load time and generation tokens/s next to raw llama-cpp-python
(`Llama.create_chat_completion`) on the same prompt with the same settings, interleaved, with a
second raw instance as a noise control (goal: ratio >= 0.95); then throughput with N requests in flight against an OpenAI-compatible
server (by default llama-cpp-python's own, started here on 127.0.0.1; it runs one request at a
time, vLLM batches them), to show whether the client serialises what the server could batch.
Best runs are reported (medians too): on a shared machine single runs swing several-fold.
Prints a markdown table, writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from memento.evals.benchmarking import machine_info, save_and_print
from memento.llm.base import Message

PROMPT: list[Message] = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
RATIO_GOAL = 0.95


def bench_embedded(reps: int, max_tokens: int, n_threads: int) -> dict:
    """Load time and tokens/s of LlamaCppLLM next to raw llama-cpp-python on the same prompt.

    A second raw instance runs too, as a control: raw vs raw shows how far this machine's noise
    alone moves the ratio.
    """
    import llama_cpp

    from memento.llm.llamacpp import LlamaCppLLM, smollm2_gguf_path

    load_s = []
    for _ in range(3):
        started = time.perf_counter()
        ours = LlamaCppLLM(n_threads=n_threads)
        load_s.append(time.perf_counter() - started)
    raws = [llama_cpp.Llama(model_path=str(smollm2_gguf_path()), n_ctx=ours.config.n_ctx, n_threads=n_threads,
                            n_batch=ours.config.n_batch, seed=0, verbose=False) for _ in range(2)]

    def raw_call(llama) -> int:
        response = llama.create_chat_completion(messages=PROMPT, temperature=0.0, max_tokens=max_tokens,
                                                repeat_penalty=1.0, seed=0)
        return response["usage"]["completion_tokens"]

    def our_call() -> int:
        return ours.complete(PROMPT, temperature=0.0, max_tokens=max_tokens).usage.completion_tokens

    calls = {"raw": lambda: raw_call(raws[0]), "raw_control": lambda: raw_call(raws[1]), "memento": our_call}
    for call in calls.values():
        call()  # warm up (the first decode allocates buffers)
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for rep in range(reps):  # interleaved, order flipped each rep, so a noisy neighbour hits all alike
        for name in list(calls) if rep % 2 == 0 else list(calls)[::-1]:
            started = time.perf_counter()
            tokens = calls[name]()
            rates[name].append(tokens / (time.perf_counter() - started))
    # The best run is the one least disturbed by other work on the machine (as timeit takes the minimum);
    # on a shared machine single runs swing several-fold, so the ratio is taken on the best runs.
    best = {name: max(values) for name, values in rates.items()}
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {"load_s_median": statistics.median(load_s), "load_s": load_s, "completion_tokens": tokens,
            "raw_tokens_per_s": best["raw"], "memento_tokens_per_s": best["memento"],
            "ratio": best["memento"] / best["raw"], "meets_goal": best["memento"] / best["raw"] >= RATIO_GOAL,
            "control_ratio": best["raw_control"] / best["raw"], "median_ratio": median["memento"] / median["raw"],
            "median_control_ratio": median["raw_control"] / median["raw"], "samples": rates}


def bench_concurrency(base_url: str | None, levels: list[int], requests: int, max_tokens: int, rounds: int) -> dict:
    """Requests/s and tokens/s with N requests in flight against an OpenAI-compatible server (best of `rounds`)."""
    from contextlib import nullcontext

    from memento.llm.local_server import free_port, llama_server_command, serve
    from memento.llm.openai_backend import OpenAILLM

    server = nullcontext(base_url) if base_url else serve(llama_server_command(free_port()))
    with server as url:
        llm = OpenAILLM(base_url=url, timeout_s=600, extra_body={} if base_url else {"repeat_penalty": 1.0})
        batch = [[{"role": "user", "content": f"Tell me fact number {i} about the sea."}] for i in range(requests)]
        llm.complete(batch[0], max_tokens=4)  # warm up
        best: dict[int, dict] = {}
        for round_index in range(rounds):  # levels in alternating order, best round kept: noise hits all alike
            for level in levels if round_index % 2 == 0 else levels[::-1]:
                started = time.perf_counter()
                results = asyncio.run(llm.acomplete_many(batch, concurrency=level, max_tokens=max_tokens, strict=True))
                elapsed = time.perf_counter() - started
                tokens = sum(r.usage.completion_tokens for r in results)
                row = {"in_flight": level, "requests": requests, "seconds": elapsed,
                       "requests_per_s": requests / elapsed, "tokens_per_s": tokens / elapsed,
                       "mean_latency_s": statistics.mean(r.latency_s for r in results)}
                if level not in best or row["tokens_per_s"] > best[level]["tokens_per_s"]:
                    best[level] = row
        rows = [best[level] for level in levels]
        for row in rows:
            row["speedup_vs_1"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
        return {"server": base_url or "llama_cpp.server (started here)", "model": llm.model, "levels": rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=8, help="interleaved runs of raw, raw again and memento")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8], help="requests in flight")
    parser.add_argument("--requests", type=int, default=8, help="requests per concurrency level")
    parser.add_argument("--concurrency-max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the levels; the best is kept")
    parser.add_argument("--server-url", help="use this OpenAI-compatible /v1 root instead of starting llama_cpp.server")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/llm.json"))
    args = parser.parse_args(argv)
    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_info()}
    if not args.skip_embedded:
        print(f"embedded vs raw llama-cpp-python ({args.reps} reps, {args.max_tokens} tokens)...", flush=True)
        result["embedded"] = bench_embedded(args.reps, args.max_tokens, args.n_threads)
    print(f"concurrency {args.levels} x {args.requests} requests...", flush=True)
    result["concurrency"] = bench_concurrency(args.server_url, args.levels, args.requests, args.concurrency_max_tokens,
                                              args.rounds)
    save_and_print(result, args.out, render_table(result))
    return result


def render_table(result: dict) -> str:
    machine = result["machine"]
    lines = [f"LLM benchmark, {result['date'][:10]}, {machine['cores']} cores, "
             f"load average {machine['load_avg_at_start'][0]:.1f} at start", ""]
    if "embedded" in result:
        e = result["embedded"]
        lines += ["| backend | load s | tokens/s (best run) | ratio to raw | goal >= 0.95 | ratio of medians |",
                  "|---|---|---|---|---|---|",
                  f"| raw llama-cpp-python | | {e['raw_tokens_per_s']:.1f} | | | |",
                  f"| raw again (noise control) | | {max(e['samples']['raw_control']):.1f} | {e['control_ratio']:.2f} "
                  f"| | {e['median_control_ratio']:.2f} |",
                  f"| memento llamacpp | {e['load_s_median']:.2f} | {e['memento_tokens_per_s']:.1f} | "
                  f"{e['ratio']:.2f} | {'yes' if e['meets_goal'] else 'no'} | {e['median_ratio']:.2f} |", ""]
    c = result["concurrency"]
    lines += [f"concurrency against {c['server']} ({c['model']}), best of the rounds:", "",
              "| in flight | requests | seconds | requests/s | tokens/s | speedup vs 1 | mean latency s |",
              "|---|---|---|---|---|---|---|"]
    for row in c["levels"]:
        lines.append(f"| {row['in_flight']} | {row['requests']} | {row['seconds']:.2f} | {row['requests_per_s']:.2f} | "
                     f"{row['tokens_per_s']:.1f} | {row['speedup_vs_1']:.2f} | {row['mean_latency_s']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
