"""The continual-learning eval runner: protocols, arms side by side, episodes in flight, resume.

    from memento.evals.config import EvalConfig, TaskSpec
    from memento.evals.runner import run_eval
    summary = run_eval(EvalConfig(out_dir="runs/demo", tasks=TaskSpec(source="fictional", limit=12)))

Every arm (no memory, similarity, neural, ...) runs the same tasks, in the same order, with the
same seeds, against its own bank in `<out_dir>/arms/<arm>/`. Passes run one after the other (a
pass sees the memory of the passes before it); within a pass up to `concurrency` episodes of all
arms are in flight at once.

Resume: each finished episode is appended and flushed to episodes.jsonl before the next write,
keyed by (arm, phase, iteration, task id, attempt). Running the same config on the same folder
skips the episodes done there and retries those that errored (their new records are appended;
the latest counts). An episode's case gets an id fixed by its key, so an episode that wrote its
case but died before its line was written is found in the bank and its record rebuilt from the
case instead of being run (and stored) again; its outcome reaches the policy exactly once
(`teach_recovered`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from memento import envs
from memento.envs.deepresearcher import domain_of
from memento.envs.metrics import ajudge_answer, normalize_answer
from memento.envs.task import Task
from memento.evals.config import NO_MEMORY, EvalConfig, TaskSpec, arm_bank_schema
from memento.evals.episode import (AgentEpisodes, ArmMemory, EpisodeOutcome, EpisodeRunner, GuardedPolicy, SameTaskGuard,
                           same_task_shown)
from memento.evals.manifest import check_run_dir, write_manifest
from memento.evals.records import EpisodeLog, EpisodeRecord, EvalSummary, Phase, case_id_for, summarize
from memento.evals.report import DISTILL_FILE
from memento.embedders import Embedder
from memento.errors import MementoError, NotFoundError, ValidationError
from memento.policy import TaskState

EPISODES_FILE = "episodes.jsonl"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"


@dataclass(frozen=True)
class Pass:
    """One pass over a task set: train passes learn (exploring), the test pass only scores."""

    phase: Phase
    iteration: int
    tasks: list[Task]

    @property
    def learns(self) -> bool:
        return self.phase == "train"


def run_eval(config: EvalConfig, *, progress: bool = True, episodes: EpisodeRunner | None = None,
             embedder: Embedder | None = None) -> EvalSummary:
    """Run (or resume) the eval `config` describes and write its run folder; returns the summary.

    By default the agent runs on the configured LLM with a BM25 search tool over the corpus, and
    the banks embed with the packaged MiniLM. `episodes` replaces the agent and `embedder` the
    banks' embedding model (a custom model, or a fake in tests about the runner).
    """
    return asyncio.run(arun_eval(config, progress=progress, episodes=episodes, embedder=embedder))


async def arun_eval(config: EvalConfig, *, progress: bool = True, episodes: EpisodeRunner | None = None,
                    embedder: Embedder | None = None) -> EvalSummary:
    """Async twin of `run_eval`, for callers that already run an event loop."""
    started = time.perf_counter()
    run_dir = Path(config.out_dir)
    check_run_dir(run_dir, config)
    passes = plan_passes(config)
    corpus = prepare_corpus(config, run_dir)
    llm = judge = None
    if episodes is None:
        llm = build_llm(config)
        episodes = AgentEpisodes(llm, build_tools(config, corpus, run_dir), agent_config(config),
                                 arm_llm=arm_llms(config, llm))
    if config.judge is not None:
        judge = build_judge(config, llm)
    log = EpisodeLog(run_dir / EPISODES_FILE)
    arms = {name: open_arm(name, config, run_dir, embedder) for name in config.arms}
    schedules = distill_schedules(config, arms)
    try:
        write_manifest(run_dir, config, llm=llm, judge=judge, arms=arms, corpus=corpus,
                       task_counts={f"{p.phase} pass {p.iteration}": len(p.tasks) for p in passes},
                       test_tasks_with_train_text=same_text_overlap(passes),
                       resumed_episodes=sum(log.done(r.key) for r in log.records))
        for one_pass in passes:
            await run_pass(one_pass, config, arms, episodes, log, judge, progress=progress, schedules=schedules)
    finally:
        if schedules:
            runs = {name: schedule.close() for name, schedule in schedules.items()}
            (run_dir / DISTILL_FILE).write_text(json.dumps(runs, indent=2, default=str), encoding="utf-8")
        episodes.close()
        for arm in arms.values():
            arm.close()
    return finish_run(config, run_dir, passes, log, started)


def finish_run(config: EvalConfig, run_dir: Path, passes: list[Pass], log: EpisodeLog, started: float) -> EvalSummary:
    """Summarise the episode log and write summary.json, report.md and the plots (one process or many)."""
    summary = summarize(
        log.records, run_dir=str(run_dir), protocol=config.protocol, arms=config.arms,
        iterations=config.iterations, attempts=config.attempts,
        expected_episodes=sum(len(p.tasks) for p in passes) * config.attempts * len(config.arms),
        elapsed_s=time.perf_counter() - started,
    )
    write_outputs(run_dir, summary)
    return summary


def write_outputs(run_dir: Path, summary: EvalSummary) -> None:
    """summary.json, report.md and the plots."""
    from memento.evals.plots import write_plots
    from memento.evals.report import write_report

    (run_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    plots = write_plots(summary, run_dir)
    write_report(summary, run_dir / REPORT_FILE, plots=plots)


# --- set-up ---------------------------------------------------------------------------------


def load_task_set(spec: TaskSpec) -> list[Task]:
    """The tasks `spec` names, through the source's loader."""
    return envs.load_tasks(spec.source, spec.path, limit=spec.limit, seed=spec.seed, **spec.options)


