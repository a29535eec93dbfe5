"""How much of an episode's wall time goes to memory and policy operations (goal: under 2%).

    python -m memento.evals.bench_agent_overhead                       # 6 fictional-world episodes, SmolLM2 on the CPU
    python -m memento.evals.bench_agent_overhead --episodes 3 --policy similarity
    python -m memento.evals.bench_agent_overhead --hotpotqa 3          # also 3 HotpotQA questions, BM25 over the shared corpus
    python -m memento.evals.bench_agent_overhead --torch-threads 1     # one embedder thread (much faster on a busy CPU)

Runs real episodes (the packaged SmolLM2 through llama.cpp, BM25 search, the packaged MiniLM
embedder, a real bank and policy) and splits each episode's wall time into: memory (embedding the
task, writing the case and the trace), policy (select, record, update), the LLM's own calls, tool
calls, the rest of the nodes' work, and LangGraph's own overhead (wall time minus time inside nodes).
The LLM time is the raw-library baseline of the same run: what memento cannot make faster.
The embedder is warmed up first, so its one-time model load is not counted as memory time.
Prints a table and writes JSON to runs/bench/agent_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from memento.envs import fictional_world, qa
from memento.envs.task import shared_data_dir
from memento import CaseBank
from memento.agent import Agent, AgentConfig, EpisodeResult
from memento.llm import load_llm
from memento.tools.search import CorpusSearch, search_tool
from memento.policies import make_policy

BUDGETS = dict(max_subtasks=2, max_steps=4, max_steps_per_subtask=2, max_plan_revisions=1,
               planner_max_tokens=64, executor_max_tokens=48, answer_max_tokens=24)
"""Short episodes: fewer LLM calls make the memory and policy share larger, so the figure is conservative."""


def breakdown(result: EpisodeResult, dataset: str) -> dict[str, Any]:
    """One episode's wall time, split by where it went."""
    timings = result.trace["timings"]
    llm_s = sum(call["seconds"] for call in result.trace["llm_calls"])
    tool_s = sum(step.get("seconds", 0.0) for step in result.trace["trajectory"])
    memory_s, policy_s, active_s = timings["memory_s"], timings["policy_s"], timings["active_s"]
    return {
        "dataset": dataset, "episode_id": result.episode_id, "reward": result.reward,
        "llm_calls": len(result.trace["llm_calls"]), "tool_calls": len(result.trace["tool_calls"]),
        "tokens": sum(result.tokens.values()), "wall_s": result.wall_s, "active_s": active_s,
        "memory_s": memory_s, "policy_s": policy_s, "llm_s": llm_s, "tool_s": tool_s,
        "other_node_s": active_s - memory_s - policy_s - llm_s - tool_s,
        "langgraph_s": result.wall_s - active_s,
        "memory_policy_share": (memory_s + policy_s) / result.wall_s,
        "memory_ops": memory_ops(result), "nodes": timings["nodes"],
    }


def memory_ops(result: EpisodeResult) -> dict[str, float]:
    """Seconds per memory/policy operation (embed, select, write_case, record, update, save_trace)."""
    seconds: dict[str, float] = {}
    for op in result.trace["timings"].get("memory_ops", []):
        seconds[op["op"]] = seconds.get(op["op"], 0.0) + op["seconds"]
    return seconds


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    wall = sum(r["wall_s"] for r in rows)
    parts = ("memory_s", "policy_s", "llm_s", "tool_s", "other_node_s", "langgraph_s")
    shares = [r["memory_policy_share"] for r in rows]
    return {
        "episodes": len(rows), "wall_s": wall, **{p: sum(r[p] for r in rows) for p in parts},
        **{p.replace("_s", "_share"): sum(r[p] for r in rows) / wall for p in parts},
        "memory_policy_share": sum(r["memory_s"] + r["policy_s"] for r in rows) / wall,
        "memory_policy_share_p50": statistics.median(shares), "memory_policy_share_max": max(shares),
        "memory_policy_ms_per_episode": 1000 * sum(r["memory_s"] + r["policy_s"] for r in rows) / len(rows),
        "mean_reward": statistics.mean(r["reward"] or 0.0 for r in rows),
        "memory_ops_ms_per_episode": {op: 1000 * sum(r["memory_ops"].get(op, 0.0) for r in rows) / len(rows)
                                      for op in sorted({op for r in rows for op in r["memory_ops"]})},
    }


