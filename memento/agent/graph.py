"""`build_agent_graph`: the agent as a compiled LangGraph graph.

    START -> read_memory -> recall --(a procedure answered)-----------------------------> reward
                                   |--(fallback='explore')--> explore ------------------> reward
                                   |--(fallback='plan')--> plan -> execute --(more subtasks)--> execute
                                      |--(plan done, revisions left)--> replan --(revised)--> execute
                                      |--(budget spent, or no revisions left)------------> answer
                                                                 replan --(answer now)--> answer
             answer -> reward -> induce -> write_memory -> learn -> END

The input is `AgentInput` ({"task": ..., "gold": [...], "learn": True, ...}); the output is the
whole `AgentState` (answer, reward, case_id, plans, trajectory, tokens, timings...). Compile it
with a checkpointer to keep thread state and resume an interrupted episode, or add it to a
larger graph as a node: the parent's keys that match (`task`, `answer`, ...) flow in and out.
"""

from __future__ import annotations

from typing import Any, Sequence

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from memento.agent.config import AgentConfig
from memento.agent.nodes import AgentNodes, Judge, Scorer
from memento.agent.state import AgentInput, AgentState
from memento.llm import LLM
from memento.policy import CaseSelectionPolicy


def build_agent_graph(llm: LLM, bank: Any, policy: CaseSelectionPolicy, tools: Sequence[Any] = (), *,
                      config: AgentConfig = AgentConfig(), scorer: Scorer | None = None, judge: Judge | None = None,
                      checkpointer: Any = None, store: Any = None, interrupt_before: list[str] | None = None,
                      interrupt_after: list[str] | None = None, name: str = "memento_agent") -> CompiledStateGraph:
    """The memory-augmented planner-executor as a compiled graph.

    `tools` are LangChain tools (anything with `name`, `description`, `invoke`). `scorer(task, answer)`
    gives the reward; without one, `judge(question, answer, gold)`, else the LLM judge when the
    input has gold answers. `checkpointer`, `store` and the interrupts go to `StateGraph.compile`.
    """
    return compile_nodes(AgentNodes(llm, bank, policy, tools, config=config, scorer=scorer, judge=judge),
                         checkpointer=checkpointer, store=store, interrupt_before=interrupt_before,
                         interrupt_after=interrupt_after, name=name)


def compile_nodes(nodes: AgentNodes, **compile_options: Any) -> CompiledStateGraph:
    """Wire `nodes` into the agent graph and compile it with `compile_options`."""
    config = nodes.config
    graph = StateGraph(AgentState, input_schema=AgentInput)
    for name in ("read_memory", "recall", "explore", "plan", "execute", "replan", "answer", "reward", "induce",
                 "write_memory", "learn"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "read_memory")
    graph.add_edge("read_memory", "recall")

    def after_recall(state: dict[str, Any]) -> str:
        if state.get("answered_by") == "recall":
            return "reward"
        return "explore" if config.fallback == "explore" else "plan"

    graph.add_conditional_edges("recall", after_recall, ["reward", "explore", "plan"])
    graph.add_edge("explore", "reward")
    graph.add_edge("plan", "execute")

    def after_execute(state: dict[str, Any]) -> str:
        if state.get("stop_reason"):
            return "answer"
        if state.get("subtask", 0) < len(state.get("plan", [])):
            return "execute"
        return "replan" if state.get("revisions", 0) < config.max_plan_revisions else "answer"

    def after_replan(state: dict[str, Any]) -> str:
        return "execute" if state.get("subtask", 0) < len(state.get("plan", [])) else "answer"

    graph.add_conditional_edges("execute", after_execute, ["execute", "replan", "answer"])
    graph.add_conditional_edges("replan", after_replan, ["execute", "answer"])
    graph.add_edge("answer", "reward")
    graph.add_edge("reward", "induce")
    graph.add_edge("induce", "write_memory")
    graph.add_edge("write_memory", "learn")
    graph.add_edge("learn", END)
    return graph.compile(**compile_options).with_config(recursion_limit=recursion_limit(config))


def recursion_limit(config: AgentConfig) -> int:
    """Graph steps an episode can take at most, with room to spare (LangGraph's default, 25, can be too few)."""
    executions = config.max_subtasks * (config.max_plan_revisions + 1)
    return 4 + executions + config.max_plan_revisions + 5 + 10