def plan_passes(config: EvalConfig) -> list[Pass]:
    """The passes of the protocol: `iterations` train passes, then the test pass of the split protocol."""
    train = load_task_set(config.tasks)
    if not train:
        raise ValidationError(f"task spec {config.tasks.model_dump()} selects no task; loosen its filters or limit")
    passes = [Pass("train", i, train) for i in range(1, config.iterations + 1)]
    if config.test_tasks is not None:
        test = load_task_set(config.test_tasks)
        shared = {(t.benchmark, t.id) for t in train} & {(t.benchmark, t.id) for t in test}
        if shared:
            raise ValidationError(
                f"the split protocol needs disjoint sets, but {len(shared)} task ids are in both, e.g. "
                f"{sorted(shared)[:3]}; choose another test split or source"
            )
        passes.append(Pass("test", 1, test))
    return passes


def same_text_overlap(passes: list[Pass]) -> int:
    """How many test tasks have the text of a train task (normalised): what the guard is for."""
    train = {normalize_answer(t.question) for p in passes if p.phase == "train" for t in p.tasks}
    return sum(normalize_answer(t.question) in train for p in passes if p.phase == "test" for t in p.tasks)


def prepare_corpus(config: EvalConfig, run_dir: Path) -> Path | None:
    """The search corpus: the configured file, or the fictional world's passages written into the run folder."""
    if config.corpus is not None:
        corpus = Path(config.corpus)
        if not corpus.is_file():
            raise NotFoundError(f"corpus {str(corpus)!r} does not exist; pass a JSONL(.gz) file of passages "
                                f"({{id, title, text}} a line)")
        return corpus
    worlds = {_world_of(spec) for spec in (config.tasks, config.test_tasks) if spec and spec.source == "fictional"}
    if not worlds:
        return None
    if len(worlds) > 1:
        raise ValidationError(f"the fictional task sets use different worlds {sorted(worlds, key=str)}; one corpus "
                              f"serves one world, so give both the same world_seed, n_entities and spec_seed")
    from memento.envs.fictional_world import build_world, spec_from_seed

    world_seed, n_entities, spec_seed = worlds.pop()
    corpus = run_dir / "corpus.jsonl"
    if not corpus.exists():
        build_world(world_seed, n_entities, spec_from_seed(spec_seed)).write_corpus_jsonl(corpus)
    return corpus


