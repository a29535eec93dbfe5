"""The memento agent: a memory-augmented planner-executor, as a LangGraph graph.

One episode reads memory (the policy picks K past cases), plans (the planner sees those cases),
executes the plan with tools within budgets, revises it a bounded number of times, answers,
gets a reward, writes the episode as a case and teaches the policy. Every episode leaves a trace.

    from memento.agent import Agent, build_agent_graph
    agent = Agent(llm, bank, policy, tools)                     # the short way
    result = agent.run("Who founded Acme?", gold=["Ada"])
    graph = build_agent_graph(llm, bank, policy, tools, checkpointer=InMemorySaver())  # the LangGraph way
    graph.invoke({"task": "Who founded Acme?"}, {"configurable": {"thread_id": "t1"}})
"""

from memento.agent.agent import Agent, EpisodeResult
from memento.agent.config import AgentConfig
from memento.agent.graph import build_agent_graph
from memento.agent.nodes import AgentNodes
from memento.agent.state import AgentInput, AgentState, apply_update
from memento.agent.trace import list_traces, load_trace

__all__ = [
    "Agent", "AgentConfig", "AgentInput", "AgentNodes", "AgentState", "EpisodeResult",
    "apply_update", "build_agent_graph", "list_traces", "load_trace",
]
