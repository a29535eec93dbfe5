"""The executor: works through one subtask, turn by turn, with tools, inside the episode's budgets.

Each turn the model gives one action (see `memento.agent.actions`): a tool call, whose result it
sees next turn, or a final result for the subtask. The subtask ends on a final result, after
`max_steps_per_subtask` turns, after two unreadable replies in a row, or when a budget of the
episode (turns, tokens, seconds) runs out; then its finding is the final result, else the last
tool result. Budgets are checked between turns: a model call or tool run already under way finishes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from memento.agent.actions import parse_action
from memento.agent.config import AgentConfig
from memento.agent.metering import MeteredLLM
from memento.agent.prompts import action_schema, clip, describe_tools, executor_messages
from memento.errors import ValidationError

MALFORMED_IN_A_ROW = 2


@dataclass
class Budget:
    """What is left of the episode's budgets, given what the state says was spent before this node."""

    config: AgentConfig
    steps_used: int = 0
    tokens_used: float = 0
    active_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def from_state(cls, config: AgentConfig, state: dict[str, Any]) -> Budget:
        tokens = state.get("tokens", {})
        return cls(config, int(state.get("steps_used", 0)), tokens.get("prompt_tokens", 0) + tokens.get("completion_tokens", 0),
                   float(state.get("active_s", 0.0)))

    def exhausted(self, steps: int = 0, tokens: float = 0) -> str | None:
        """Which budget has run out ('step_budget', 'token_budget', 'time_budget'), or None."""
        if self.steps_used + steps >= self.config.max_steps:
            return "step_budget"
        if self.tokens_used + tokens >= self.config.max_tokens:
            return "token_budget"
        if self.active_s + time.perf_counter() - self.started >= self.config.max_wall_s:
            return "time_budget"
        return None


class Executor:
    """Runs subtasks with a fixed set of LangChain tools."""

    def __init__(self, tools: Sequence[Any], config: AgentConfig):
        self.tools = {tool.name: tool for tool in tools}
        if len(self.tools) != len(tools):
            names = [tool.name for tool in tools]
            raise ValidationError(f"two tools share the name {next(n for n in names if names.count(n) > 1)!r}; "
                                  f"give every tool its own name")
        if "final" in self.tools:
            raise ValidationError("a tool is named 'final', which is the executor's word for finishing; rename the tool")
        self.config = config
        self.schema = action_schema(list(self.tools))
        self.tool_lines = describe_tools(list(self.tools.values()))

    def run_subtask(self, state: dict[str, Any], llm: MeteredLLM) -> dict[str, Any]:
        """Execute `state["plan"][state["subtask"]]`; returns the state update."""
        config, budget = self.config, Budget.from_state(self.config, state)
        index = int(state.get("subtask", 0))
        subtask = state["plan"][index]
        steps: list[dict[str, Any]] = []
        turns: list[tuple[str, str]] = []
        notes: list[str] = []
        result, stop, malformed_in_row = None, None, 0
        for _ in range(config.max_steps_per_subtask):
            stop = budget.exhausted(len(steps), sum(llm.usage().values()))
            if stop:
                break
            messages = executor_messages(state["task"], state["plan"], state.get("findings", []), subtask,
                                         self.tool_lines, turns[-config.executor_history:], config.max_case_chars,
                                         first_tool=next(iter(self.tools), "final"))
            try:
                completion = llm.complete(messages, json_schema=self.schema, max_tokens=config.executor_max_tokens,
                                          temperature=config.temperature)
            except ValidationError as error:  # e.g. the prompt outgrew the context window
                notes.append(f"execute: the model could not be called ({clip(error, 200)}); subtask {index + 1} ends")
                break
            action = parse_action(completion.text, list(self.tools))
            step = {"subtask": index, "thought": subtask, "action": clip(completion.text, 300)}
            if action.final is not None:
                result = action.final
                steps.append({**step, "tool": None, "tool_input": None, "observation": clip(result, 300),
                              "seconds": 0.0, "ok": True})
                break
            if action.malformed:
                malformed_in_row += 1
                observation, ok, seconds = f"Your reply could not be used: {action.malformed}. {self._example(state['task'])}", False, 0.0
                notes.append(f"execute: malformed action ({action.malformed})")
            else:
                malformed_in_row = 0
                observation, ok, seconds = self.run_tool(action.tool, action.input)
            steps.append({**step, "tool": action.tool, "tool_input": action.input, "observation": observation,
                          "seconds": round(seconds, 4), "ok": ok})
            turns.append((completion.text, observation))
            if malformed_in_row >= MALFORMED_IN_A_ROW:
                break
        if result is None:
            found = [s["observation"] for s in steps if s["ok"] and s["tool"]]
            result = found[-1] if found else "nothing found"
        update: dict[str, Any] = {
            "trajectory": steps, "steps_used": len(steps), "subtask": index + 1,
            "findings": [{"subtask": subtask, "result": clip(result, config.max_observation_chars)}],
            "tokens": llm.usage(), "llm_calls": llm.calls, "notes": notes,
        }
        if stop:
            update["stop_reason"] = stop
        return update

    def _example(self, task: str) -> str:
        first = next(iter(self.tools), "final")
        return "Reply with JSON like " + json.dumps({"tool": first, "input": clip(task, 100)})

    def run_tool(self, name: str, tool_input: Any) -> tuple[str, bool, float]:
        """(observation, ok, seconds): a tool's result as text, or its error as text for the model to read."""
        tool = self.tools[name]
        started = time.perf_counter()
        try:
            output = tool.invoke(_tool_args(tool, tool_input))
            ok = True
        except Exception as error:  # a tool is user code: its failure is something the model should see
            output, ok = f"error: {type(error).__name__}: {error}", False
        seconds = time.perf_counter() - started
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)
        if text.startswith("error:"):  # LangChain tools with handle_tool_error answer with their error
            ok = False
        return clip_observation(text, self.config.max_observation_chars), ok, seconds


def _tool_args(tool: Any, tool_input: Any) -> Any:
    """A text input as the tool's first argument ({"query": text}); objects pass as they are.

    The model gives one string; LangChain passes a bare string positionally, which tools built on
    `**kwargs` functions reject, so it is named here.
    """
    if isinstance(tool_input, str):
        names = list(getattr(tool, "args", {}) or {})
        if names:
            return {names[0]: tool_input}
    return tool_input


def clip_observation(text: str, limit: int) -> str:
    """A tool result cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [cut: {len(text) - limit} more characters]"
