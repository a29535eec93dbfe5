"""`memento ask`: run the agent once on a question, with the bank as its memory."""

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memento.case import DEFAULT_NAMESPACE
from memento.cli.banks import open_bank
from memento.cli.options import BankPath, EmbedderName, parse_assignment, parse_value
from memento.cli.output import note, output_options
from memento.plugins import plugin

Backend = Annotated[str, typer.Option(
    envvar="MEMENTO_LLM_BACKEND", help="The LLM backend: llamacpp (the embedded SmolLM2), openai, vllm or transformers. "
                                       "Env: MEMENTO_LLM_BACKEND.")]

LLMOptions = Annotated[Optional[list[str]], typer.Option(
    "--llm-option", help="A setting of the backend, key=value (repeatable), e.g. base_url=http://localhost:8000/v1.")]


def llm_options(pairs: list[str] | None) -> dict[str, Any]:
    """`--llm-option key=value` pairs as `load_llm` keyword arguments (values read as JSON when they parse)."""
    return {key: parse_value(value) for key, value in (parse_assignment(p, "--llm-option") for p in pairs or [])}


@output_options
def ask(question: Annotated[str, typer.Argument(help="The task for the agent.", show_default=False)],
        bank_path: BankPath, embedder: EmbedderName = None,
        policy: Annotated[Optional[Path], typer.Option(
            help="A policy checkpoint to choose the cases (default: the 4 most similar); it is saved back after learning.")] = None,
        corpus: Annotated[Optional[Path], typer.Option(help="A JSONL(.gz) passage file for the search tool.")] = None,
        backend: Backend = "llamacpp", llm_option: LLMOptions = None,
        k: Annotated[int, typer.Option("-k", "--k", help="How many past cases the planner sees.")] = 4,
        namespace: Annotated[Optional[str], typer.Option(
            help="Where cases are read from and written to, e.g. acme/support (default: default).")] = None,
        gold: Annotated[Optional[list[str]], typer.Option(
            help="A correct answer (repeatable): the reward is the exact match against it (F1 is shown too).")] = None,
        learn: Annotated[bool, typer.Option(
            help="--no-learn leaves memory untouched: no case written, the policy not taught.")] = True,
        ) -> dict:
    """Example: memento ask "Who founded the Acme company?" --bank cases.db --no-learn

    Run the agent once: the policy picks past cases, the planner plans with them, the executor
    uses the tools, and the answer is printed with the cases it used. Unless --no-learn, the
    episode is stored as a case and the policy learns from its reward.
    """
    with open_bank(bank_path, embedder) as bank:
        # The agent's imports (langgraph, torch) take seconds: only once the bank is known to be there.
        from memento.judge import em_f1
        from memento.agent import Agent, AgentConfig
        from memento.llm import load_llm
        from memento.tools import default_tools
        policies = plugin("policies")

        config = AgentConfig(k=k, namespace=tuple(namespace.split("/")) if namespace else DEFAULT_NAMESPACE)
        chooser = policies.load_policy(policy, bank) if policy else policies.make_policy("similarity", bank)
        agent = Agent(load_llm(backend, **llm_options(llm_option)), bank, chooser, default_tools(corpus), config=config)
        try:
            scorer = (lambda task, answer: em_f1(answer, gold)) if gold else None
            result = agent.run(question, gold=gold, scorer=scorer, learn=learn)
        finally:
            agent.close()
        if policy and learn:
            chooser.save(policy)
            note(f"policy saved to {policy}")
    return {"answer": result.answer, "reward": result.reward, "scores": result.scores, "cases": result.selected,
            "case_id": result.case_id, "plan": result.plan, "stop_reason": result.stop_reason, "episode_id": result.episode_id,
            "tokens": result.tokens, "wall_s": round(result.wall_s, 3)}

