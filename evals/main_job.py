"""The project's main job (`make run`): does memory make the embedded agent better on tasks it never saw?

    python -m memento.evals.main_job                          # offline fictional world (`make run`): about 4 min on 2 cores
    python -m memento.evals.main_job --seed 3                 # another world and another draw of tasks
    python -m memento.evals.main_job --spec-seed 7            # a world whose relations and question shapes the code never saw
    python -m memento.evals.main_job --arms none,similarity,neural --train-tasks 90 --test-tasks 60   # the longer run
    python -m memento.evals.main_job --suite hotpotqa         # the same protocol on shared HotpotQA questions
    python -m memento.evals.main_job --fallback plan --train-tasks 4 --test-tasks 4   # the LLM planner instead (slow)
    python -m memento.evals.main_job --resume runs/main_job/fictional-20260101-120000   # finish a stopped run
    python -m memento.evals.main_job --workers 4 --llm-url http://127.0.0.1:8000/v1   # 4 worker processes, 1 learner, a server
    python -m memento.evals.main_job --workers 4 --bank-url 'postgresql://me@db/memento?schema=run7'   # banks in PostgreSQL

The agent runs on SmolLM2-135M through llama.cpp (embedded, CPU) with a BM25 search tool, in the
split protocol: a training pass over train tasks with learning on (each episode becomes a case,
with the procedure induced from its trajectory, and the policy learns from its reward), then a
test pass over held-out tasks of the same shapes with learning off. Arms run side by side on the
same tasks and seeds: no memory against the neural case-selection policy (add `similarity` with
--arms). Every arm has the same executor, tools and budgets; a task no remembered procedure fits
is explored (searches outward from the task, one constrained answer choice), so the only
difference between arms is what memory provides.

The fictional world is generated from --seed by `envs.fictional_world` (world and task draw
together) and its corpus written into the run folder: the job needs nothing but the repository.
The hotpotqa suite reads `qa/hotpotqa_500.jsonl` and searches `corpus/wiki_passages.jsonl.gz`
under the shared data folder (--data-dir, else $MEMENTO_SHARED_DATA, else ../shared/data).

It prints the test table (EM and F1 per arm with 95% bootstrap intervals and the paired
difference to the no-memory arm) and the elapsed time, and exits with 1 and one line on stderr if
any episode errored (a model server that is down, say; --resume retries them). It leaves report.md, summary.json,
episodes.jsonl, manifest.json and the PNG plots (learning_curve.png among them) in the run folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from memento.envs.task import shared_data_dir
from memento.evals.config import ARMS, EvalConfig, LLMSpec, TaskSpec
from memento.evals.report import error_line, format_tables
from memento.evals.runner import resume_config, run_eval
from memento.errors import MementoError

SUITES = ("fictional", "hotpotqa")
DEFAULT_TASKS = {"fictional": (100, 60), "hotpotqa": (100, 60)}
"""(train, test) tasks. An explored episode of the embedded agent takes about 1.3 s on 2 cores (one
model call), a recalled one 0.1-0.3 s, so `make run` (100 + 60 tasks x 2 arms) takes about 4 minutes."""
WORLD_SIZE = 200
"""Entities in the fictional world: enough for 170 train and 78 test questions over its nine shapes."""
AGENT_OPTIONS = {"fallback": "explore"}
"""The embedded 135M model cannot plan a multi-hop search from scratch; it explores and chooses instead."""


def suite_config(suite: str, *, train_tasks: int, test_tasks: int, iterations: int, arms: list[str], out_dir: Path,
                 data_dir: Path | None = None, seed: int = 0, spec_seed: int | None = None,
                 concurrency: int = 1, fallback: str = AGENT_OPTIONS["fallback"],
                 llm_urls: list[str] | None = None, bank_url: str | None = None) -> EvalConfig:
    """The main job's EvalConfig for `suite` ('fictional' or 'hotpotqa'): a train pass, then a held-out test pass.

    `llm_urls`: OpenAI-compatible servers to use instead of the embedded model (several are balanced);
    `bank_url`: a postgresql:// URL for the arms' banks instead of SQLite files in the run folder.
    """
    common = dict(out_dir=out_dir, arms=arms, iterations=iterations, seed=seed, concurrency=concurrency,
                  protocol="split", agent_options={**AGENT_OPTIONS, "fallback": fallback}, bank_url=bank_url)
    if llm_urls:
        common["llm"] = server_llm(llm_urls)
    if suite == "fictional":
        world = {"world_seed": seed, "n_entities": WORLD_SIZE}
        if spec_seed is not None:
            world["spec_seed"] = spec_seed
        return EvalConfig(
            tasks=TaskSpec(source="fictional", limit=train_tasks, seed=seed, options={**world, "split": "train"}),
            test_tasks=TaskSpec(source="fictional", limit=test_tasks, seed=seed, options={**world, "split": "test"}),
            **common)
    data_dir = data_dir or shared_data_dir()
    questions = str(data_dir / "qa" / "hotpotqa_500.jsonl")
    return EvalConfig(
        tasks=TaskSpec(source="qa", path=questions, limit=train_tasks, seed=seed),
        test_tasks=TaskSpec(source="qa", path=questions, limit=test_tasks, seed=seed, options={"offset": train_tasks}),
        corpus=str(data_dir / "corpus" / "wiki_passages.jsonl.gz"),
        **common,
    )


def server_llm(urls: list[str], **options) -> LLMSpec:
    """The agent's LLM on OpenAI-compatible servers: one URL as it is, several balanced (least busy first)."""
    if len(urls) == 1:
        return LLMSpec(backend="openai", options={"base_url": urls[0], **options})
    return LLMSpec(backend="balanced", options={"base_urls": urls, **options})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m memento.evals.main_job", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=SUITES, default="fictional")
    parser.add_argument("--train-tasks", type=int, help="tasks of the training pass (default 100)")
    parser.add_argument("--test-tasks", type=int, help="held-out tasks of the test pass (default 60)")
    parser.add_argument("--iterations", type=int, default=1, help="training passes over the train tasks")
    parser.add_argument("--arms", default="none,neural", help=f"comma-separated, among {','.join(ARMS)}")
    parser.add_argument("--seed", type=int, default=0, help="seeds the world, the task draw, the policies, the LLM")
    parser.add_argument("--spec-seed", type=int, help="fictional suite: a random world spec (unseen relations and shapes)")
    # One at a time by default: the embedded backend serialises its calls anyway, so more in flight
    # would not be faster, and sequential episodes keep the order in which each arm learns fixed.
    parser.add_argument("--concurrency", type=int, default=1, help="episodes in flight (use more with a server)")
    parser.add_argument("--fallback", choices=("explore", "plan"), default=AGENT_OPTIONS["fallback"],
                        help="without a fitting procedure: explore (default) or the LLM planner (the old path)")
    parser.add_argument("--data-dir", type=Path, help="shared data folder (hotpotqa suite)")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/main_job/<suite>-<time>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish the run in RUN_DIR with its own config")
    parser.add_argument("--workers", type=int, default=0,
                        help="run on this many worker processes and one learner (evals/distributed.py); 0 = this process")
    parser.add_argument("--bank-url", help="postgresql:// URL for the arms' banks (schema <schema>_<arm>; no password: PGPASSWORD)")
    parser.add_argument("--llm-url", help="comma-separated OpenAI-compatible server URLs (…/v1) instead of the embedded model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        if args.resume:
            config = resume_config(args.resume)
        else:
            train, test = DEFAULT_TASKS[args.suite]
            out = args.out or Path("runs/main_job") / f"{args.suite}-{datetime.now():%Y%m%d-%H%M%S}"
            config = suite_config(args.suite, train_tasks=args.train_tasks or train, test_tasks=args.test_tasks or test,
                                  iterations=args.iterations, arms=args.arms.split(","), out_dir=out,
                                  data_dir=args.data_dir, seed=args.seed, spec_seed=args.spec_seed,
                                  concurrency=args.concurrency, fallback=args.fallback,
                                  llm_urls=[u for u in (args.llm_url or "").split(",") if u.strip()],
                                  bank_url=args.bank_url)
        print(f"run folder: {config.out_dir}  (if stopped, finish it with: python -m memento.evals.main_job "
              f"--resume {config.out_dir})", flush=True)
        if args.workers:
            from memento.evals.distributed import run_distributed

            summary = run_distributed(config, workers=args.workers, progress=not args.no_progress)
        else:
            summary = run_eval(config, progress=not args.no_progress)
    except (MementoError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print()
    print(format_tables(summary))
    print()
    for name in ("report.md", "learning_curve.png", "accuracy_by_iteration.png"):
        if (Path(config.out_dir) / name).exists():
            print(f"{name}: {Path(config.out_dir) / name}")
    print(f"elapsed: {elapsed:.0f} s ({summary.episodes} episodes, {summary.episode_seconds / max(1, summary.episodes):.1f} s "
          f"per episode of wall time with {config.concurrency} in flight)")
    failed = error_line(summary, resume=f"run python -m memento.evals.main_job --resume {config.out_dir}")
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
