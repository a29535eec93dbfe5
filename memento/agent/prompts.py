"""What the planner and the executor are told, and the structured replies they must give.

Prompts are short and the reply formats flat, because the default model is SmolLM2-135M:
a small model follows a one-line JSON format far better than native tool calling, and
constrained decoding (llama.cpp grammars) keeps its JSON valid.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import BaseModel, Field

from memento.case import Case

PLANNER_SYSTEM = (
    "You are the planner of a research agent. Split the question into at most {max_subtasks} short "
    "subtasks that an executor with tools can do one after another; the last subtask gives the answer. "
    "Past cases show plans that worked (reuse them) and plans that failed (avoid what went wrong). "
    'Reply in JSON like {{"subtasks": ["Search for the entity the question names", '
    '"Search for the fact the question asks about", "Give the answer"]}}'
)
"""The example plan is one a small model can copy verbatim and still act on (they do copy it)."""

REPLANNER_SYSTEM = (
    "You are the planner of a research agent. Read the findings. If they answer the question, reply "
    'with {{"decision": "answer"}}. If not, reply {{"decision": "revise", "subtasks": [...]}} with up to '
    "{max_subtasks} new subtasks."
)

EXECUTOR_SYSTEM = (
    "You are the executor of a research agent. Do the current subtask using the tools.\n"
    "Reply with one JSON object on one line:\n"
    '{{"tool": "{first_tool}", "input": "{example_input}"}} to use a tool, or\n'
    '{{"tool": "final", "input": "<what you found>"}} when the subtask is done.\n'
    "Tools:\n{tools}"
)
"""The example call's input is the question itself, so a copied example is still a sensible search."""

ANSWER_SYSTEM = (
    "You answer questions from research findings. Give only the answer, in as few words as possible "
    "(a name, a place, a number), not a sentence."
)

# Strings get no maxLength: llama.cpp grammars unroll it into one rule per character, which slowed
# sampling several-fold and made SmolLM2 loop; max_tokens bounds the replies instead. Blank subtasks
# are dropped after parsing rather than rejected, so one blank does not cost the whole plan.


class Plan(BaseModel):
    """The planner's reply: the subtasks, in order."""

    subtasks: list[str] = Field(min_length=1, max_length=8)


class Revision(BaseModel):
    """The planner's reply after seeing the findings: answer now, or a new list of subtasks."""

    decision: Literal["answer", "revise"]
    subtasks: list[str] = Field(default_factory=list, max_length=8)


class FinalAnswer(BaseModel):
    """The final answer, short."""

    answer: str


def action_schema(tool_names: Sequence[str]) -> dict[str, Any]:
    """The executor's reply as a JSON schema: a tool (or 'final') and one string input."""
    return {
        "type": "object",
        "properties": {
            "tool": {"type": "string", "enum": [*tool_names, "final"]},
            "input": {"type": "string"},
        },
        "required": ["tool", "input"],
        "additionalProperties": False,
    }


def clip(text: Any, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: max(limit - 1, 0)] + "…"


STOP_REASONS = {"step_budget": "ran out of steps", "token_budget": "ran out of tokens", "time_budget": "ran out of time"}


def render_case(number: int, case: Case, limit: int) -> str:
    """A past case as the planner sees it: task, plan, answer, reward, and for a failure, why."""
    scored = case.metadata.get("scored", True)
    worked = case.reward > 0
    verdict = f"{'worked' if worked else 'failed'}, reward {case.reward:g}" if scored else "not scored"
    lines = [f"Case {number} ({verdict})", f"  Task: {clip(case.task, limit)}"]
    if case.plan:
        lines.append("  Plan: " + " | ".join(clip(step, limit) for step in case.plan))
    lines.append(f"  Answer: {clip(case.answer, limit) or '(none)'}")
    if scored and not worked:
        why = STOP_REASONS.get(case.metadata.get("stop_reason"), "the answer was wrong")
        lines.append(f"  Why it failed: {why}")
    return "\n".join(lines)


def render_cases(cases: Sequence[Case], limit: int) -> str:
    """The selected cases, most relevant first, or a line saying there are none."""
    if not cases:
        return "No past cases yet."
    return "\n".join(render_case(number, case, limit) for number, case in enumerate(cases, start=1))


def render_plan(plan: Sequence[str]) -> str:
    return "\n".join(f"{number}. {step}" for number, step in enumerate(plan, start=1))


def render_findings(findings: Sequence[dict[str, str]], limit: int) -> str:
    if not findings:
        return "(none yet)"
    return "\n".join(f"- {clip(f['subtask'], limit)}: {clip(f['result'], limit)}" for f in findings)


def planner_messages(task: str, cases_context: str, max_subtasks: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": PLANNER_SYSTEM.format(max_subtasks=max_subtasks)},
            {"role": "user", "content": f"Past cases:\n{cases_context}\n\nQuestion: {task}\nWrite the plan."}]


def replanner_messages(task: str, plan: Sequence[str], findings: Sequence[dict[str, str]],
                       max_subtasks: int, limit: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": REPLANNER_SYSTEM.format(max_subtasks=max_subtasks)},
            {"role": "user", "content": f"Question: {task}\nPlan:\n{render_plan(plan)}\n"
                                        f"Findings:\n{render_findings(findings, limit)}"}]


def answer_messages(task: str, findings: Sequence[dict[str, str]], limit: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": f"Findings:\n{render_findings(findings, limit)}\n\nQuestion: {task}\nAnswer:"}]


def executor_messages(task: str, plan: Sequence[str], findings: Sequence[dict[str, str]], subtask: str,
                      tools: str, turns: Sequence[tuple[str, str]], limit: int,
                      first_tool: str = "final") -> list[dict[str, str]]:
    """The executor's conversation: the setting, then its recent (action, observation) turns."""
    system = EXECUTOR_SYSTEM.format(tools=tools, first_tool=first_tool, example_input=clip(task, 100).replace('"', "'"))
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": f"Question: {task}\nPlan:\n{render_plan(plan)}\n"
                                            f"Findings so far:\n{render_findings(findings, limit)}\n"
                                            f"Current subtask: {subtask}"}]
    for action, observation in turns:
        messages += [{"role": "assistant", "content": action},
                     {"role": "user", "content": f"Observation: {observation}\nNext action for: {subtask}"}]
    return messages


def describe_tools(tools: Sequence[Any]) -> str:
    """One line per tool: its name, what it does and what its input is."""
    lines = []
    for tool in tools:
        args = list(getattr(tool, "args", {}) or {})
        what = f"input: {args[0]}" if len(args) == 1 or (args and _single_required(tool)) else \
            f"input: a JSON object with {', '.join(args)}" if args else "input: text"
        lines.append(f"- {tool.name}: {clip(tool.description, 160)} ({what})")
    return "\n".join(lines) or "- (no tools: reply with final)"


def _single_required(tool: Any) -> bool:
    schema = getattr(tool, "args_schema", None)
    if schema is None or not hasattr(schema, "model_json_schema"):
        return False
    return len(schema.model_json_schema().get("required", [])) == 1
