"""Each node on its own: run outside a graph, state merged with `apply_update` as LangGraph merges it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memento import Case
from memento.agent import AgentConfig, AgentNodes, apply_update, load_trace
from memento.errors import ValidationError
from memento.policies import NeuralQPolicy, SimilarityPolicy
from memento.policies.neural_q import NeuralQConfig
from tests.agent.conftest import FACTS, HAPPY, lookup, scripted

TASK = "In which city was the founder of Acme born?"


def seed_cases(bank):
    bank.add(Case(task="In which city was the founder of Globex born?", plan=["find founder", "find birthplace"],
                  answer="Quorm", reward=1.0))
    bank.add(Case(task="In which city was the founder of Initech born?", plan=["guess"], answer="Paris",
                  reward=0.0, metadata={"stop_reason": "step_budget"}))
    bank.add(Case(task="Something unrelated about rivers", answer="Nile", reward=1.0, namespace=("other",)))


def nodes_for(bank, llm, policy=None, tools=(lookup,), **config):
    return AgentNodes(llm, bank, policy or SimilarityPolicy(bank), list(tools), config=AgentConfig(**config))


def run(nodes, state, *names, config=None):
    for name in names:
        state = apply_update(state, getattr(nodes, name)(state, config))
    return state


# ---------------------------------------------------------------------------- read_memory


def test_read_memory_selects_cases_from_the_agents_namespace_and_renders_them(bank):
    seed_cases(bank)
    nodes = nodes_for(bank, scripted(**HAPPY), k=4)
    state = run(nodes, {"task": TASK}, "read_memory")
    expected = [hit.case.id for hit in bank.search(TASK, k=4, namespace=("default",))]
    assert [s["case_id"] for s in state["selected"]] == expected and len(expected) == 2
    assert "(worked, reward 1)" in state["cases_context"] and "(failed, reward 0)" in state["cases_context"]
    assert "Why it failed: ran out of steps" in state["cases_context"]
    assert "rivers" not in state["cases_context"]
    assert np.allclose(state["task_embedding"], bank.embed([TASK])[0])
    assert state["memory_s"] > 0 and state["policy_s"] > 0 and state["timings"][0]["node"] == "read_memory"


def test_read_memory_does_not_explore_when_not_learning(bank):
    seed_cases(bank)

    class SpyPolicy(SimilarityPolicy):
        """A similarity policy that remembers how it was asked (the test is about the node's call)."""
        asked: list = []

        def select(self, state, **options):
            self.asked.append(options["explore"])
            return super().select(state, **options)

    nodes = nodes_for(bank, scripted(**HAPPY), policy=SpyPolicy(bank))
    run(nodes, {"task": TASK, "learn": True}, "read_memory")
    run(nodes, {"task": TASK, "learn": False}, "read_memory")
    assert SpyPolicy.asked == [True, False]


def test_read_memory_on_an_empty_bank_and_a_blank_task(bank):
    nodes = nodes_for(bank, scripted(**HAPPY))
    state = run(nodes, {"task": TASK}, "read_memory")
    assert state["selected"] == [] and state["cases_context"] == "No past cases yet."
    with pytest.raises(ValidationError, match="non-empty 'task'"):
        nodes.read_memory({"task": "  "})


# ----------------------------------------------------------------------------------- plan


def test_plan_shows_the_cases_and_keeps_the_planners_subtasks(bank):
    seed_cases(bank)
    llm = scripted(plan=[{"subtasks": ["a", " a ", "b", "", "c", "d", "e"]}])
    nodes = nodes_for(bank, llm, max_subtasks=3)
    state = run(nodes, {"task": TASK}, "read_memory", "plan")
    assert state["plan"] == ["a", "b", "c"] and state["plans"] == [["a", "b", "c"]] and state["subtask"] == 0
    prompt = "\n".join(m["content"] for m in llm.calls[0].messages)
    assert "founder of Globex" in prompt and "Why it failed" in prompt and TASK in prompt
    assert state["tokens"]["prompt_tokens"] > 0 and state["llm_calls"][0]["node"] == "plan"


def test_an_unusable_plan_falls_back_to_the_task(bank):
    llm = scripted(plan=["not json at all", '{"subtasks": []}'])
    state = run(nodes_for(bank, llm), {"task": TASK}, "read_memory", "plan")
    assert state["plan"] == [f"Find the answer to: {TASK}"]
    assert len(state["llm_calls"]) == 2  # the first reply and its one repair
    assert any(note.startswith("plan: unusable reply") for note in state["notes"])


# -------------------------------------------------------------------------------- execute


def planned(nodes, plan):
    state = run(nodes, {"task": TASK}, "read_memory")
    return {**state, "plan": plan, "plans": [plan], "subtask": 0}


def test_execute_calls_tools_and_records_the_finding(bank):
    llm = scripted(execute=[{"tool": "lookup", "input": "Acme"}, {"tool": "final", "input": "Ada Brill"}])
    nodes = nodes_for(bank, llm)
    state = run(nodes, planned(nodes, ["find the founder"]), "execute")
    first, last = state["trajectory"]
    assert (first["tool"], first["tool_input"], first["ok"]) == ("lookup", "Acme", True)
    assert "founded in 1901 by Ada Brill" in first["observation"]
    assert last["tool"] is None and last["observation"] == "Ada Brill"
    assert state["findings"] == [{"subtask": "find the founder", "result": "Ada Brill"}]
    assert state["subtask"] == 1 and state["steps_used"] == 2 and "stop_reason" not in state
    executor_prompt = llm.calls[1].messages
    assert executor_prompt[-1]["content"].startswith("Observation: Acme Corp was founded")


def test_execute_turns_tool_errors_and_bad_replies_into_observations(bank):
    def broken(query: str) -> str:
        raise RuntimeError("index is down")

    from langchain_core.tools import tool as make_tool

    llm = scripted(execute=[{"tool": "broken", "input": "x"}, {"tool": "nope", "input": "x"}, "gibberish"])
    nodes = nodes_for(bank, llm, tools=[lookup, make_tool(broken, description="Always fails.")])
    state = run(nodes, planned(nodes, ["try things"]), "execute")
    tool_error, unknown, gibberish = state["trajectory"]
    assert tool_error["ok"] is False and "RuntimeError: index is down" in tool_error["observation"]
    assert "there is no tool 'nope'" in unknown["observation"] and "Reply with JSON like" in unknown["observation"]
    assert "not a JSON object" in gibberish["observation"]
    assert len(state["trajectory"]) == 3  # two unreadable replies in a row end the subtask
    assert state["findings"][0]["result"] == "nothing found"


def test_a_subtask_without_a_final_result_keeps_its_last_tool_result(bank):
    llm = scripted(execute=[{"tool": "lookup", "input": "Acme"}, {"tool": "lookup", "input": "Velmora"}])
    nodes = nodes_for(bank, llm, max_steps_per_subtask=2)
    state = run(nodes, planned(nodes, ["look around"]), "execute")
    assert len(state["trajectory"]) == 2 and state["findings"][0]["result"] == FACTS["velmora"]


def test_long_tool_results_are_cut(bank):
    llm = scripted(execute=[{"tool": "lookup", "input": "acme ada brill velmora"}, {"tool": "final", "input": "x"}])
    nodes = nodes_for(bank, llm, max_observation_chars=40)
    state = run(nodes, planned(nodes, ["look"]), "execute")
    assert state["trajectory"][0]["observation"].startswith("Acme Corp was founded in 1901 by Ada Bri")
    assert "[cut: " in state["trajectory"][0]["observation"]


# ---------------------------------------------------------------------------- the budgets


def test_step_budget_stops_the_episode(bank):
    llm = scripted(execute=[{"tool": "lookup", "input": "Acme"}])  # never finishes on its own
    nodes = nodes_for(bank, llm, max_steps=3, max_steps_per_subtask=2)
    state = run(nodes, planned(nodes, ["a", "b", "c"]), "execute", "execute")
    assert state["steps_used"] == 3 and state["stop_reason"] == "step_budget"
    assert [s["subtask"] for s in state["trajectory"]] == [0, 0, 1]


def test_token_budget_stops_the_episode_and_the_answer_costs_nothing(bank):
    llm = scripted(execute=[{"tool": "lookup", "input": "Acme"}], answer=[{"answer": "never asked"}])
    nodes = nodes_for(bank, llm, max_tokens=150, max_steps_per_subtask=10)
    state = run(nodes, planned(nodes, ["a"]), "execute")
    assert state["stop_reason"] == "token_budget" and 0 < len(state["trajectory"]) < 10
    used = state["tokens"]["prompt_tokens"] + state["tokens"]["completion_tokens"]
    assert used >= 150
    state = run(nodes, state, "answer")
    assert state["answer"].startswith("Acme Corp was founded") and "answer" not in llm.handler.seen


def test_wall_time_budget_stops_between_turns(bank):
    import time

    from langchain_core.tools import tool as make_tool

    def slow(query: str) -> str:
        time.sleep(0.3)
        return "slow result"

    llm = scripted(execute=[{"tool": "slow", "input": "x"}])
    nodes = nodes_for(bank, llm, tools=[make_tool(slow, description="Takes a while.")], max_wall_s=0.5,
                      max_steps_per_subtask=10)
    state = run(nodes, planned(nodes, ["wait"]), "execute")
    assert state["stop_reason"] == "time_budget" and 1 <= len(state["trajectory"]) <= 3


# ------------------------------------------------------------------------- replan, answer


def test_replan_revises_or_answers(bank):
    nodes = nodes_for(bank, scripted(replan=[{"decision": "revise", "subtasks": ["dig deeper", "dig deeper"]}]))
    state = {"task": TASK, "plan": ["a"], "subtask": 1, "findings": [{"subtask": "a", "result": "?"}]}
    state = run(nodes, state, "replan")
    assert state["plan"] == ["dig deeper"] and state["subtask"] == 0 and state["revisions"] == 1
    nodes = nodes_for(bank, scripted(replan=[{"decision": "answer"}]))
    state = run(nodes, {"task": TASK, "plan": ["a"], "subtask": 1}, "replan")
    assert state["plan"] == ["a"] and state["subtask"] == 1 and "revisions" not in state


def test_answer_uses_the_findings_or_falls_back_to_the_last_one(bank):
    findings = [{"subtask": "founder", "result": "Ada Brill"}, {"subtask": "birthplace", "result": "Velmora"}]
    llm = scripted(answer=[{"answer": "  Velmora "}])
    state = run(nodes_for(bank, llm), {"task": TASK, "findings": findings}, "answer")
    assert state["answer"] == "Velmora" and "- birthplace: Velmora" in llm.calls[0].messages[-1]["content"]
    state = run(nodes_for(bank, scripted(answer=["no json"])), {"task": TASK, "findings": findings}, "answer")
    assert state["answer"] == "Velmora" and "answer: unusable reply" in state["notes"][0]


# --------------------------------------------------------------------------------- reward


def test_reward_from_the_scorer_the_run_scorer_or_a_metric_dict(bank):
    nodes = AgentNodes(scripted(**HAPPY), bank, SimilarityPolicy(bank), scorer=lambda task, answer: float(answer == "x"))
    assert run(nodes, {"task": TASK, "answer": "x"}, "reward")["reward"] == 1.0
    per_run = {"configurable": {"memento_scorer": lambda task, answer: {"em": 0.0, "f1": 0.5},
                                "memento_task": {"id": "t1"}}}
    state = run(nodes, {"task": TASK, "answer": "x"}, "reward", config=per_run)
    assert (state["reward"], state["scores"], state["reward_source"]) == (0.0, {"em": 0.0, "f1": 0.5}, "scorer")
    f1_nodes = AgentNodes(scripted(**HAPPY), bank, SimilarityPolicy(bank), config=AgentConfig(reward_metric="f1"),
                          scorer=lambda task, answer: {"em": 0.0, "f1": 0.5})
    assert run(f1_nodes, {"task": TASK, "answer": "x"}, "reward")["reward"] == 0.5
    with pytest.raises(ValidationError, match="reward_metric"):
        AgentNodes(scripted(**HAPPY), bank, SimilarityPolicy(bank), scorer=lambda t, a: {"acc": 1.0}).reward({"task": TASK})
    with pytest.raises(ValidationError, match="finite number"):
        AgentNodes(scripted(**HAPPY), bank, SimilarityPolicy(bank), scorer=lambda t, a: "yes").reward({"task": TASK})


def test_reward_from_a_judge_the_llm_judge_or_nothing(bank):
    judged = AgentNodes(scripted(**HAPPY), bank, SimilarityPolicy(bank), judge=lambda q, a, gold: float(a in gold))
    state = run(judged, {"task": TASK, "answer": "Velmora", "gold": ["Velmora"]}, "reward")
    assert (state["reward"], state["reward_source"]) == (1.0, "judge")
    llm = scripted(**HAPPY)
    state = run(nodes_for(bank, llm), {"task": TASK, "answer": "Velmora", "gold": ["Velmora"]}, "reward")
    assert (state["reward"], state["reward_source"]) == (1.0, "judge") and llm.handler.seen["judge"] == 1
    assert state["llm_calls"][0]["node"] == "reward"
    state = run(nodes_for(bank, llm), {"task": TASK, "answer": "Velmora"}, "reward")
    assert (state["reward"], state["reward_source"]) == (None, "none")


# --------------------------------------------------------------------- write_memory, learn


def finished(nodes, reward=1.0, **extra):
    state = run(nodes, {"task": TASK, "task_id": "t-1", "dataset": "fictional", **extra}, "read_memory")
    return {**state, "plan": ["a"], "trajectory": [{"subtask": 0, "thought": "a", "tool": "lookup", "tool_input": "Acme",
                                                   "observation": "found", "seconds": 0.1, "ok": True}],
            "answer": "Velmora", "reward": reward, "scores": {"em": reward}}


def test_write_memory_stores_failures_too_and_is_idempotent(bank):
    seed_cases(bank)
    nodes = nodes_for(bank, scripted(**HAPPY))
    state = finished(nodes, reward=0.0)
    state = run(nodes, state, "write_memory", "write_memory")
    case = bank.get(state["case_id"])
    assert case.id == state["episode_id"] and case.reward == 0.0 and case.answer == "Velmora"
    assert case.trajectory[0].tool == "lookup" and case.plan == ["a"]
    assert case.metadata["selected_case_ids"] == [s["case_id"] for s in state["selected"]]
    assert case.metadata["dataset"] == "fictional" and case.metadata["model"] == "scripted"
    assert np.allclose(bank.vectors([case.id])[0], state["task_embedding"], atol=1e-6)
    assert bank.count() == 4


def test_nothing_is_written_or_learned_when_not_learning(bank):
    seed_cases(bank)
    policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1))
    nodes = nodes_for(bank, scripted(**HAPPY), policy=policy)
    state = run(nodes, finished(nodes, learn=False), "write_memory", "learn")
    assert state["case_id"] is None and bank.count() == 3 and len(policy.replay) == 0
    assert load_trace(bank, state["episode_id"])["learn"] is False


def test_learn_records_the_outcome_and_saves_the_trace(bank):
    seed_cases(bank)
    policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1))
    nodes = nodes_for(bank, scripted(**HAPPY), policy=policy)
    state = run(nodes, finished(nodes), "write_memory", "learn")
    assert len(policy.replay) == 1 and state["policy_metrics"]["charts/replay_size"] == 1.0
    trace = load_trace(bank, state["episode_id"])
    assert trace["case_id"] == state["case_id"] and trace["selected"] == state["selected"]
    assert trace["tool_calls"][0]["tool"] == "lookup" and trace["timings"]["policy_s"] > 0
    assert json.loads(json.dumps(trace)) == trace


def test_an_unscored_episode_teaches_the_policy_nothing(bank):
    seed_cases(bank)
    policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1))
    nodes = nodes_for(bank, scripted(**HAPPY), policy=policy)
    state = run(nodes, finished(nodes, reward=None), "write_memory", "learn")
    assert bank.get(state["case_id"]).metadata["scored"] is False and len(policy.replay) == 0
