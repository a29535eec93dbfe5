"""Many workers, one learner: an eval's episodes spread over worker processes that share each arm's bank.

    python -m memento.evals.main_job --workers 4                       # the main job on 4 worker processes
    python -m memento.evals.main_job --workers 4 --llm-url http://127.0.0.1:8000/v1,http://127.0.0.1:8001/v1

    from memento.evals.distributed import run_distributed
    summary = run_distributed(config, workers=4)              # same run folder layout as run_eval

Each pass of the protocol is split into `workers` shards (task i goes to worker i mod N). A worker
process builds its own agent, LLM client and tools, opens every arm's bank (the same SQLite file,
or the same PostgreSQL URL, as the other workers) and runs its shard with `run_pass`, appending to
the one episodes.jsonl under a file lock. The workers select and record, so every episode's
transition lands in the arm's shared replay table, but they never train: a policy with a replay
buffer (the neural one) is trained by one learner process, which reloads the replay the workers
wrote, runs one `update()` per new step (as a single process would), saves the checkpoint
atomically and bumps its version. A worker picks up a newer version at its next `update()`, that
is between episodes, without stopping. The coordinator (the calling process) plans the passes,
writes the manifest, starts the learner and the workers of each pass, waits for them, lets the
learner drain what is left, and writes the summary, report and plots as `run_eval` does.

What is shared and what is not: cases, vectors, replay and per-case statistics are in the bank
(atomic upserts, so concurrent workers lose no count); a worker's per-case residuals are its own
until it loads the learner's next checkpoint, which carries the learner's. Its change monitor
(the change sums, the prior duel) stays its own across reloads (`keep_watch`): only the worker
knows which of its episodes probed the similarity prior, and a fresh monitor at every reload
would never probe at all.
Episodic control keeps its kernel entries in the bank, but a worker updates an entry from its own
copy, so two workers updating the same entry at once keep the later write: distributed runs are
meant for the neural policy. Within a pass the order in which an arm learns depends on timing,
so a distributed run is not bit-for-bit reproducible the way a one-at-a-time run is.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from memento.evals.config import EvalConfig
from memento.evals.episode import ArmMemory, GuardedPolicy
from memento.evals.manifest import check_run_dir, write_manifest
from memento.evals.records import EpisodeLog, EvalSummary
from memento.evals.runner import (EPISODES_FILE, Pass, agent_config, build_judge, build_llm, build_tools, finish_run, open_arm,
                          plan_passes, prepare_corpus, run_pass, same_text_overlap)
from memento.errors import MementoError, ValidationError

class WorkerError(MementoError):
    """A worker or the learner process of a distributed run stopped with an error."""


VERSION_FILE = "policy.version"
"""Beside each arm's policy.pt: the learner's checkpoint version, written after the checkpoint."""
LEARNER_INTERVAL_S = 0.2
"""How often the learner looks for new steps in each arm's replay."""


# --- the coordinator ------------------------------------------------------------------------


