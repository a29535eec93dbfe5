"""The agent's nodes: one episode of the memory-augmented MDP, one function per stage.

    nodes = AgentNodes(llm, bank, policy, tools)
    builder.add_node("read_memory", nodes.read_memory)     # wire any of them into your own graph

Every node takes (state, config) and returns a state update (see `memento.agent.state`), and
adds its own duration to `timings`/`active_s`. Stages:

    read_memory   embed the task, let the policy select K cases, render them for the planner
    recall        run a selected case's procedure when the task fits its template (memento.agent.recall)
    explore       fallback='explore': search outward from the task, one constrained answer choice
    plan          fallback='plan': the planner writes subtasks (structured output), having seen the cases
    execute       the executor does the next subtask with tools (see `memento.agent.executor`)
    replan        the planner reads the findings: answer now, or revise the plan (bounded)
    answer        the planner gives the final answer from the findings
    reward        the scorer's reward, else a judge's, else None
    induce        the procedure the case will hold: from the answer if it was right, else (hindsight,
                  training only) from where the gold answer stood in the agent's own results
    write_memory  the episode becomes a case (skipped when learn=False)
    learn         the policy records the outcome and updates (skipped when learn=False); the trace is saved

A model reply that cannot be used never ends the episode: the plan falls back to the task itself,
the answer to the last finding, and every fallback is noted in the trace.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from typing import Any, Callable, Optional, Sequence

import numpy as np
from langchain_core.runnables import RunnableConfig

from memento.agent.config import AgentConfig
from memento.agent.executor import Budget, Executor
from memento.agent.explore import explore, search_outward
from memento.agent.induction import induce as induce_procedure
from memento.agent.recall import run_procedure
from memento.agent.metering import MeteredLLM
from memento.agent.prompts import (
    FinalAnswer, Plan, Revision, answer_messages, clip, planner_messages, render_cases, replanner_messages,
)
from memento.agent.state import apply_update
from memento.agent.trace import build_trace
from memento.case import Case, Step
from memento.errors import NotFoundError, StructuredOutputError, ValidationError
from memento.judge import judge_answer
from memento.procedure import Procedure
from memento.llm import LLM
from memento.policy import CaseSelectionPolicy, Exclude, TaskState

Scorer = Callable[[Any, str], "float | dict[str, float]"]
"""`scorer(task, answer)`: the environment's reward, or a dict of metrics (see AgentConfig.reward_metric)."""
Judge = Callable[[str, str, list[str]], "float | dict[str, float]"]
"""`judge(question, answer, gold)`: a reward from a judge, used when there is no scorer."""

SCORER_KEY = "memento_scorer"
"""`config["configurable"][SCORER_KEY]`: a scorer for this run only, overriding the graph's."""
TASK_KEY = "memento_task"
"""`config["configurable"][TASK_KEY]`: the object the scorer receives as `task` (default: the task text)."""
EXCLUDE_KEY = "memento_exclude"
"""`config["configurable"][EXCLUDE_KEY]`: cases the policy must not show in this run (`select(exclude=...)`)."""

_MODEL_OUTPUT_ERRORS = (StructuredOutputError, ValidationError)
SUCCESS = 0.5
"""A reward at least this high counts as a success: its procedure is kept as one that works."""

# Nodes spell their config parameter `Optional[RunnableConfig]`: LangGraph injects the run's config
# only when the annotation's text is one it knows, and "RunnableConfig | None" is not one of them.