def _world_of(spec: TaskSpec) -> tuple[int, int, int | None]:
    spec_seed = spec.options.get("spec_seed")
    return (int(spec.options.get("world_seed", 0)), int(spec.options.get("n_entities", 120)),
            None if spec_seed is None else int(spec_seed))


def build_llm(config: EvalConfig, *, distilled_from: str | None = None) -> Any:
    """The agent's LLM; the embedded backend gets the run's seed unless its options set one.

    `distilled_from` (a bank file) makes it use that bank's promoted distilled adapter, followed call by call.
    """
    from memento.llm import load_llm as load

    options = dict(config.llm.options)
    if config.llm.backend == "llamacpp":
        options.setdefault("seed", config.seed)
    if distilled_from is not None:
        options["distilled_from"] = distilled_from
    return load(config.llm.backend, **options)


def arm_llms(config: EvalConfig, shared: Any) -> Callable[[ArmMemory], Any] | None:
    """With distillation on, each memory arm's LLM follows the adapter promoted for that arm's own bank.

    Every backend follows a promotion before each call (llama.cpp through a converted GGUF, vLLM and
    transformers directly, a vllm serve by loading the adapter by name), so the episodes after a
    promotion run with the adapter. Each memory arm gets its own LLM object for that: another copy
    of the model in memory (about 0.1 GB for the embedded SmolLM2). Without distillation, all arms
    share one LLM.
    """
    if config.distill is None:
        return None
    return lambda arm: build_llm(config, distilled_from=str(arm.bank.path)) if arm.has_memory else shared


def build_judge(config: EvalConfig, llm: Any) -> Any:
    """The judge LLM: the agent's own object when the judge is configured the same way."""
    from memento.llm import load_llm as load

    judge = config.judge
    if llm is not None and judge.backend == config.llm.backend and judge.options == config.llm.options:
        return llm
    return load(judge.backend, **judge.options)


def agent_config(config: EvalConfig) -> Any:
    """The agent's settings: the run's k and reward metric, then `agent_options`."""
    from memento.agent import AgentConfig

    return AgentConfig(**{"k": config.k, "reward_metric": config.reward_metric, **config.agent_options})


def build_tools(config: EvalConfig, corpus: Path | None, run_dir: Path) -> list[Any]:
    """The agent's tools named in `config.tools`; a generated corpus keeps its search index in the run folder."""
    from memento.tools import CorpusSearch, PythonSandbox, python_tool, read_file_tool, search_tool

    names = config.tools if config.tools is not None else ["search"] if corpus is not None else []
    tools = []
    for name in names:
        if name == "search":
            if corpus is None:
                raise ValidationError("tool 'search' needs a corpus: set corpus to a JSONL(.gz) passage file")
            cache = run_dir / "search_index" if corpus.parent == run_dir else None
            tools.append(search_tool(CorpusSearch(corpus, cache_dir=cache)))
        elif name == "python":
            tools.append(python_tool(PythonSandbox()))
        else:
            tools.append(read_file_tool())
    return tools


def open_arm(name: str, config: EvalConfig, run_dir: Path, embedder: Embedder | None = None, *,
             share: bool = False) -> ArmMemory:
    """The arm's bank in its folder and its policy, reloaded from its checkpoint when resuming.

    The no-memory arm has a bank too (the agent keeps its traces there) but a policy that selects
    nothing. `share=True` is for the processes of a distributed run, which hold the same policy.
    """
    from memento import CaseBank
    from memento.policies import POLICIES, load_policy, make_policy
    from memento.policies.no_memory import NoMemoryPolicy

    folder = run_dir / "arms" / name
    folder.mkdir(parents=True, exist_ok=True)
    if config.bank_url is not None:
        bank = CaseBank.open(config.bank_url, embedder, schema=arm_bank_schema(config.bank_url, name))
    else:
        bank = CaseBank(folder / "bank.db", embedder=embedder)
    checkpoint = folder / "policy.pt"
    if name == NO_MEMORY:
        policy = NoMemoryPolicy(bank)
    elif checkpoint.exists():
        policy = load_policy(checkpoint, bank, share=share)
    else:
        settings = dict(config.policy_options.get(name, {}))  # k is the agent's (agent_config), not the policy's
        if "seed" in {f.name for f in fields(POLICIES[name][0].config_class)}:
            settings.setdefault("seed", config.seed)
        policy = make_policy(name, bank, share=share, **settings)
    return ArmMemory(name, bank, GuardedPolicy(policy), checkpoint)