def run_episodes(agent: Agent, tasks: list, scorer, dataset: str) -> list[dict[str, Any]]:
    rows = []
    for number, task in enumerate(tasks, start=1):
        result = agent.run(task, scorer=scorer)
        rows.append(breakdown(result, dataset))
        row = rows[-1]
        print(f"  {dataset} {number}/{len(tasks)}: {row['wall_s']:6.1f}s wall, memory {1000 * row['memory_s']:6.1f} ms, "
              f"policy {1000 * row['policy_s']:6.1f} ms, share {100 * row['memory_policy_share']:.3f}%, "
              f"reward {row['reward']}", flush=True)
    return rows


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    print("\n| tasks | episodes | wall s | memory % | policy % | memory+policy % | mem+pol ms/episode | LLM % | tools % "
          "| other nodes % | LangGraph % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['episodes']} | {s['wall_s']:.1f} | {100 * s['memory_share']:.3f} | "
              f"{100 * s['policy_share']:.3f} | **{100 * s['memory_policy_share']:.3f}** | "
              f"{s['memory_policy_ms_per_episode']:.1f} | {100 * s['llm_share']:.1f} | {100 * s['tool_share']:.2f} | "
              f"{100 * s['other_node_share']:.2f} | {100 * s['langgraph_share']:.2f} |")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=6, help="fictional-world episodes")
    parser.add_argument("--hotpotqa", type=int, default=0, help="HotpotQA episodes over the shared corpus (needs ../shared/data)")
    parser.add_argument("--policy", default="neural", help="case-selection policy (similarity, neural, episodic)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1 is fastest on a busy CPU)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads for the embedder (default: torch's own; 1 is fastest on a busy CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/agent_overhead.json"))
    args = parser.parse_args(argv)

    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    workdir = Path(tempfile.mkdtemp(prefix="memento-bench-agent-"))
    bank = CaseBank(workdir / "cases.db")
    bank.embed(["warm up the embedder"])
    llm = load_llm(n_threads=args.threads)
    llm.complete([{"role": "user", "content": "Hi"}], max_tokens=1)  # maps the model file in
    # A learned policy trains from its first episode on, so every episode pays for an update.
    policy = make_policy(args.policy, bank=bank, **({"min_replay": 1} if args.policy.startswith("neural") else {}))
    report: dict[str, Any] = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "loadavg_before": os.getloadavg()},
        "config": {**vars(args), "out": str(args.out), "budgets": BUDGETS, "model": llm.model,
                   "embedder": bank.embedder_name},
        "episodes": {}, "summary": {},
    }

    world = fictional_world.build_world(seed=args.seed)
    corpus = world.write_corpus_jsonl(workdir / "fictional.jsonl")
    search = search_tool(CorpusSearch(corpus, cache_dir=workdir / "search-cache"), max_chars_per_passage=200, default_k=2)
    agent = Agent(llm, bank, policy, [search], config=AgentConfig(namespace=("fictional",), **BUDGETS))
    print(f"{args.episodes} fictional-world episodes, policy {args.policy}, model {llm.model}")
    tasks = world.tasks(args.episodes, seed=args.seed, split="train")
    report["episodes"]["fictional"] = run_episodes(agent, tasks, fictional_world.score, "fictional")
    agent.close()

    if args.hotpotqa:
        corpus_path = shared_data_dir() / "corpus" / "wiki_passages.jsonl.gz"
        if not corpus_path.exists():
            print(f"skipping HotpotQA: {corpus_path} is not there (set MEMENTO_SHARED_DATA)")
        else:
            started = time.perf_counter()
            wiki = search_tool(CorpusSearch(corpus_path), max_chars_per_passage=200, default_k=2)
            print(f"\n{args.hotpotqa} HotpotQA episodes (search index opened in {time.perf_counter() - started:.1f}s)")
            agent = Agent(llm, bank, policy, [wiki], config=AgentConfig(namespace=("hotpotqa",), **BUDGETS))
            tasks = qa.load_qa(name="hotpotqa", limit=args.hotpotqa, seed=args.seed)
            report["episodes"]["hotpotqa"] = run_episodes(agent, tasks, qa.score, "hotpotqa")
            agent.close()

    report["summary"] = {name: summarise(rows) for name, rows in report["episodes"].items()}
    report["summary"]["all"] = summarise([r for rows in report["episodes"].values() for r in rows])
    report["machine"]["loadavg_after"] = os.getloadavg()
    report["bank"] = {"cases": bank.count(), "namespaces": bank.list_namespaces()}
    bank.close()
    print_table(report["summary"])
    ops = report["summary"]["all"]["memory_ops_ms_per_episode"]
    print("\nms per episode: " + ", ".join(f"{op} {ms:.1f}" for op, ms in ops.items()))
    share = report["summary"]["all"]["memory_policy_share"]
    print(f"\nmemory + policy: {100 * share:.3f}% of episode wall time (goal < 2%): {'met' if share < 0.02 else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
