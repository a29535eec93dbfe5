"""Check (b) of the distillation gate: a run's test tasks with memory on, memory alone against adapter + memory.

    scorer = memory_task_scorer("runs/main_job/fictional-...", work_dir=tmp, limit=10)
    distill(bank, config, memory_tasks=scorer)      # or run_gate(..., memory_tasks=scorer)

The run folder gives everything the tasks need: its config (manifest.json) names the task sets,
the tools and the agent's settings; its arm folder holds the bank and the policy checkpoint. The
bank is copied into `work_dir` first (an episode that does not learn still saves its trace), so
the run's files are only read. Each task runs once, without learning, with the model as the gate
hands it over (adapter off, then on), through the transformers backend over that very model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memento import envs
from memento.bank import CaseBank
from memento.errors import NotFoundError
from memento.evals.config import EvalConfig
from memento.evals.manifest import MANIFEST_FILE
from memento.evals.runner import agent_config, build_tools, plan_passes, prepare_corpus
from memento.policies import load_policy


def memory_task_scorer(run_dir: str | Path, *, work_dir: str | Path, arm: str = "neural", limit: int = 10,
                       max_tokens: int = 64) -> Callable[[Any, Any], list[float]]:
    """A `memory_tasks(model, tokenizer)` callable over the first `limit` tasks of the run's last pass."""
    run_dir, work_dir = Path(run_dir), Path(work_dir)
    manifest_path = run_dir / MANIFEST_FILE
    arm_dir = run_dir / "arms" / arm
    if not manifest_path.is_file() or not (arm_dir / "bank.db").is_file():
        raise NotFoundError(f"{str(run_dir)!r} is not a finished eval run with an arm {arm!r} (it needs {MANIFEST_FILE} "
                            f"and arms/{arm}/bank.db); pass a run folder of memento.evals.main_job or `memento eval`")
    config = EvalConfig.model_validate({**json.loads(manifest_path.read_text(encoding="utf-8"))["config"],
                                        "out_dir": str(work_dir)})
    tasks = plan_passes(config)[-1].tasks[:limit]
    work_dir.mkdir(parents=True, exist_ok=True)
    for part in arm_dir.glob("bank.db*"):
        shutil.copy2(part, work_dir / part.name)
    bank = CaseBank(work_dir / "bank.db", create=False)
    policy = load_policy(arm_dir / "policy.pt", bank) if (arm_dir / "policy.pt").exists() else None
    tools = build_tools(config, prepare_corpus(config, work_dir), work_dir)

    def score(model: Any, tokenizer: Any) -> list[float]:
        from memento.agent import Agent
        from memento.llm.transformers_backend import TransformersLLM

        llm = TransformersLLM.from_loaded(model, tokenizer, name="distill-gate", max_tokens=max_tokens)
        agent = Agent(llm, bank, policy, tools, config=agent_config(config))
        rewards = []
        for task in tasks:
            answer = agent.run(task, learn=False).answer or ""
            rewards.append(float(envs.score(task, answer)[config.reward_metric]))
        return rewards

    return score