def _timed(name: str) -> Callable:
    """Add the node's duration to `timings` and `active_s` (the wall-time budget's clock)."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def node(self: AgentNodes, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
            started = time.perf_counter()
            update = method(self, state, config)
            seconds = time.perf_counter() - started
            update["timings"] = [{"node": name, "seconds": round(seconds, 4)}]
            update["active_s"] = seconds
            return update

        return node

    return wrap


class AgentNodes:
    """The nodes of the agent graph, bound to one LLM, bank, policy and tool set."""

    def __init__(self, llm: LLM, bank: Any, policy: CaseSelectionPolicy, tools: Sequence[Any] = (), *,
                 config: AgentConfig = AgentConfig(), scorer: Scorer | None = None, judge: Judge | None = None):
        self.llm, self.bank, self.policy, self.config = llm, bank, policy, config
        policy.bind(bank)  # once: a policy keeps its learning in one bank (PolicyError if it is another's)
        self.scorer, self.judge = scorer, judge
        self.executor = Executor(list(tools), config)
        # Episodes may run concurrently (arun); policies and their torch models are not thread-safe.
        self._memory_lock = threading.Lock()

    # ------------------------------------------------------------------------ memory

    @_timed("read_memory")
    def read_memory(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """Embed the task and let the policy pick K cases; with learn=False it does not explore."""
        task = state.get("task")
        if not isinstance(task, str) or not task.strip():
            raise ValidationError(f"the agent's input needs a non-empty 'task' string, got {task!r}")
        learn = state.get("learn", True)
        episode_id = state.get("episode_id") or uuid.uuid4().hex
        exclude = (config or {}).get("configurable", {}).get(EXCLUDE_KEY)
        started = time.perf_counter()
        embedding = self.bank.embed([task])[0]
        embedded = time.perf_counter()
        memory = {"task": task, "episode_id": episode_id, "task_embedding": embedding.tolist()}
        with self._memory_lock:
            selections = self._select(task_state(memory), learn, exclude)
        selected = time.perf_counter()
        return {
            "episode_id": episode_id, "learn": learn, "task_embedding": memory["task_embedding"],
            "selected": [{"case_id": s.case.id, "score": round(float(s.score), 6), "similarity": round(float(s.similarity), 6)}
                         for s in selections],
            "cases_context": render_cases([s.case for s in selections], self.config.max_case_chars),
            "procedures": [{"case_id": s.case.id, "procedure": s.case.procedure.model_dump(mode="json")}
                           for s in selections if s.case.procedure is not None],
            "memory_s": embedded - started, "policy_s": selected - embedded,
            "memory_ops": [_op("embed", embedded - started), _op("select", selected - embedded)],
        }

    def _select(self, task_state: TaskState, learn: bool, exclude: Exclude = None) -> list[Any]:
        """The k cases shown: the policy ranks `procedure_pool` of them; those whose procedure fits the task go first.

        A case the agent can run on this task is worth more than a similar one it cannot, but which
        of the fitting ones to trust is the policy's call (its order is kept), and cases without a
        fitting procedure still fill the rest, as context for the planner.
        """
        config = self.config
        pool = max(config.k, config.procedure_pool) if config.procedures else config.k
        ranked = self.policy.select(task_state, k=pool, namespace=config.namespace, explore=config.explore and learn,
                                    exclude=exclude)
        if pool == config.k:
            return ranked
        fitting = [s for s in ranked if s.case.procedure is not None and s.case.procedure.outcome == "success"
                   and s.case.procedure.fit(task_state.task) is not None]
        return (fitting + [s for s in ranked if s not in fitting])[: config.k]

    @_timed("write_memory")
    def write_memory(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """Store the episode as a case, failures too; the case id is the episode id, so a rerun writes nothing twice."""
        if not state.get("learn", True):
            return {"case_id": None}
        case = self.episode_case(state)
        started = time.perf_counter()
        with self._memory_lock:
            try:
                self.bank.get(case.id)
            except NotFoundError:
                self.bank.add(case, vector=np.asarray(state["task_embedding"], dtype=np.float32))
        seconds = time.perf_counter() - started
        return {"case_id": case.id, "memory_s": seconds, "memory_ops": [_op("write_case", seconds)]}

    @_timed("learn")
    def learn(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """Teach the policy the outcome (when learning and scored), then save the episode's trace."""
        started = time.perf_counter()
        update: dict[str, Any] = {"policy_metrics": {}, "memory_ops": []}
        if state.get("learn", True) and state.get("reward") is not None:
            shown = [s["case_id"] for s in state.get("selected", [])]
            with self._memory_lock:
                try:
                    self.policy.record(task_state(state), shown, state["reward"], namespace=self.config.namespace)
                    recorded = time.perf_counter()
                    update["policy_metrics"] = self.policy.update()
                    update["memory_ops"] += [_op("record", recorded - started), _op("update", time.perf_counter() - recorded)]
                except NotFoundError as error:  # a shown case was deleted during the episode
                    update["notes"] = [f"learn: not recorded ({clip(error, 200)})"]
            update["policy_s"] = time.perf_counter() - started
        if self.config.store_traces:
            saving = time.perf_counter()
            partial = {**update, "timings": [{"node": "learn", "seconds": round(saving - started, 4)}],
                       "active_s": saving - started}
            self.bank.save_trace(self.trace(apply_update(state, partial)))
            update["memory_s"] = time.perf_counter() - saving
            update["memory_ops"] += [_op("save_trace", update["memory_s"])]
        return update

    # -------------------------------------------------------------------- procedures

    @_timed("recall")
    def recall(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """Run the first selected procedures that fit the task (at most `max_procedures`); the first to finish answers."""
        if not self.config.procedures:
            return {}
        llm, task = MeteredLLM(self.llm, "recall"), state["task"]
        evidence, steps, recalled = list(state.get("evidence", [])), [], []
        first_new, answer = len(evidence), None
        fitting = [(item["case_id"], procedure, values) for item in state.get("procedures", [])
                   if (procedure := Procedure.model_validate(item["procedure"])).outcome == "success"
                   and (values := procedure.fit(task)) is not None]
        for case_id, procedure, values in fitting[: self.config.max_procedures]:
            run = run_procedure(procedure, values, task, self.executor.tools, llm, self.config, evidence, steps)
            recalled.append({"case_id": case_id, "values": run.values, "answer": run.answer, "failure": run.failure})
            if run.answer:
                answer = run.answer
                break
        update: dict[str, Any] = {"evidence": evidence[first_new:], "trajectory": steps, "recalled": recalled,
                                  "tokens": llm.usage(), "llm_calls": llm.calls,
                                  "notes": [f"recall: case {r['case_id']}: {r['failure']}" for r in recalled if r["failure"]]}
        if answer is not None:
            update.update(answer=answer, answered_by="recall")
        return update

    @_timed("explore")
    def explore(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """Search outward from the task and choose the answer with one constrained model call."""
        tool = self._passage_tool()
        llm = MeteredLLM(self.llm, "explore")
        update = explore(state["task"], tool, llm, self.config, state.get("evidence", []))
        return {**update, "tokens": llm.usage(), "llm_calls": llm.calls}

    @_timed("induce")
    def induce(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """The procedure the episode's case will hold, and what hindsight found (nothing when learn=False)."""
        if not state.get("learn", True) or not self.config.procedures:
            return {"procedure": None}
        task, reward = state["task"], state.get("reward")
        evidence = list(state.get("evidence", []))
        ran = [(r, Procedure.model_validate(p["procedure"])) for r in state.get("recalled", [])
               for p in state.get("procedures", []) if p["case_id"] == r["case_id"]]
        if reward is not None and reward >= SUCCESS and state.get("answer"):
            if state.get("answered_by") == "recall" and ran:
                procedure = ran[-1][1].model_copy(update={"learned_from": "reuse"})
                return {"procedure": procedure.model_dump(mode="json"), "hindsight": {"reached": True, "why": "answered"}}
            procedure, found = induce_procedure(task, evidence, [state["answer"]], learned_from="answer")
            return {"procedure": procedure.model_dump(mode="json") if procedure else None, "hindsight": found}
        gold = [g for g in state.get("gold", []) if g.strip()]
        failed = [procedure for record, procedure in ran if record.get("answer")]
        procedure, found, new = None, {"reached": False, "why": "no gold answer to look for"}, []
        if gold and self.config.hindsight:
            procedure, found = induce_procedure(task, evidence, gold, learned_from="hindsight", avoid=failed)
            tool = self._passage_tool(required=False)
            if procedure is None and tool is not None and state.get("answered_by") != "explore":
                # The answer was wrong and the searches so far never held the gold: look further, as
                # exploration would have, so the episode can still teach the right path.
                first_new = len(evidence)
                search_outward(task, tool, self.config, evidence)
                new = evidence[first_new:]
                procedure, found = induce_procedure(task, evidence, gold, learned_from="hindsight", avoid=failed)
        if procedure is None and failed:
            procedure = failed[-1].model_copy(update={"outcome": "failure", "note": (
                f"Ran on this task and answered {clip(state.get('answer', ''), 60)!r}, which scored {reward}.")})
        return {"procedure": procedure.model_dump(mode="json") if procedure else None, "hindsight": found,
                "evidence": new}

    def _passage_tool(self, required: bool = True) -> Any:
        """The tool exploration searches with: the one named 'search'."""
        tool = self.executor.tools.get("search")
        if tool is None and required:
            raise ValidationError("fallback='explore' needs a tool named 'search' that returns passages "
                                  "(memento.tools.search_tool); add one or use fallback='plan'")
        return tool

    # ---------------------------------------------------------------------- planning

    @_timed("plan")
    def plan(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """The planner's subtasks for the task, seeing the selected cases; the task itself if the reply is unusable."""
        llm, notes = MeteredLLM(self.llm, "plan"), []
        messages = planner_messages(state["task"], state.get("cases_context", "No past cases yet."), self.config.max_subtasks)
        try:
            reply = llm.structured(messages, Plan, max_tokens=self.config.planner_max_tokens,
                                   temperature=self.config.temperature)
            subtasks = _clean(reply.subtasks)[: self.config.max_subtasks]
        except _MODEL_OUTPUT_ERRORS as error:
            subtasks = []
            notes.append(f"plan: unusable reply ({clip(error, 200)})")
        if not subtasks:
            subtasks = [f"Find the answer to: {state['task']}"]
            notes.append("plan: fell back to a one-step plan")
        return {"plan": subtasks, "plans": [subtasks], "subtask": 0, "tokens": llm.usage(), "llm_calls": llm.calls,
                "notes": notes}

    @_timed("execute")
    def execute(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """Do the next subtask of the plan with tools, within the budgets."""
        return self.executor.run_subtask(state, MeteredLLM(self.llm, "execute"))

    @_timed("replan")
    def replan(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """After the plan ran: the planner answers now, or writes new subtasks (counted against max_plan_revisions)."""
        llm = MeteredLLM(self.llm, "replan")
        messages = replanner_messages(state["task"], state["plan"], state.get("findings", []),
                                      self.config.max_subtasks, self.config.max_case_chars)
        update: dict[str, Any] = {"notes": []}
        try:
            reply = llm.structured(messages, Revision, max_tokens=self.config.planner_max_tokens,
                                   temperature=self.config.temperature)
            subtasks = _clean(reply.subtasks)[: self.config.max_subtasks] if reply.decision == "revise" else []
        except _MODEL_OUTPUT_ERRORS as error:
            subtasks = []
            update["notes"] = [f"replan: unusable reply ({clip(error, 200)}); answering"]
        if subtasks:
            update.update(plan=subtasks, plans=[subtasks], subtask=0, revisions=state.get("revisions", 0) + 1)
        return {**update, "tokens": llm.usage(), "llm_calls": llm.calls}

    @_timed("answer")
    def answer(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """The final answer from the findings; the last finding itself when tokens or time are spent."""
        findings = state.get("findings", [])
        fallback = clip(findings[-1]["result"], 200) if findings else ""
        budget = Budget.from_state(self.config, state)
        if state.get("stop_reason") in ("token_budget", "time_budget") or budget.exhausted() in ("token_budget", "time_budget"):
            return {"answer": fallback, "notes": ["answer: budget spent, the last finding is the answer"]}
        llm = MeteredLLM(self.llm, "answer")
        notes = []
        try:
            reply = llm.structured(answer_messages(state["task"], findings, self.config.max_observation_chars),
                                   FinalAnswer, max_tokens=self.config.answer_max_tokens, temperature=self.config.temperature)
            answer = reply.answer.strip()
        except _MODEL_OUTPUT_ERRORS as error:
            answer = fallback
            notes.append(f"answer: unusable reply ({clip(error, 200)}); the last finding is the answer")
        return {"answer": answer, "tokens": llm.usage(), "llm_calls": llm.calls, "notes": notes}

    # ------------------------------------------------------------------------ reward

    @_timed("reward")
    def reward(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:
        """The scorer's reward (this run's, else the graph's); else the judge's; else None (unscored)."""
        configurable = (config or {}).get("configurable", {})
        scorer = configurable.get(SCORER_KEY) or self.scorer
        answer = state.get("answer", "")
        judge_llm = None
        if scorer is not None:
            value, source = scorer(configurable.get(TASK_KEY, state["task"]), answer), "scorer"
        elif self.judge is not None:
            value, source = self.judge(state["task"], answer, list(state.get("gold", []))), "judge"
        elif state.get("gold"):
            judge_llm = MeteredLLM(self.llm, "reward")
            value, source = llm_judge(judge_llm, state["task"], answer, list(state["gold"])), "judge"
        else:
            return {"reward": None, "scores": {}, "reward_source": "none"}
        reward, scores = _reward_from(value, self.config.reward_metric)
        update: dict[str, Any] = {"reward": reward, "scores": scores, "reward_source": source}
        if judge_llm is not None:
            update.update(tokens=judge_llm.usage(), llm_calls=judge_llm.calls)
        return update

    # ------------------------------------------------------------------ what they make

    def episode_case(self, state: dict[str, Any]) -> Case:
        """The case an episode becomes: task, last plan, trajectory, answer, reward and where it came from."""
        reward = state.get("reward")
        return Case(
            id=state["episode_id"], namespace=self.config.namespace, task=state["task"],
            plan=list(state.get("plan", [])),
            trajectory=[Step(thought=s.get("thought", ""), tool=s.get("tool"), tool_input=s.get("tool_input"),
                             observation=s.get("observation", "")) for s in state.get("trajectory", [])],
            answer=state.get("answer", ""), reward=0.0 if reward is None else float(reward),
            procedure=Procedure.model_validate(state["procedure"]) if state.get("procedure") else None,
            metadata={
                "source": "memento.agent", "episode_id": state["episode_id"], "dataset": state.get("dataset") or "",
                "task_id": state.get("task_id") or "", "model": self.llm.model, "policy": self.policy.kind,
                "selected_case_ids": [s["case_id"] for s in state.get("selected", [])],
                "scored": reward is not None, "scores": state.get("scores", {}),
                "stop_reason": state.get("stop_reason"), "tokens": dict(state.get("tokens", {})),
                "revisions": state.get("revisions", 0), "answered_by": state.get("answered_by", "plan"),
                "procedure_from": next((r["case_id"] for r in reversed(state.get("recalled", [])) if r.get("answer")), None),
                "hindsight": state.get("hindsight", {}),
            },
        )

    def trace(self, state: dict[str, Any]) -> dict[str, Any]:
        """The episode's trace (see `memento.agent.trace.build_trace`)."""
        return build_trace(state, model=self.llm.model, policy=self.policy.kind, namespace=self.config.namespace)

    def close(self) -> None:
        """Nothing to release: traces go through the bank, which is the caller's."""


def task_state(state: dict[str, Any]) -> TaskState:
    """The episode's `TaskState`, from the task, embedding and episode id in the graph's state.

    The one place it is built: the policy selects for it in read_memory and records its outcome
    for it in learn, so both see the same state (the graph's state holds JSON, not the object).
    """
    return TaskState(task=state["task"], embedding=np.asarray(state["task_embedding"], dtype=np.float32),
                     episode_id=state["episode_id"])


def llm_judge(llm: LLM, question: str, answer: str, gold: list[str]) -> float:
    """The default judge (memento.judge), graded by the agent's own model (1.0 correct, else 0.0)."""
    return judge_answer(llm, question, answer, gold).score


def _reward_from(value: Any, metric: str) -> tuple[float, dict[str, float]]:
    """(reward, scores) from a scorer's float or dict of metrics."""
    if isinstance(value, dict):
        scores = {key: float(v) for key, v in value.items()}
        if metric not in scores:
            raise ValidationError(f"the scorer returned metrics {sorted(scores)} but AgentConfig.reward_metric is "
                                  f"{metric!r}; set reward_metric to one of them")
        return scores[metric], scores
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
        raise ValidationError(f"the scorer returned {value!r}; it must return a finite number or a dict of metrics")
    return float(value), {"reward": float(value)}


def _op(name: str, seconds: float) -> dict[str, Any]:
    return {"op": name, "seconds": round(seconds, 5)}


def _clean(subtasks: Sequence[str]) -> list[str]:
    """Subtasks stripped, without blanks and repeats (small models repeat themselves)."""
    out: list[str] = []
    for subtask in subtasks:
        text = " ".join(subtask.split())
        if text and text not in out:
            out.append(text)
    return out
