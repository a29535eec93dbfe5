"""The whole graph: episodes end to end, memory across episodes, checkpoints, concurrency, subgraphs."""

from __future__ import annotations

import asyncio
from typing import TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from memento.agent import Agent, AgentConfig, build_agent_graph, list_traces, load_trace
from memento.llm import ScriptedLLM
from memento.policies import NeuralQPolicy, SimilarityPolicy
from memento.policies.neural_q import NeuralQConfig
from tests.agent.conftest import HAPPY, Script, lookup, scripted

TASK = "In which city was the founder of Acme born?"


def exact(task, answer):
    return float(answer == "Velmora")


def test_an_episode_end_to_end(bank):
    llm = scripted(**HAPPY)
    policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1))
    agent = Agent(llm, bank, policy, [lookup])
    result = agent.run(TASK, scorer=exact)
    assert (result.answer, result.reward, result.stop_reason) == ("Velmora", 1.0, None)
    assert result.plan == ["find the founder of Acme", "find where the founder was born"]
    assert [s.tool for s in result.trajectory] == ["lookup", None, "lookup", None]
    assert llm.handler.seen == {"plan": 1, "execute": 4, "replan": 1, "answer": 1}
    case = bank.get(result.case_id)
    assert case.reward == 1.0 and case.metadata["episode_id"] == result.episode_id
    assert len(policy.replay) == 1
    trace = load_trace(bank, result.episode_id)
    assert [n["node"] for n in trace["timings"]["nodes"]] == [
        "read_memory", "recall", "plan", "execute", "execute", "replan", "answer", "reward", "induce", "write_memory",
        "learn"]
    assert trace["tokens"]["prompt_tokens"] > 0 and len(trace["llm_calls"]) == 7
    assert len(trace["tool_calls"]) == 2 and trace["reward"] == 1.0
    assert result.trace["timings"]["wall_s"] >= result.trace["timings"]["active_s"] > 0
    assert list_traces(bank)[0]["episode_id"] == result.episode_id


def test_the_next_episode_plans_with_the_first_as_a_case(bank):
    llm = scripted(**HAPPY)
    agent = Agent(llm, bank, SimilarityPolicy(bank), [lookup])
    first = agent.run(TASK, scorer=exact)
    second = agent.run("In which city was the founder of Acme Corp born?", scorer=exact)
    assert [s["case_id"] for s in second.selected] == [first.case_id]
    planner_calls = [c for c in llm.calls if any("Split the question" in m["content"] for m in c.messages)]
    planner_prompt = planner_calls[-1].messages[-1]["content"]
    assert TASK in planner_prompt and "Answer: Velmora" in planner_prompt and "(worked, reward 1)" in planner_prompt


def test_learn_false_leaves_memory_untouched(bank):
    policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1))
    agent = Agent(scripted(**HAPPY), bank, policy, [lookup])
    agent.run(TASK, scorer=exact)
    before = (bank.count(), len(policy.replay), [c.model_dump() for c in bank.iter_cases()])
    result = agent.run(TASK, scorer=exact, learn=False)
    assert result.case_id is None and result.reward == 1.0
    assert (bank.count(), len(policy.replay), [c.model_dump() for c in bank.iter_cases()]) == before
    assert load_trace(bank, result.episode_id)["learn"] is False


def test_a_task_record_and_its_gold_reach_the_scorer(bank):
    from memento.envs.task import Task

    seen = []
    task = Task(id="q1", question=TASK, gold=["Velmora"], benchmark="fictional", source="fictional")
    agent = Agent(scripted(**HAPPY), bank, SimilarityPolicy(bank), [lookup])
    result = agent.run(task, scorer=lambda t, a: seen.append(t) or float(a in t.gold))
    assert seen == [task] and result.reward == 1.0
    assert bank.get(result.case_id).metadata["task_id"] == "q1"
    assert bank.get(result.case_id).metadata["dataset"] == "fictional"


def test_revisions_are_bounded(bank):
    llm = scripted(**{**HAPPY, "replan": [{"decision": "revise", "subtasks": ["once more"]}]})
    agent = Agent(llm, bank, SimilarityPolicy(bank), [lookup], config=AgentConfig(max_plan_revisions=2))
    result = agent.run(TASK, scorer=exact)
    assert llm.handler.seen["replan"] == 2 and result.trace["plans"][-1] == ["once more"]
    assert len(result.trace["plans"]) == 3


