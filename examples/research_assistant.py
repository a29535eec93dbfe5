"""A research assistant: the memento agent embedded as a subgraph of a larger LangGraph app.

    python examples/research_assistant.py                      # 2 fictional-world questions, SmolLM2 on the CPU
    python examples/research_assistant.py --questions 4 --workdir runs/assistant

The app is three nodes: a router sends small talk to a canned reply and questions to the memento
agent (a compiled graph used as a node); a summariser turns the agent's answer into one line.
The agent searches a corpus with BM25 and remembers every episode in a case bank, so later
questions are planned with earlier ones in view. Everything runs offline: the corpus is the
generated fictional world (`envs.fictional_world`), the model the packaged SmolLM2-135M.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TypedDict

from langgraph.graph import END, START, StateGraph

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere in a source checkout
    sys.path.insert(0, str(ROOT))

from memento.envs.fictional_world import build_world, score  # noqa: E402
from memento import CaseBank  # noqa: E402
from memento.agent import AgentConfig, build_agent_graph  # noqa: E402
from memento.llm import LLM, load_llm  # noqa: E402
from memento.tools.search import CorpusSearch, search_tool  # noqa: E402
from memento.policies import SimilarityPolicy  # noqa: E402

AGENT_CONFIG = AgentConfig(max_subtasks=2, max_steps=3, max_steps_per_subtask=2, max_plan_revisions=0,
                           planner_max_tokens=64, executor_max_tokens=48, answer_max_tokens=24)
"""Small budgets: SmolLM2 on a laptop CPU answers in well under a minute."""


class AssistantState(TypedDict, total=False):
    """The app's state; `task`, `gold`, `answer`, `reward` and `case_id` are shared with the agent."""

    message: str
    route: str
    task: str
    gold: list[str]
    answer: str
    reward: float | None
    case_id: str | None
    reply: str


def route(state: AssistantState) -> dict[str, Any]:
    """Questions go to research, anything else is small talk."""
    message = state["message"].strip()
    research = message.endswith("?") and len(message.split()) >= 4
    return {"route": "research" if research else "chat", "task": message}


def chat(state: AssistantState) -> dict[str, Any]:
    return {"reply": "Hello! Ask me a question about the world in my corpus."}


def make_summariser(llm: LLM):
    """A node that states the agent's answer in one sentence (falls back to a template)."""

    def summarise(state: AssistantState) -> dict[str, Any]:
        prompt = (f"Question: {state['task']}\nAnswer: {state.get('answer') or 'unknown'}\n"
                  "Write one short sentence that gives this answer to the question.")
        text = llm.complete([{"role": "user", "content": prompt}], max_tokens=40).text.strip()
        return {"reply": text.splitlines()[0] if text else f"The answer is {state.get('answer')}."}

    return summarise


def exact_match(task: Any, answer: str) -> float:
    """The fictional world's EM when the run passed the task record; 0.0 for a bare question."""
    return score(task, answer)["em"] if hasattr(task, "gold") else 0.0


def build_app(llm: LLM, bank: CaseBank, tools: Sequence[Any], config: AgentConfig = AGENT_CONFIG):
    """The assistant graph: route -> (memento agent -> summarise | chat)."""
    agent = build_agent_graph(llm, bank, SimilarityPolicy(bank), tools, config=config, scorer=exact_match)
    app = StateGraph(AssistantState)
    app.add_node("route", route)
    app.add_node("chat", chat)
    app.add_node("memento", agent)
    app.add_node("summarise", make_summariser(llm))
    app.add_edge(START, "route")
    app.add_conditional_edges("route", lambda state: "memento" if state["route"] == "research" else "chat",
                              ["memento", "chat"])
    app.add_edge("memento", "summarise")
    app.add_edge("summarise", END)
    app.add_edge("chat", END)
    return app.compile()


def main(argv: Sequence[str] | None = None, *, llm: LLM | None = None) -> list[dict[str, Any]]:
    """Run the assistant on a greeting and `--questions` fictional-world questions; returns the final states."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=2, help="how many questions to ask")
    parser.add_argument("--workdir", type=Path, default=Path("runs/research_assistant"),
                        help="folder for the corpus, its search index and the case bank")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1 is fastest on a busy CPU)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    world = build_world(seed=0, n_entities=60)
    corpus = world.write_corpus_jsonl(args.workdir / "corpus.jsonl")
    search = search_tool(CorpusSearch(corpus, cache_dir=args.workdir / "search-cache"),
                         max_chars_per_passage=200, default_k=2)
    llm = llm or load_llm(n_threads=args.threads)
    outputs = []
    with CaseBank(args.workdir / "cases.db") as bank:
        app = build_app(llm, bank, [search])
        tasks = world.tasks(args.questions, seed=1, shapes=["founder_birthplace"])
        for message, task in [("hi there", None), *((t.question, t) for t in tasks)]:
            started = time.perf_counter()
            # The scorer receives the task record through the run's config (see memento.agent.nodes.TASK_KEY).
            out = app.invoke({"message": message, "gold": task.gold if task else []},
                             {"configurable": {"memento_task": task}})
            print(f"[{time.perf_counter() - started:5.1f}s] {message}\n    -> {out['reply']}"
                  + (f"  (answer {out['answer']!r}, gold {task.gold}, reward {out['reward']})" if task else ""))
            outputs.append(out)
        print(f"{bank.count()} cases in {bank.path}")
    return outputs


if __name__ == "__main__":
    main()