def run_distributed(config: EvalConfig, *, workers: int, progress: bool = True, episodes_factory: str | None = None,
                    embedder_factory: str | None = None) -> EvalSummary:
    """Run (or resume) `config` on `workers` worker processes and one learner; returns the summary.

    `episodes_factory` and `embedder_factory` ("module:callable", built in each process) replace
    the agent and the banks' embedding model, as `run_eval`'s `episodes` and `embedder` do.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValidationError(f"workers={workers!r} must be a positive integer (1 runs one worker process)")
    started = time.perf_counter()
    run_dir = Path(config.out_dir)
    check_run_dir(run_dir, config)
    passes = plan_passes(config)
    corpus = prepare_corpus(config, run_dir)
    if episodes_factory is None:
        build_tools(config, corpus, run_dir)  # builds the search index once, before N workers would race to
    embedder = _build(embedder_factory)
    log = EpisodeLog(run_dir / EPISODES_FILE)
    arms = {name: open_arm(name, config, run_dir, embedder) for name in config.arms}
    try:
        for arm in arms.values():
            arm.save_policy()  # every worker and the learner start from the same checkpoint file
            if arm.checkpoint is not None and hasattr(arm.policy, "replay") and read_progress(arm.checkpoint) is None:
                # Steps already in the replay (a run begun in one process) were learned from there.
                write_progress(arm.checkpoint, 0, _last_row(arm.policy.policy))
        write_manifest(run_dir, config, llm=None if episodes_factory else _LLMDescription(config), judge=None,
                       arms=arms, corpus=corpus,
                       task_counts={f"{p.phase} pass {p.iteration}": len(p.tasks) for p in passes},
                       test_tasks_with_train_text=same_text_overlap(passes),
                       resumed_episodes=sum(log.done(r.key) for r in log.records))
        learning = [name for name, arm in arms.items() if arm.has_memory and hasattr(arm.policy, "replay")]
    finally:
        for arm in arms.values():
            arm.close()
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no torch or SQLite state copied
    settings = config.model_dump_json()
    for index, one_pass in enumerate(passes):
        expected = len(one_pass.tasks) * config.attempts * len(config.arms)
        stop = context.Event()
        learner = None
        if one_pass.learns and learning:
            learner = context.Process(target=_learner_main, name="memento-learner",
                                      args=(settings, learning, stop, embedder_factory))
            learner.start()
        processes = [context.Process(target=_worker_main, name=f"memento-worker-{i}",
                                     args=(settings, index, i, workers, episodes_factory, embedder_factory))
                     for i in range(workers)]
        for process in processes:
            process.start()
        _wait(processes, run_dir / EPISODES_FILE, one_pass, expected, progress)
        if learner is not None:
            stop.set()
            learner.join()
        failed = [f"{p.name} (exit code {p.exitcode})" for p in processes + ([learner] if learner else [])
                  if p.exitcode != 0]
        if failed:
            raise WorkerError(f"{', '.join(failed)} stopped with an error in the {one_pass.phase} pass "
                            f"{one_pass.iteration}; its episodes are not lost: run the same command again to "
                            f"resume {str(run_dir)!r}")
    return finish_run(config, run_dir, passes, EpisodeLog(run_dir / EPISODES_FILE), started)


class _LLMDescription:
    """What the manifest says of the model, without loading it in the coordinator."""

    def __init__(self, config: EvalConfig):
        self.backend = config.llm.backend
        self.model = str(config.llm.options.get("model") or config.llm.options.get("model_path") or "")
        self.config = config.llm.options


def _wait(processes: list, log_path: Path, one_pass: Pass, expected: int, progress: bool) -> None:
    """Wait for the workers, showing the pass's progress from the shared episode log."""
    label = f"{one_pass.phase} pass {one_pass.iteration}" if one_pass.phase == "train" else "test pass"
    with tqdm(total=expected, desc=f"{label} ({len(processes)} workers)", unit="episode", disable=not progress) as bar:
        while any(p.is_alive() for p in processes):
            bar.update(max(0, _done_in(log_path, one_pass) - bar.n))
            time.sleep(0.5)
        bar.update(max(0, _done_in(log_path, one_pass) - bar.n))
    for process in processes:
        process.join()


def _done_in(log_path: Path, one_pass: Pass) -> int:
    if not log_path.exists():
        return 0
    log = EpisodeLog(log_path)
    return sum(1 for r in log.records if (r.phase, r.iteration) == (one_pass.phase, one_pass.iteration) and r.error is None)


def _build(factory: str | None) -> Any:
    """Call the "module:callable" `factory` (None stays None)."""
    if factory is None:
        return None
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)()