def test_the_step_budget_ends_in_an_answer(bank):
    llm = scripted(**{**HAPPY, "execute": [{"tool": "lookup", "input": "Acme"}]})
    agent = Agent(llm, bank, SimilarityPolicy(bank), [lookup], config=AgentConfig(max_steps=3, max_steps_per_subtask=2))
    result = agent.run(TASK, scorer=exact)
    assert result.stop_reason == "step_budget" and len(result.trajectory) == 3
    assert "replan" not in llm.handler.seen and result.answer == "Velmora"
    assert bank.get(result.case_id).metadata["stop_reason"] == "step_budget"


def test_resume_after_an_interrupt(bank):
    llm = scripted(**HAPPY)
    graph = build_agent_graph(llm, bank, SimilarityPolicy(bank), [lookup], scorer=exact,
                              checkpointer=InMemorySaver(), interrupt_before=["execute"])
    thread = {"configurable": {"thread_id": "t1"}}
    paused = graph.invoke({"task": TASK}, thread)
    assert paused["plan"] and "answer" not in paused and graph.get_state(thread).next == ("execute",)
    done = graph.invoke(None, thread)
    while "answer" not in done or graph.get_state(thread).next:
        done = graph.invoke(None, thread)
    assert done["answer"] == "Velmora" and done["reward"] == 1.0 and llm.handler.seen["plan"] == 1
    assert bank.count() == 1


def test_resume_after_a_crash(bank):
    script = Script(**HAPPY)
    crashes = {"left": 1}

    def flaky(messages):
        text = "\n".join(m["content"] for m in messages)
        if "You are the executor" in text and crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("the process died here")
        return script(messages)

    llm = ScriptedLLM(flaky)
    graph = build_agent_graph(llm, bank, SimilarityPolicy(bank), [lookup], scorer=exact, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t2"}}
    with pytest.raises(RuntimeError, match="died"):
        graph.invoke({"task": TASK}, thread)
    assert graph.get_state(thread).next == ("execute",)
    done = graph.invoke(None, thread)
    assert done["answer"] == "Velmora" and script.seen["plan"] == 1 and bank.count() == 1


def test_concurrent_episodes(bank):
    agent = Agent(scripted(**HAPPY), bank, NeuralQPolicy(bank, NeuralQConfig(min_replay=1)), [lookup])

    async def many():
        return await asyncio.gather(*(agent.arun(f"{TASK} (variant {i})", scorer=exact) for i in range(3)))

    results = asyncio.run(many())
    assert len({r.case_id for r in results}) == 3 and bank.count() == 3
    assert all(r.answer == "Velmora" for r in results)
    assert len(list_traces(bank)) == 3


def test_the_agent_as_a_subgraph(bank):
    class App(TypedDict, total=False):
        question: str
        task: str
        answer: str
        summary: str

    agent_graph = build_agent_graph(scripted(**HAPPY), bank, SimilarityPolicy(bank), [lookup], scorer=exact)
    app = StateGraph(App)
    app.add_node("route", lambda state: {"task": state["question"].strip()})
    app.add_node("memento", agent_graph)
    app.add_node("summarise", lambda state: {"summary": f"{state['task']} -> {state['answer']}"})
    app.add_edge(START, "route")
    app.add_edge("route", "memento")
    app.add_edge("memento", "summarise")
    app.add_edge("summarise", END)
    out = app.compile().invoke({"question": f"  {TASK} "})
    assert out["summary"] == f"{TASK} -> Velmora" and set(out) == {"question", "task", "answer", "summary"}
    assert bank.count() == 1


def test_a_given_episode_id_names_the_case_and_the_trace(bank):
    agent = Agent(scripted(**HAPPY), bank, SimilarityPolicy(bank), [lookup])
    result = agent.run(TASK, scorer=exact, episode_id="run-7-task-3")
    assert result.case_id == "run-7-task-3" and load_trace(bank, "run-7-task-3")["answer"] == "Velmora"


@pytest.mark.parametrize("bad", [dict(k=0), dict(max_steps=-1), dict(max_wall_s=0), dict(max_plan_revisions=-1)])
def test_config_errors_name_the_setting(bad):
    from memento.errors import ValidationError

    with pytest.raises(ValidationError, match=next(iter(bad))):
        AgentConfig(**bad)