# --- running --------------------------------------------------------------------------------


def distill_schedules(config: EvalConfig, arms: dict[str, ArmMemory]) -> dict[str, Any]:
    """A background distillation schedule per memory arm when `config.distill` asks for one."""
    if config.distill is None:
        return {}
    from memento.distill.run import config_from_dict
    from memento.distill.schedule import DistillSchedule

    options = config_from_dict(config.distill.options)
    return {name: DistillSchedule(arm.bank.path, options, every=config.distill.every,
                                  start_count=arm.bank.count(min_reward=options.selection.min_reward))
            for name, arm in arms.items() if arm.has_memory}


async def run_pass(one_pass: Pass, config: EvalConfig, arms: dict[str, ArmMemory], episodes: EpisodeRunner,
                   log: EpisodeLog, judge: Any, *, progress: bool, schedules: dict[str, Any] | None = None) -> None:
    """Run the episodes of one pass not yet done (never run, or errored), up to `config.concurrency` at once."""
    jobs = [(arm, task, attempt)
            for task in one_pass.tasks for attempt in range(config.attempts) for arm in arms.values()
            if not log.done((arm.name, one_pass.phase, one_pass.iteration, task.id, attempt))]
    if not jobs:
        return
    gate = asyncio.Semaphore(config.concurrency)
    total = len(one_pass.tasks) * config.attempts * len(arms)
    label = f"{one_pass.phase} pass {one_pass.iteration}" if one_pass.phase == "train" else "test pass"
    bar = tqdm(total=total, initial=total - len(jobs), desc=label, unit="episode", disable=not progress)

    async def one(arm: ArmMemory, task: Task, attempt: int) -> None:
        async with gate:
            record = await run_episode(one_pass, arm, task, attempt, config, episodes, judge)
        if log.append(record) and record.learned:
            arm.save_policy()
            if schedules and arm.name in schedules:
                schedules[arm.name].poll(arm.bank)  # starts a background distillation when due; never waits
        bar.update(1)
        bar.set_postfix(_running_em(log, one_pass), refresh=False)

    try:
        await asyncio.gather(*(one(*job) for job in jobs))
    finally:
        bar.close()


def _running_em(log: EpisodeLog, one_pass: Pass) -> dict[str, str]:
    scores: dict[str, list[float]] = {}
    for record in log.records:
        if (record.phase, record.iteration) == (one_pass.phase, one_pass.iteration):
            scores.setdefault(record.arm, []).append(record.scores.get("em", 0.0))
    return {arm: f"{sum(v) / len(v):.2f}" for arm, v in scores.items()}


async def run_episode(one_pass: Pass, arm: ArmMemory, task: Task, attempt: int, config: EvalConfig,
                      episodes: EpisodeRunner, judge: Any) -> EpisodeRecord:
    """Run, score and (with a judge) grade one episode; a memento error becomes a failed episode."""
    key = (arm.name, one_pass.phase, one_pass.iteration, task.id, attempt)
    case_id = case_id_for(key) if one_pass.learns and arm.has_memory else None
    if case_id is not None:
        recovered = episodes.recover(task, arm, case_id)
        if recovered is not None:
            # The episode finished and stored its case before a crash; running it again would learn twice.
            teach_recovered(arm, case_id, recovered)
            record = _record(key, task, recovered.answer, config, learned=True, case_id=case_id, recovered=True,
                             shown=recovered.shown or [], prompt_tokens=recovered.prompt_tokens,
                             completion_tokens=recovered.completion_tokens, steps=recovered.steps,
                             trace=recovered.trace if config.store_trace else None)
            return await agrade(record, task, judge, config.judge.max_tokens if config.judge else 256)
    # The clean split's guard: the policy chooses as if the test task's own cases were not in the bank.
    guard = SameTaskGuard(task.question) if one_pass.phase == "test" and config.exclude_same_task else None
    guarded = {"exclude": guard} if guard is not None else {}  # so runners without `exclude` still run other passes
    started = time.perf_counter()
    error = None
    try:
        outcome = await episodes.arun(task, arm, case_id=case_id, explore=one_pass.learns,
                                      reward=lambda answer: envs.score(task, answer)[config.reward_metric],
                                      **guarded)
    except MementoError as exc:
        outcome, error = EpisodeOutcome(answer=""), f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    record = _record(key, task, outcome.answer, config,
                     learned=outcome.learned, case_id=case_id if outcome.learned else None,
                     shown=outcome.shown, same_task_shown=same_task_shown(arm.bank, task.question, outcome.shown),
                     same_task_excluded=guard.excluded if guard is not None else [],
                     prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                     seconds=seconds, timings=outcome.timings, steps=outcome.steps, error=error,
                     llm_calls=outcome.llm_calls,
                     trace=outcome.trace if config.store_trace else None)
    return await agrade(record, task, judge, config.judge.max_tokens if config.judge else 256)