def _one_thread_each() -> None:
    """N workers on a few cores: one torch/BLAS thread per process, or they fight over the cores."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    import torch

    torch.set_num_threads(1)


# --- a worker -------------------------------------------------------------------------------


class ActorPolicy(GuardedPolicy):
    """A worker's copy of an arm's policy: it selects and records here, and learns from the learner's checkpoints.

    `update()` trains nothing: it loads the learner's checkpoint when its version is newer than
    the one held (with the replay and statistics every worker wrote since), between episodes.
    `save()` writes nothing: the learner owns the checkpoint.
    """

    def __init__(self, policy: Any, bank: Any, checkpoint: Path):
        super().__init__(policy)
        self.bank = bank
        self.checkpoint = checkpoint
        self.version = read_version(checkpoint)
        self.reloads = 0

    def update(self) -> dict[str, float]:
        with self.lock:
            version = read_version(self.checkpoint)
            if version > self.version:
                from memento.policies import load_policy

                fresh = load_policy(self.checkpoint, self.bank, share=True)
                # The learner never knows which of this worker's episodes probed the prior: keep the worker's watch.
                fresh.keep_watch(self.policy)
                self.policy.close()
                self.policy, self.version = fresh, version
                self.reloads += 1
            return {"charts/policy_version": float(self.version)}

    def save(self, path: str | Path) -> Path:
        return Path(path)


def _worker_main(settings: str, pass_index: int, worker: int, workers: int, episodes_factory: str | None,
                 embedder_factory: str | None) -> None:
    _one_thread_each()
    config = EvalConfig.model_validate_json(settings)
    run_dir = Path(config.out_dir)
    one_pass = plan_passes(config)[pass_index]
    shard = Pass(one_pass.phase, one_pass.iteration, one_pass.tasks[worker::workers])
    embedder = _build(embedder_factory)
    episodes = _build(episodes_factory)
    llm = judge = None
    if episodes is None:
        from memento.evals.episode import AgentEpisodes

        llm = build_llm(config)
        episodes = AgentEpisodes(llm, build_tools(config, prepare_corpus(config, run_dir), run_dir), agent_config(config))
    if config.judge is not None:
        judge = build_judge(config, llm)
    arms = {name: _actor_arm(name, config, run_dir, embedder) for name in config.arms}
    try:
        asyncio.run(run_pass(shard, config, arms, episodes, EpisodeLog(run_dir / EPISODES_FILE), judge, progress=False))
    finally:
        episodes.close()
        for arm in arms.values():
            arm.close()


def _actor_arm(name: str, config: EvalConfig, run_dir: Path, embedder: Any) -> ArmMemory:
    # open_arm loads the checkpoint the coordinator saved before any worker started.
    arm = open_arm(name, config, run_dir, embedder, share=True)
    if not arm.has_memory or not hasattr(arm.policy, "replay"):
        return arm
    return ArmMemory(name, arm.bank, ActorPolicy(arm.policy.policy, arm.bank, arm.checkpoint), arm.checkpoint)


# --- the learner ----------------------------------------------------------------------------


def read_progress(checkpoint: Path) -> tuple[int, int] | None:
    """(version, last replay row learned from) of the learner's checkpoint beside `checkpoint`; None before any."""
    try:
        saved = json.loads((checkpoint.parent / VERSION_FILE).read_text(encoding="utf-8"))
        return int(saved["version"]), int(saved["learned_through"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def read_version(checkpoint: Path) -> int:
    """The learner's checkpoint version beside `checkpoint` (0 before its first save)."""
    progress = read_progress(checkpoint)
    return 0 if progress is None else progress[0]


def write_progress(checkpoint: Path, version: int, learned_through: int) -> None:
    """Write the version and the learned row atomically (temporary file, then rename), after the checkpoint."""
    path = checkpoint.parent / VERSION_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"version": version, "learned_through": learned_through}), encoding="utf-8")
    os.replace(temporary, path)


class ArmLearner:
    """Trains one arm's policy from the replay its workers write; `step()` returns the new steps it learned from."""

    def __init__(self, arm: ArmMemory):
        self.arm = arm
        # Where the last learner stopped, not what the replay holds now: workers may have written
        # steps while this process was starting.
        self.version, self.seen = read_progress(arm.checkpoint) or (0, 0)
        self.learned = 0

    def step(self) -> int:
        from memento.policies import load_policy

        policy = self.arm.policy.policy
        newest = self.arm.bank.replay_rows(policy.config.name, limit=1, n_features=-1)
        if not newest or newest[0].row_id <= self.seen:  # a cheap look before loading the checkpoint and replay
            return 0
        fresh = load_policy(self.arm.checkpoint, self.arm.bank, share=True)  # its own weights, everyone's replay
        new = [t for t in fresh.replay.transitions if (t.row_id or 0) > self.seen]
        if not new:
            fresh.close()
            return 0
        absorb = getattr(fresh, "absorb", None)
        if absorb is not None:
            absorb(new)  # the fast per-step parts (residuals) a worker's record() would have updated
        for _ in new:
            fresh.update()
        fresh.save(self.arm.checkpoint)
        self.version += 1
        self.seen = max(int(t.row_id or 0) for t in new)
        write_progress(self.arm.checkpoint, self.version, self.seen)
        self.learned += len(new)
        self.arm.policy.policy.close()
        self.arm.policy.policy = fresh
        return len(new)


def _last_row(policy: Any) -> int:
    return max((int(t.row_id or 0) for t in policy.replay.transitions), default=0)


def _learner_main(settings: str, names: list[str], stop: Any, embedder_factory: str | None) -> None:
    _one_thread_each()
    config = EvalConfig.model_validate_json(settings)
    run_dir = Path(config.out_dir)
    embedder = _build(embedder_factory)
    learners = [ArmLearner(open_arm(name, config, run_dir, embedder, share=True)) for name in names]
    try:
        while True:
            stopping = stop.is_set()  # read before the last look, so steps written before the stop are learned
            if sum(learner.step() for learner in learners) == 0:
                if stopping:
                    return
                time.sleep(LEARNER_INTERVAL_S)
    finally:
        for learner in learners:
            learner.arm.close()
