"""One real episode: SmolLM2 (llama.cpp) plans and searches a fictional-world corpus with BM25.

What depends on the model is checked loosely (the model is tiny); what the agent guarantees
is checked exactly: the case is written, the policy learns, the trace is stored and complete.
"""

from __future__ import annotations

import pytest

from memento.envs.fictional_world import build_world, score
from memento import CaseBank
from memento.agent import Agent, AgentConfig, load_trace
from memento.tools.search import CorpusSearch, search_tool
from memento.policies import NeuralQPolicy
from memento.policies.neural_q import NeuralQConfig

SMALL_BUDGETS = AgentConfig(max_subtasks=2, max_steps=3, max_steps_per_subtask=2, max_plan_revisions=0,
                            planner_max_tokens=64, executor_max_tokens=48, answer_max_tokens=24)
"""Enough for a plan, a search or two and an answer, in well under a minute on a busy CPU."""


@pytest.fixture
def fictional_search(tmp_path):
    world = build_world(seed=0, n_entities=60)
    corpus = world.write_corpus_jsonl(tmp_path / "corpus.jsonl")
    tool = search_tool(CorpusSearch(corpus, cache_dir=tmp_path / "search-cache"), max_chars_per_passage=200, default_k=2)
    return world, tool


@pytest.mark.slow
def test_an_episode_with_smollm2_and_bm25_search(tmp_path, smollm2, real_embedder, fictional_search):
    world, search = fictional_search
    task = world.tasks(1, seed=3, shapes=["founder_birthplace"])[0]
    with CaseBank(tmp_path / "cases.db", embedder=real_embedder) as bank:
        policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1))
        agent = Agent(smollm2, bank, policy, [search], config=SMALL_BUDGETS)
        result = agent.run(task, scorer=score)

        assert result.reward in (0.0, 1.0) and result.scores.keys() == {"em", "f1"}
        assert 1 <= len(result.plan) <= 2 and 1 <= len(result.trajectory) <= 3
        searches = [s for s in result.trajectory if s.tool == "search"]
        assert searches, f"SmolLM2 never searched: {result.trace['trajectory']}"
        assert all(s.observation for s in searches)
        case = bank.get(result.case_id)
        assert case.task == task.question and case.metadata["model"] == smollm2.model
        assert case.metadata["task_id"] == task.id and len(policy.replay) == 1
        trace = load_trace(bank, result.episode_id)
        assert trace["tool_calls"] and trace["tokens"]["completion_tokens"] > 0
        assert {c["node"] for c in trace["llm_calls"]} >= {"plan", "execute", "answer"}
        assert trace["timings"]["memory_policy_share"] is not None