def teach_recovered(arm: ArmMemory, case_id: str, recovered: EpisodeOutcome) -> None:
    """Record a recovered episode's outcome with the arm's policy unless it got there before the crash; then update.

    The agent writes the case, then records the outcome (the transition, under the episode id,
    which is the case id), updates, and saves the trace: a crash after the case write may have
    come before or after the record. A saved trace means the record was made; else the policy is
    asked (`has_recorded`: the neural arm's replay row, the episodic arm's note, each written in the
    record's own transaction). Either way the update runs again, since the policy's checkpoint is
    saved only after the episode's log line.
    """
    policy = arm.policy
    with policy.lock:  # the question and the record as one step: other episodes of the arm may be recording
        if recovered.trace is None and not policy.has_recorded(case_id):
            case = arm.bank.get(case_id)
            state = TaskState(task=case.task, embedding=arm.bank.vectors([case_id])[0], episode_id=case_id)
            try:
                policy.record(state, [shown.id for shown in recovered.shown or []], case.reward,
                              namespace=case.namespace)
            except NotFoundError:  # a case it was shown is gone: the agent would not have recorded it either
                return
        policy.update()


def _record(key: tuple, task: Task, answer: str, config: EvalConfig, **fields_: Any) -> EpisodeRecord:
    arm, phase, iteration, _, attempt = key
    scores = envs.score(task, answer)
    return EpisodeRecord(
        arm=arm, phase=phase, iteration=iteration, attempt=attempt, task_id=task.id, question=task.question,
        source=task.source, benchmark=task.benchmark, domain=task.metadata.get("domain") or domain_of(task.source),
        gold=task.gold, answer=answer, scores=scores, reward=scores[config.reward_metric], **fields_,
    )


async def agrade(record: EpisodeRecord, task: Task, judge: Any, max_tokens: int = 256) -> EpisodeRecord:
    """The record with the judge's verdict and its PM score ("pm"); unchanged without a judge or a gold answer.

    A judge that fails (a memento error) leaves the record unjudged, with the error in `verdict`.
    """
    if judge is None or not task.gold:
        return record
    try:
        verdict = await ajudge_answer(judge, task.question, record.answer, task.gold, max_tokens=max_tokens)
    except MementoError as exc:
        return record.model_copy(update={"verdict": {"error": f"{type(exc).__name__}: {exc}"}})
    return record.model_copy(update={
        "verdict": verdict.model_dump(mode="json"),
        "scores": {**record.scores, "pm": verdict.score},
    })


def resume_config(run_dir: str | Path) -> EvalConfig:
    """The config of the run in `run_dir`, read from its manifest, to finish that run."""
    from memento.evals.manifest import MANIFEST_FILE

    manifest = Path(run_dir) / MANIFEST_FILE
    if not manifest.is_file():
        raise NotFoundError(f"{str(run_dir)!r} holds no {MANIFEST_FILE}; it is not a run folder (or the run never "
                            f"started): start a new run instead")
    saved = json.loads(manifest.read_text(encoding="utf-8"))["config"]
    return EvalConfig.model_validate({**saved, "out_dir": str(run_dir)})
