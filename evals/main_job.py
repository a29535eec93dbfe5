"""The project's main job (`make run`): does memory make the embedded agent better, pass after pass?

    python -m evals.main_job                          # offline fictional suite (`make run`): ~9 min on 2 cores
    python -m evals.main_job --suite hotpotqa         # the same job on a shared HotpotQA slice: ~40 min
    python -m evals.main_job --suite hotpotqa --tasks 40 --arms none,similarity,neural   # bigger: hours
    python -m evals.main_job --resume runs/main_job/fictional-20260101-120000   # finish a stopped run

The agent runs on SmolLM2-135M through llama.cpp (embedded, CPU) with a BM25 search tool, in the
paper's iterated protocol: the same tasks for several passes, memory carried over. Arms side by
side, same tasks and seeds: no memory against the neural case-selection policy (add `similarity`
with --arms). The fictional suite is generated from fixed seeds by `envs.fictional_world`: its
corpus is written into the run folder, so the job needs nothing but the repository. The hotpotqa
suite reads `qa/hotpotqa_500.jsonl` and searches `corpus/wiki_passages.jsonl.gz` under the shared
data folder (--data-dir, else $MEMENTO_SHARED_DATA, else ../shared/data).

It prints the exact-match table and the elapsed time, and leaves report.md, summary.json,
episodes.jsonl, manifest.json and the PNG plots in the run folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from envs.task import shared_data_dir
from evals.config import ARMS, EvalConfig, TaskSpec
from evals.report import format_tables
from evals.runner import resume_config, run_eval
from memento.errors import MementoError

SUITES = ("fictional", "hotpotqa")
DEFAULT_TASKS = {"fictional": 2, "hotpotqa": 6}
"""Tasks per pass. An episode of the embedded agent takes 35-60 s on 2 CPU cores (11-15 model calls,
6-9k prompt tokens), so `make run` (2 tasks x 3 passes x 2 arms) ends within 10 minutes."""


def suite_config(suite: str, *, tasks: int, iterations: int, arms: list[str], out_dir: Path,
                 data_dir: Path | None = None, seed: int = 0, concurrency: int = 1) -> EvalConfig:
    """The main job's EvalConfig for `suite` ('fictional' or 'hotpotqa')."""
    common = dict(out_dir=out_dir, arms=arms, iterations=iterations, seed=seed, concurrency=concurrency)
    if suite == "fictional":
        return EvalConfig(tasks=TaskSpec(source="fictional", limit=tasks, seed=seed, options={"world_seed": seed}),
                          **common)
    data_dir = data_dir or shared_data_dir()
    return EvalConfig(
        tasks=TaskSpec(source="qa", path=str(data_dir / "qa" / "hotpotqa_500.jsonl"), limit=tasks, seed=seed),
        corpus=str(data_dir / "corpus" / "wiki_passages.jsonl.gz"),
        **common,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evals.main_job", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=SUITES, default="fictional")
    parser.add_argument("--tasks", type=int, help="tasks per pass (default: 2 fictional, 6 hotpotqa)")
    parser.add_argument("--iterations", type=int, default=3, help="passes over the tasks, memory carried over")
    parser.add_argument("--arms", default="none,neural", help=f"comma-separated, among {','.join(ARMS)}")
    parser.add_argument("--seed", type=int, default=0, help="seeds the task draw, the world, the policies, the LLM")
    # One at a time by default: the embedded backend serialises its calls anyway, so more in flight
    # would not be faster, and sequential episodes keep the order in which each arm learns fixed.
    parser.add_argument("--concurrency", type=int, default=1, help="episodes in flight (use more with a server)")
    parser.add_argument("--data-dir", type=Path, help="shared data folder (hotpotqa suite)")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/main_job/<suite>-<time>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish the run in RUN_DIR with its own config")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        if args.resume:
            config = resume_config(args.resume)
        else:
            out = args.out or Path("runs/main_job") / f"{args.suite}-{datetime.now():%Y%m%d-%H%M%S}"
            config = suite_config(args.suite, tasks=args.tasks or DEFAULT_TASKS[args.suite],
                                  iterations=args.iterations, arms=args.arms.split(","), out_dir=out,
                                  data_dir=args.data_dir, seed=args.seed, concurrency=args.concurrency)
        print(f"run folder: {config.out_dir}  (if stopped, finish it with: python -m evals.main_job "
              f"--resume {config.out_dir})", flush=True)
        summary = run_eval(config, progress=not args.no_progress)
    except (MementoError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print()
    print(format_tables(summary))
    print()
    for name in ("report.md", "accuracy_by_iteration.png"):
        print(f"{name}: {Path(config.out_dir) / name}")
    print(f"elapsed: {elapsed:.0f} s ({summary.episodes} episodes, {summary.episode_seconds / max(1, summary.episodes):.1f} s "
          f"per episode of wall time with {config.concurrency} in flight)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
